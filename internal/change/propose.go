package change

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Outcome is what a proposed change did: made a request (Change), or
// applied at once because it only tightens or changes nothing.
type Outcome struct {
	Change *View
	// Applied at once (Change is nil):
	PolicyVersion int
	Runbook       ops.RunbookVersion
	Invitation    *identity.InvitationCode
	Unchanged     bool // the content is what is already in force
}

// ProposePolicy makes a change request to put text in force. Every policy
// change is a request, whatever its diff says: the diff samples, it does
// not prove that a policy only tightens. Text already in force changes
// nothing. Invalid text is refused before any request exists.
func (s *Service) ProposePolicy(ctx context.Context, by wire.Principal, text string) (Outcome, error) {
	cand, err := s.cfg.Policy.Prepare(text)
	if err != nil {
		return Outcome{}, err
	}
	cur, err := s.cfg.Policy.Get(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if cur.Hash == cand.Hash() {
		return Outcome{PolicyVersion: cur.Version, Unchanged: true}, nil
	}
	v, err := s.request(ctx, by, KindPolicy, "interlock", text, cur.Text, "apply a new policy")
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// ProposeRunbook makes a change request to store src as a runbook's next
// version (or its first): what a runbook runs on every host is as much a
// safety property as a floor. The latest version's own text changes nothing.
func (s *Service) ProposeRunbook(ctx context.Context, by wire.Principal, src []byte) (Outcome, error) {
	rb, err := ops.ParseRunbook(src)
	if err != nil {
		return Outcome{}, err
	}
	base := ""
	latest, err := s.cfg.Ops.GetRunbook(ctx, rb.Name, 0)
	switch ue, _ := usererr.As(err); {
	case err == nil && string(latest.Source) == string(src):
		return Outcome{Runbook: latest, Unchanged: true}, nil
	case err == nil:
		base = string(latest.Source)
	case ue != nil && ue.Kind == usererr.NotFound:
		// a new runbook
	default:
		return Outcome{}, err
	}
	summary := fmt.Sprintf("add runbook %s", rb.Name)
	if base != "" {
		summary = fmt.Sprintf("change runbook %s (version %d → %d)", rb.Name, latest.Version, latest.Version+1)
	}
	v, err := s.request(ctx, by, KindRunbook, rb.Name, string(src), base, summary)
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// ServiceEdit changes the rules it names of one service; nil fields keep
// theirs.
type ServiceEdit struct {
	Name            string
	MinHealthy      *ops.Threshold // zero Threshold: remove the floor
	MaxPerOperation *ops.Threshold // zero Threshold: remove the cap
	Freezes         *[]ops.Window
	// Create allows a service that does not exist yet; without it an
	// unknown name (a typo) is refused.
	Create bool
}

// SetService applies edit at once when it only tightens (a higher floor,
// a lower cap, a freeze added) and makes a change request when it loosens.
// An edit that names no rule, and an unknown service without Create, are
// refused with an audit entry: a flag-less `service set` must never wipe
// a floor, nor a typo leave the real service unprotected.
func (s *Service) SetService(ctx context.Context, by wire.Principal, e ServiceEdit) (Outcome, error) {
	if e.MinHealthy == nil && e.MaxPerOperation == nil && e.Freezes == nil {
		return Outcome{}, s.refuse(ctx, by, "service:"+e.Name, "service_edit_empty", usererr.Invalid,
			"Setting service %s needs at least one rule (--min-healthy, --max-per-operation or freezes); nothing was changed. Use \"none\" to remove a rule.", e.Name)
	}
	current, err := s.cfg.Ops.ListServices(ctx)
	if err != nil {
		return Outcome{}, err
	}
	var next ops.Service
	found := false
	for _, c := range current {
		if c.Name == e.Name {
			next, found = c.Service, true
		}
	}
	if !found && !e.Create {
		names := make([]string, 0, len(current))
		for _, c := range current {
			names = append(names, c.Name)
		}
		return Outcome{}, s.refuse(ctx, by, "service:"+e.Name, "unknown_service", usererr.NotFound,
			"There is no service %s (services: %s); nothing was changed. To create it, add --create.", e.Name, listOrNone(names))
	}
	if !found {
		next = ops.Service{Name: e.Name}
	}
	if e.MinHealthy != nil {
		next.MinHealthy = *e.MinHealthy
	}
	if e.MaxPerOperation != nil {
		next.MaxPerOperation = *e.MaxPerOperation
	}
	if e.Freezes != nil {
		next.Freezes = slices.Clone(*e.Freezes)
	}
	return s.putServices(ctx, by, []ops.Service{next})
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none yet"
	}
	return strings.Join(names, ", ")
}

// ApplyServicesYAML applies a services file (see ops.ParseServices): at
// once when no service in it loosens, else as one change request for the
// whole file.
func (s *Service) ApplyServicesYAML(ctx context.Context, by wire.Principal, src []byte) (Outcome, error) {
	svcs, err := ops.ParseServices(src)
	if err != nil {
		return Outcome{}, err
	}
	return s.putServices(ctx, by, svcs)
}

func (s *Service) putServices(ctx context.Context, by wire.Principal, nexts []ops.Service) (Outcome, error) {
	for _, n := range nexts {
		if err := ops.ValidateService(n); err != nil {
			return Outcome{}, err
		}
	}
	current, err := s.cfg.Ops.ListServices(ctx)
	if err != nil {
		return Outcome{}, err
	}
	byName := map[string]ops.Service{}
	for _, c := range current {
		byName[c.Name] = c.Service
	}
	var olds []ops.Service
	var loosens []string
	changed := false
	now := s.clock()
	for _, n := range nexts {
		o, ok := byName[n.Name]
		if !ok {
			changed = true
			continue
		}
		olds = append(olds, o)
		loosens = append(loosens, ops.Loosens(o, n, now)...)
		changed = changed || encodeServices([]ops.Service{o}) != encodeServices([]ops.Service{n})
	}
	if !changed {
		return Outcome{Unchanged: true}, nil
	}
	base, content := encodeServices(olds), encodeServices(nexts)
	if len(loosens) == 0 {
		// Only tightens: apply now, provided nothing moved since we looked.
		err := s.cfg.Store.InTx(ctx, func(tx Tx) error {
			if err := checkServicesBase(ctx, tx, base, content); err != nil {
				return err
			}
			return s.cfg.Ops.PutServicesIn(ctx, tx, by, nexts)
		})
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{}, nil
	}
	names := make([]string, 0, len(nexts))
	for _, n := range nexts {
		names = append(names, n.Name)
	}
	v, err := s.request(ctx, by, KindServices, strings.Join(names, ","), content, base, strings.Join(loosens, "; "))
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// grantsNeedApproval reports whether role is one that approves or
// administers, in an installation with two or more active admins (with a
// single admin a grant applies at once: nobody else could approve it).
func (s *Service) grantsNeedApproval(ctx context.Context, role string) (bool, error) {
	if role != identity.RoleApprover && role != identity.RoleAdmin {
		return false, nil
	}
	n, err := s.activeWith(ctx, "", identity.RoleAdmin)
	if err != nil {
		return false, err
	}
	return n >= 2, nil
}

// activeWith counts active people other than except holding any of roles.
func (s *Service) activeWith(ctx context.Context, except string, roles ...string) (int, error) {
	users, err := s.cfg.People.ListUsers(ctx)
	if err != nil {
		return 0, fmt.Errorf("list users: %w", err)
	}
	n := 0
	for _, u := range users {
		if u.Status != identity.StatusActive || u.Username == except {
			continue
		}
		for _, r := range roles {
			if slices.Contains(u.Roles, r) {
				n++
				break
			}
		}
	}
	return n, nil
}

// Invite invites username with role: at once for viewer and operator (and
// for any role while there is a single admin), as a change request for
// approver or admin once two admins exist. An approved invitation's code
// goes to its requester only (Collect).
func (s *Service) Invite(ctx context.Context, by wire.Principal, username, role string) (Outcome, error) {
	gate, err := s.grantsNeedApproval(ctx, role)
	if err != nil {
		return Outcome{}, err
	}
	if !gate {
		inv, err := s.cfg.People.Invite(ctx, by, username, role)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Invitation: &inv}, nil
	}
	if !slices.Contains(identity.Roles, role) {
		return Outcome{}, usererr.New(usererr.Invalid, "invalid_role", "Role %q does not exist; use one of %s.", role, strings.Join(identity.Roles, ", "))
	}
	v, err := s.request(ctx, by, KindInvite, username, role, "", fmt.Sprintf("invite %s with role %s", username, role))
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// Disable disables username as a change request while anyone other than
// the requester could approve it; with nobody else who approves, at once.
func (s *Service) Disable(ctx context.Context, by wire.Principal, username string) (Outcome, error) {
	users, err := s.cfg.People.ListUsers(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("list users: %w", err)
	}
	status := ""
	for _, u := range users {
		if u.Username == username {
			status = u.Status
		}
	}
	if status == "" {
		return Outcome{}, usererr.New(usererr.NotFound, "user_not_found", "There is no user %s.", username)
	}
	if status == identity.StatusDisabled || username == by.Name {
		// Nothing to change, or refused by identity (nobody disables themselves).
		return Outcome{Unchanged: status == identity.StatusDisabled}, s.cfg.People.DisableUser(ctx, by, username)
	}
	others, err := s.activeWith(ctx, by.Name, identity.RoleApprover, identity.RoleAdmin)
	if err != nil {
		return Outcome{}, err
	}
	if others == 0 {
		return Outcome{}, s.cfg.People.DisableUser(ctx, by, username)
	}
	v, err := s.request(ctx, by, KindDisable, username, identity.StatusDisabled, status, fmt.Sprintf("disable %s", username))
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// request stores a new pending request with its "change.requested" entry.
func (s *Service) request(ctx context.Context, by wire.Principal, kind Kind, target, content, base, summary string) (View, error) {
	if by.Kind != "person" || by.ID == "" {
		return View{}, usererr.New(usererr.Forbidden, "person_required", "Only a person can request a change.")
	}
	id, err := s.newID()
	if err != nil {
		return View{}, err
	}
	now := s.clock()
	r := Request{ID: id, Kind: kind, Target: target, Content: content, Base: base, Hash: ContentHash(kind, target, content, base),
		Summary: summary, RequesterID: by.ID, RequesterName: by.Name, State: Pending, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TTL)}
	v, err := s.view(r)
	if err != nil {
		return View{}, err
	}
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertChangeRequest(ctx, r); err != nil {
			return fmt.Errorf("store change request: %w", err)
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "change.requested", Version: 1, Actor: by.Actor(), Subject: "change:" + r.ID, Time: now,
			Data: map[string]any{"kind": string(kind), "target": target, "hash": r.Hash, "summary": summary,
				"expires_at": r.ExpiresAt.Format(time.RFC3339), "diff": auditDiff(v.Diff)}})
	})
	if err != nil {
		return View{}, err
	}
	s.log.InfoContext(ctx, "change requested", slog.String("change", r.ID), slog.String("kind", string(kind)), slog.String("requester", by.Actor()))
	return v, nil
}

// maxAuditDiff bounds the diff copied into the log entry; a larger one is
// summarised (the content itself is stored and its hash is logged, so the
// full diff can always be computed again).
const maxAuditDiff = 32 << 10

func auditDiff(d wire.ChangeDiff) any {
	if d.LogFork != nil {
		// The reason is personal data: the fork entry keeps it redactably.
		lf := *d.LogFork
		lf.Reason = ""
		d.LogFork = &lf
	}
	b, err := json.Marshal(d)
	if err != nil || len(b) > maxAuditDiff {
		sum := map[string]any{"truncated": true}
		if p := d.Policy; p != nil {
			sum["gained"], sum["lost"], sum["approvals"] = len(p.Gained), len(p.Lost), len(p.Approvals)
		}
		if r := d.Runbook; r != nil {
			sum["fields"] = len(r.Fields)
		}
		return sum
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// refuse records a refused change attempt and returns its sentence.
func (s *Service) refuse(ctx context.Context, by wire.Principal, subject, code string, kind usererr.Kind, format string, args ...any) error {
	ue := usererr.New(kind, code, format, args...)
	err := s.cfg.Store.InTx(ctx, func(tx Tx) error {
		return audit.Append(ctx, tx, audit.Entry{Kind: "change.refused", Version: 1, Actor: by.Actor(), Subject: subject, Time: s.clock(),
			Data: map[string]any{"code": code}})
	})
	if err != nil {
		return fmt.Errorf("record refusal %s: %w", code, err)
	}
	return ue
}
