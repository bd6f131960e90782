package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/elevate"
	"github.com/interlock-dev/interlock/internal/review"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/training"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Issue 12 (people, not accounts) joins the request path in two places:
//
//   - elevatedAuthenticator adds the roles of a person's active
//     just-in-time grants to the principal, so that policy, operations and
//     approvals see the elevated person alike, and names the grants;
//   - accessAuthorizer puts the person's current training in the Cedar
//     context, records each decision made for an elevated person with its
//     grants (elevate.decision), the first use of each action by each
//     person in a day (authz.used, which the access review reads), and
//     each device and address a person's sessions are used from
//     (session.seen, which the misuse detector reads).
//
// Kinds written here (pinned in internal/cli/testdata/audit_kinds.golden):
//
//   - authz.used v1 (2026-12-03): Data action, resource_type, resource_id;
//     the first allowed use of the action by the actor in a UTC day.
//   - session.seen v1 (2026-12-03): Data device_id, session_id; Personal
//     source_ip; the first request of a person from a device and address
//     in a minute.
//   - session.refused v1 (2026-12-03): Data device_id, code; a request
//     signed with a disabled person's device key.
const (
	kindUsed           = "authz.used"
	kindSessionSeen    = "session.seen"
	kindSessionRefused = "session.refused"
)

// elevatedAuthenticator is identity.Service's Authenticate followed by
// elevate.Service's Elevate.
type elevatedAuthenticator struct {
	inner interface {
		api.Authenticator
		SessionOwner(ctx context.Context, token, jkt string) (personID, deviceID string, disabled, ok bool)
	}
	el    *elevate.Service
	usage *usageLog
}

func (a elevatedAuthenticator) Authenticate(ctx context.Context, token, jkt string) (wire.Principal, error) {
	p, err := a.inner.Authenticate(ctx, token, jkt)
	if err != nil {
		a.usage.refused(ctx, a.inner, token, jkt, err)
		return p, err
	}
	return a.el.Elevate(ctx, p)
}

// accessAuthorizer wraps the policy authorizer (see above).
type accessAuthorizer struct {
	inner    api.Authorizer
	training *training.Service
	usage    *usageLog
}

func (a accessAuthorizer) Authorize(ctx context.Context, p wire.Principal, action string, res api.Resource, attrs map[string]any) (bool, []string, error) {
	if p.Kind == "person" {
		courses, err := a.training.Current(ctx, p.ID)
		if err != nil {
			return false, nil, err
		}
		withTraining := make(map[string]any, len(attrs)+1)
		for k, v := range attrs {
			withTraining[k] = v
		}
		withTraining["training"] = courses
		attrs = withTraining
	}
	allow, reasons, err := a.inner.Authorize(ctx, p, action, res, attrs)
	if err != nil || p.Kind != "person" {
		return allow, reasons, err
	}
	ip, _ := attrs["source_ip"].(string)
	if werr := a.usage.record(ctx, p, action, res, ip, allow); werr != nil {
		// An elevated decision that cannot be recorded does not stand.
		return false, reasons, werr
	}
	return allow, reasons, nil
}

// usageLog writes authz.used, session.seen, session.refused and
// elevate.decision entries, remembering what it wrote so that the log
// gets one authz.used per person, action and day and one session.seen per
// person, device, address and minute.
type usageLog struct {
	db     *store.DB
	now    func() time.Time
	log    *slog.Logger
	halted func() string // audit.Log.Refusal: nothing is written while it refuses

	mu   sync.Mutex
	used map[string]int64 // actor|action → day (unix days)
	seen map[string]int64 // actor|device|ip → minute (unix minutes)
}

func newUsageLog(db *store.DB, now func() time.Time, halted func() string, log *slog.Logger) *usageLog {
	return &usageLog{db: db, now: now, halted: halted, log: log, used: map[string]int64{}, seen: map[string]int64{}}
}

// maxRemembered bounds each memory; past it, it starts again (writing a
// few entries twice is harmless).
const maxRemembered = 100_000

func (u *usageLog) firstIn(m map[string]int64, key string, bucket int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if m[key] == bucket {
		return false
	}
	if len(m) >= maxRemembered {
		clear(m)
	}
	m[key] = bucket
	return true
}

func (u *usageLog) forget(m map[string]int64, key string) {
	u.mu.Lock()
	delete(m, key)
	u.mu.Unlock()
}

// record writes an elevate.decision entry at once for a person holding
// grants (allowed or not), and notes an allowed use for [usageLog.middleware]
// to record once the request succeeded.
func (u *usageLog) record(ctx context.Context, p wire.Principal, action string, res api.Resource, ip string, allow bool) error {
	if allow {
		if h, ok := ctx.Value(pendingUsesKey{}).(*pendingUses); ok {
			h.mu.Lock()
			h.uses = append(h.uses, pendingUse{p: p, action: action, res: res, ip: ip})
			h.mu.Unlock()
		}
	}
	if len(p.Grants) == 0 {
		return nil
	}
	if why := u.halted(); why != "" {
		return errors.New("the audit log refuses to record: " + why)
	}
	e := audit.Entry{Kind: elevate.KindDecision, Version: 1, Actor: p.Actor(), Subject: res.Type + ":" + res.ID, Time: u.now(),
		Data: map[string]any{"grants": anyList(p.Grants), "action": action, "resource_type": res.Type, "resource_id": res.ID, "allow": allow}}
	return u.db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) })
}

type pendingUsesKey struct{}

// pendingUses are the allowed decisions of one request.
type pendingUses struct {
	mu   sync.Mutex
	uses []pendingUse
}

type pendingUse struct {
	p      wire.Principal
	action string
	res    api.Resource
	ip     string
}

// middleware records the uses a person's request that is not a read was
// allowed (authz.used, session.seen) when its answer is a success, just
// before the answer is sent: bad input and refused requests record
// nothing (their refusals are authz.denied), and a client that reads its
// answer finds the uses already committed.
func (u *usageLog) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "DPoP ") || r.Method == http.MethodGet || r.Method == http.MethodHead {
			// Agents and public routes; and reads, which never write to
			// the log (so polling cannot grow it, and a server that was
			// only read has nothing new to sign).
			next.ServeHTTP(w, r)
			return
		}
		h := &pendingUses{}
		ctx := context.WithValue(r.Context(), pendingUsesKey{}, h)
		rec := &useRecorder{ResponseWriter: w, done: func(status int) {
			if status < 400 {
				u.commit(ctx, h)
			}
		}}
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// useRecorder calls done with the status before the first byte of the
// answer goes out.
type useRecorder struct {
	http.ResponseWriter
	done  func(status int)
	wrote bool
}

func (w *useRecorder) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.done(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *useRecorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *useRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *useRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// commit writes the first use of each action per person and day, and the
// first use of each device and address per person and minute.
func (u *usageLog) commit(ctx context.Context, h *pendingUses) {
	if u.halted() != "" {
		return
	}
	h.mu.Lock()
	uses := h.uses
	h.mu.Unlock()
	now := u.now()
	var es []audit.Entry
	var keys []func()
	for _, x := range uses {
		actor := x.p.Actor()
		usedKey, seenKey := actor+"|"+x.action, actor+"|"+x.p.DeviceID+"|"+x.ip
		if u.firstIn(u.used, usedKey, now.Unix()/86400) {
			es = append(es, audit.Entry{Kind: kindUsed, Version: 1, Actor: actor, Subject: x.res.Type + ":" + x.res.ID, Time: now,
				Data: map[string]any{"action": x.action, "resource_type": x.res.Type, "resource_id": x.res.ID}})
			keys = append(keys, func() { u.forget(u.used, usedKey) })
		}
		if u.firstIn(u.seen, seenKey, now.Unix()/60) {
			es = append(es, audit.Entry{Kind: kindSessionSeen, Version: 1, Actor: actor, Subject: "device:" + x.p.DeviceID, Time: now,
				Data: map[string]any{"device_id": x.p.DeviceID, "session_id": x.p.SessionID}, Personal: map[string]string{"source_ip": x.ip}})
			keys = append(keys, func() { u.forget(u.seen, seenKey) })
		}
	}
	if len(es) == 0 {
		return
	}
	err := u.db.InTx(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		for _, e := range es {
			if err := audit.Append(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, f := range keys {
			f() // try again on the next use
		}
		u.log.ErrorContext(ctx, "record access use", slog.String("error", err.Error()))
	}
}

// refused records a request signed with the device key of a disabled
// person: their key (or a copy of it) is still in use.
func (u *usageLog) refused(ctx context.Context, owners interface {
	SessionOwner(ctx context.Context, token, jkt string) (string, string, bool, bool)
}, token, jkt string, authErr error) {
	ue, ok := usererrAs(authErr)
	if !ok || (ue != "account_disabled" && ue != "session_ended") || u.halted() != "" {
		return
	}
	person, device, disabled, ok := owners.SessionOwner(ctx, token, jkt)
	if !ok || !disabled {
		return
	}
	now := u.now()
	if !u.firstIn(u.seen, "refused|"+person+"|"+device, now.Unix()/60) {
		return
	}
	err := u.db.InTx(ctx, func(tx *store.Tx) error {
		return audit.Append(ctx, tx, audit.Entry{Kind: kindSessionRefused, Version: 1, Actor: "person:" + person, Subject: "device:" + device, Time: now,
			Data: map[string]any{"device_id": device, "code": ue}})
	})
	if err != nil {
		u.log.ErrorContext(ctx, "record refused session", slog.String("error", err.Error()))
	}
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func usererrAs(err error) (string, bool) {
	ue, ok := usererr.As(err)
	if !ok {
		return "", false
	}
	return ue.Code, true
}

// grantedRoles lists the roles personID holds now through grants.
func (a *App) grantedRoles(ctx context.Context, personID string) ([]string, error) {
	gs, err := a.Elevate.Active(ctx, personID)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.Role)
	}
	return out, nil
}

// newAccess builds the elevation and training services and the usage log.
func (a *App) newAccess(opt Options) error {
	now := opt.AccessNow
	if now == nil {
		now = a.now
	}
	var err error
	if a.Elevate, err = elevate.New(elevate.Config{Store: a.db.ElevateStore(), Requirements: a.Engine, Independence: a.Identity,
		People: a.Identity, Now: now, LogNow: a.now, Log: a.log}); err != nil {
		return fmt.Errorf("elevate: %w", err)
	}
	if a.Training, err = training.New(a.db.TrainingStore(), a.Identity, now, a.now, a.log); err != nil {
		return fmt.Errorf("training: %w", err)
	}
	a.usage = newUsageLog(a.db, a.now, a.Audit.Refusal, a.log)
	return nil
}

// newReview builds the access review service (after Identity and Engine).
func (a *App) newReview() error {
	var err error
	a.Review, err = review.New(review.Deps{
		InTx: func(ctx context.Context, fn func(audit.Tx) error) error {
			return a.db.InTx(ctx, func(tx *store.Tx) error { return fn(tx) })
		},
		People: a.Identity, Elevate: a.Elevate, LastUse: a.lastUses, Policy: a.Engine,
		RemoveStandingRole: a.Identity.RemoveStandingRole, Now: a.now, Log: a.log,
	})
	if err != nil {
		return fmt.Errorf("review: %w", err)
	}
	return nil
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// lastUses reads the integrated log for each person's last allowed use of
// each action: authz.used entries, and elevate.decision entries that
// allowed, keyed by person id and by "grant:<id>". It reads the whole log (a page at a time); reviews are rare.
func (a *App) lastUses(ctx context.Context) (map[string]map[string]time.Time, error) {
	st := a.db.AuditStore()
	ts, err := st.TreeState(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]time.Time{}
	const page = 1000
	for start := uint64(0); start < ts.Size; start += page {
		es, err := st.Entries(ctx, start, min(start+page, ts.Size))
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.Kind != kindUsed && e.Kind != elevate.KindDecision {
				continue
			}
			person, ok := strings.CutPrefix(e.Actor, "person:")
			if !ok {
				continue
			}
			var d struct {
				Action string   `json:"action"`
				Allow  *bool    `json:"allow"`
				Grants []string `json:"grants"`
			}
			if json.Unmarshal(e.Data, &d) != nil || d.Action == "" || (d.Allow != nil && !*d.Allow) {
				continue
			}
			for _, key := range append([]string{person}, prefixed("grant:", d.Grants)...) {
				if out[key] == nil {
					out[key] = map[string]time.Time{}
				}
				if e.Time.After(out[key][d.Action]) {
					out[key][d.Action] = e.Time
				}
			}
		}
	}
	return out, nil
}
