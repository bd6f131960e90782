// Package review builds access reviews: every person's roles (standing,
// eligible and granted just in time), each permission those roles give,
// when the person last used it (from the audit log's authz.used and
// elevate.decision entries), and which standing access went unused. An
// admin confirms or revokes each line; the review and each decision are
// audit entries, so a later auditor sees who looked at what and when.
package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/elevate"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Audit kinds (pinned in internal/cli/testdata/audit_kinds.golden), v1
// 2026-12-03:
//
//   - access.reviewed: Data lines, unused, unused_days, sha256 (of the
//     review's canonical JSON), format.
//   - access.confirmed: Data line, role, source.
//   - access.revoked: Data line, role, source.
const (
	KindReviewed  = "access.reviewed"
	KindConfirmed = "access.confirmed"
	KindRevoked   = "access.revoked"
)

// Sources of a role on a line.
const (
	SourceStanding = "standing"
	SourceEligible = "eligible"
	// a grant's lines have source "grant:<id>"
)

// AllPermissions is a line's Permission when it stands for the whole role.
const AllPermissions = "*"

// Line is one row of a review.
type Line struct {
	ID         string    `json:"id"` // person:role:source[:permission]
	Person     string    `json:"person"`
	PersonID   string    `json:"person_id"`
	Status     string    `json:"status"`
	Role       string    `json:"role"`
	Source     string    `json:"source"`
	Permission string    `json:"permission"`
	LastUsed   time.Time `json:"last_used,omitzero"`
	// Tracked is false for read-only permissions, whose use the log does
	// not record (reads never write to it); they are never unused.
	Tracked    bool      `json:"tracked"`
	Unused     bool      `json:"unused"`
	GrantState string    `json:"grant_state,omitempty"`
	Expires    time.Time `json:"expires,omitzero"`
}

// Review is a whole review.
type Review struct {
	At         time.Time `json:"at"`
	UnusedDays int       `json:"unused_days"`
	Lines      []Line    `json:"lines"`
}

// Inputs are what Build needs.
type Inputs struct {
	People   []identity.User
	Eligible []elevate.Eligibility
	Grants   []elevate.Grant
	// LastUse is person id → action → the last allowed use, and
	// "grant:<id>" → action → the last allowed use through that grant.
	LastUse map[string]map[string]time.Time
	// RoleActions is role → the actions it permits.
	RoleActions map[string][]string
	Now         time.Time
	UnusedDays  int
}

// Build lays out the review: per person (by name), per role and source, a
// line for the role and one per permission. A line is unused when it was
// not used in the last UnusedDays (never used counts as unused). Uses
// count for the source they came through: a grant's own decisions for a
// grant, the person's grants of the role for an eligibility, and the
// person's uses for a standing role, whose role line looks only at the
// permissions the role adds to viewer's (reading is not using operator).
func Build(in Inputs) Review {
	r := Review{At: in.Now, UnusedDays: in.UnusedDays, Lines: []Line{}}
	cutoff := in.Now.AddDate(0, 0, -in.UnusedDays)
	people := slices.Clone(in.People)
	slices.SortFunc(people, func(a, b identity.User) int { return strings.Compare(a.Username, b.Username) })
	for _, p := range people {
		type held struct {
			role, source, state string
			expires             time.Time
		}
		var hs []held
		for _, role := range p.Roles {
			hs = append(hs, held{role: role, source: SourceStanding})
		}
		for _, e := range in.Eligible {
			if e.PersonID == p.ID {
				hs = append(hs, held{role: e.Role, source: SourceEligible})
			}
		}
		for _, g := range in.Grants {
			if st := g.StateAt(in.Now); g.PersonID == p.ID && (st == elevate.StateActive || st == elevate.StatePending) {
				hs = append(hs, held{role: g.Role, source: "grant:" + g.ID, state: st, expires: g.ExpiresAt})
			}
		}
		for _, h := range hs {
			uses := in.LastUse[p.ID]
			switch {
			case strings.HasPrefix(h.source, "grant:"):
				uses = in.LastUse[h.source]
			case h.source == SourceEligible:
				uses = map[string]time.Time{}
				for _, g := range in.Grants {
					if g.PersonID == p.ID && g.Role == h.role {
						for a, t := range in.LastUse["grant:"+g.ID] {
							if t.After(uses[a]) {
								uses[a] = t
							}
						}
					}
				}
			}
			base := p.Username + ":" + h.role + ":" + h.source
			roleLine := Line{ID: base, Person: p.Username, PersonID: p.ID, Status: p.Status, Role: h.role, Source: h.source,
				Permission: AllPermissions, GrantState: h.state, Expires: h.expires}
			var perms []Line
			for _, action := range in.RoleActions[h.role] {
				l := roleLine
				l.ID, l.Permission, l.LastUsed, l.Tracked = base+":"+action, action, uses[action], !ReadOnly(action)
				l.Unused = l.Tracked && l.LastUsed.Before(cutoff)
				distinctive := l.Tracked && (h.role == "viewer" || !slices.Contains(in.RoleActions["viewer"], action))
				if distinctive && l.LastUsed.After(roleLine.LastUsed) {
					roleLine.LastUsed = l.LastUsed
				}
				perms = append(perms, l)
			}
			roleLine.Tracked = slices.ContainsFunc(perms, func(l Line) bool { return l.Tracked })
			roleLine.Unused = roleLine.Tracked && roleLine.LastUsed.Before(cutoff)
			r.Lines = append(r.Lines, roleLine)
			r.Lines = append(r.Lines, perms...)
		}
	}
	return r
}

// ReadOnly reports whether action only reads (its routes are GETs): the
// log records no use of it.
func ReadOnly(action string) bool {
	if action == "whoami" || action == "log.read" || action == "policy.test" {
		return true
	}
	for _, suffix := range []string{".list", ".get", ".versions"} {
		if strings.HasSuffix(action, suffix) {
			return true
		}
	}
	return false
}

// CSVHeader is the first line of a review's CSV.
var CSVHeader = []string{"line", "person", "status", "role", "source", "permission", "last_used", "tracked", "unused", "grant_state", "expires"}

// CSV renders the review, one line per row.
func (r Review) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(CSVHeader)
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, l := range r.Lines {
		_ = w.Write([]string{l.ID, l.Person, l.Status, l.Role, l.Source, l.Permission, ts(l.LastUsed), fmt.Sprint(l.Tracked), fmt.Sprint(l.Unused), l.GrantState, ts(l.Expires)})
	}
	w.Flush()
	return b.Bytes()
}

// Unused counts the unused lines.
func (r Review) Unused() int {
	n := 0
	for _, l := range r.Lines {
		if l.Unused {
			n++
		}
	}
	return n
}

// Deps are what the service reads and changes.
type Deps struct {
	// InTx runs fn in one transaction that can append audit entries.
	InTx   func(ctx context.Context, fn func(audit.Tx) error) error
	People interface {
		ListUsers(ctx context.Context) ([]identity.User, error)
	}
	Elevate *elevate.Service
	// LastUse reads the log: person id → action → last allowed use.
	LastUse func(ctx context.Context) (map[string]map[string]time.Time, error)
	Policy  interface {
		Decide(ctx context.Context, req policy.Request) policy.Decision
	}
	// RemoveStandingRole takes a standing role away (identity.Service).
	RemoveStandingRole func(ctx context.Context, by wire.Principal, personID, role, line string) error
	Now                func() time.Time
	Log                *slog.Logger
}

// Service runs reviews.
type Service struct{ d Deps }

// New returns a Service.
func New(d Deps) (*Service, error) {
	if d.InTx == nil || d.People == nil || d.Elevate == nil || d.LastUse == nil || d.Policy == nil || d.RemoveStandingRole == nil {
		return nil, errors.New("review: every dependency is required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{d: d}, nil
}

// roleActions asks the policy in force which actions each role permits,
// on the System resource, for a person holding only that role with a
// fresh second factor.
func (s *Service) roleActions(ctx context.Context, now time.Time) map[string][]string {
	out := map[string][]string{}
	for _, role := range identity.Roles {
		p := wire.Principal{Kind: "person", ID: "review-sample-" + role, Name: role, Roles: []string{role}, MFAAt: now}
		for _, a := range policy.Actions {
			if d := s.d.Policy.Decide(ctx, policy.Request{Principal: p, Action: a, Context: map[string]any{"now": now.Unix()}}); d.Allow {
				out[role] = append(out[role], a)
			}
		}
	}
	return out
}

func (s *Service) build(ctx context.Context, unusedDays int) (Review, error) {
	if unusedDays < 1 || unusedDays > 3650 {
		return Review{}, usererr.New(usererr.Invalid, "invalid_unused_days", "unused_days must be from 1 to 3650, not %d", unusedDays)
	}
	now := s.d.Now()
	people, err := s.d.People.ListUsers(ctx)
	if err != nil {
		return Review{}, fmt.Errorf("list people: %w", err)
	}
	el, err := s.d.Elevate.Eligibility(ctx, "")
	if err != nil {
		return Review{}, err
	}
	gs, err := s.d.Elevate.List(ctx, "")
	if err != nil {
		return Review{}, err
	}
	uses, err := s.d.LastUse(ctx)
	if err != nil {
		return Review{}, fmt.Errorf("read last uses from the log: %w", err)
	}
	return Build(Inputs{People: people, Eligible: el, Grants: gs, LastUse: uses, RoleActions: s.roleActions(ctx, now), Now: now, UnusedDays: unusedDays}), nil
}

// Generate builds a review and records that by took it.
func (s *Service) Generate(ctx context.Context, by wire.Principal, unusedDays int, format string) (Review, error) {
	r, err := s.build(ctx, unusedDays)
	if err != nil {
		return Review{}, err
	}
	canon, err := json.Marshal(r)
	if err != nil {
		return Review{}, fmt.Errorf("encode review: %w", err)
	}
	sum := sha256.Sum256(canon)
	err = s.d.InTx(ctx, func(tx audit.Tx) error {
		return audit.Append(ctx, tx, audit.Entry{Kind: KindReviewed, Version: 1, Actor: by.Actor(), Subject: "access:review", Time: r.At,
			Data: map[string]any{"lines": len(r.Lines), "unused": r.Unused(), "unused_days": unusedDays, "sha256": hex.EncodeToString(sum[:]), "format": format}})
	})
	return r, err
}

// Decision is one admin's verdict on one line.
type Decision struct {
	Line     string `json:"line"`
	Decision string `json:"decision"` // confirm | revoke
}

// Decide applies decisions in order and stops at the first that fails;
// the ones before it stand (each is its own change, with its entry).
func (s *Service) Decide(ctx context.Context, by wire.Principal, ds []Decision) (done int, err error) {
	if len(ds) == 0 || len(ds) > 1000 {
		return 0, usererr.New(usererr.Invalid, "decisions_required", "give from 1 to 1000 decisions")
	}
	r, err := s.build(ctx, 90)
	if err != nil {
		return 0, err
	}
	byID := map[string]Line{}
	for _, l := range r.Lines {
		byID[l.ID] = l
	}
	for i, d := range ds {
		l, ok := byID[d.Line]
		if !ok {
			return i, usererr.New(usererr.NotFound, "line_not_found", "There is no line %q in the current review; take a new review (interlock access review) and use its line ids.", d.Line)
		}
		switch d.Decision {
		case "confirm":
			err = s.d.InTx(ctx, func(tx audit.Tx) error {
				return audit.Append(ctx, tx, audit.Entry{Kind: KindConfirmed, Version: 1, Actor: by.Actor(), Subject: "person:" + l.PersonID, Time: s.d.Now(),
					Data: map[string]any{"line": l.ID, "role": l.Role, "source": l.Source}})
			})
		case "revoke":
			err = s.revoke(ctx, by, l)
		default:
			return i, usererr.New(usererr.Invalid, "invalid_decision", "Decision %q on line %s is neither confirm nor revoke.", d.Decision, d.Line)
		}
		if err != nil {
			return i, err
		}
	}
	return len(ds), nil
}

func (s *Service) revoke(ctx context.Context, by wire.Principal, l Line) error {
	if l.Permission != AllPermissions {
		return usererr.New(usererr.Invalid, "revoke_role_line", "Line %s is one permission of role %s; roles are revoked whole: revoke line %s:%s:%s.",
			l.ID, l.Role, l.Person, l.Role, l.Source)
	}
	var err error
	switch {
	case l.Source == SourceStanding:
		err = s.d.RemoveStandingRole(ctx, by, l.PersonID, l.Role, l.ID)
	case l.Source == SourceEligible:
		var keep []string
		es, e := s.d.Elevate.Eligibility(ctx, l.PersonID)
		if e != nil {
			return e
		}
		for _, x := range es {
			if x.Role != l.Role {
				keep = append(keep, x.Role)
			}
		}
		_, err = s.d.Elevate.SetEligible(ctx, by, l.Person, keep)
	case strings.HasPrefix(l.Source, "grant:"):
		_, err = s.d.Elevate.Revoke(ctx, by, strings.TrimPrefix(l.Source, "grant:"), "access review")
	}
	if err != nil {
		return err
	}
	return s.d.InTx(ctx, func(tx audit.Tx) error {
		return audit.Append(ctx, tx, audit.Entry{Kind: KindRevoked, Version: 1, Actor: by.Actor(), Subject: "person:" + l.PersonID, Time: s.d.Now(),
			Data: map[string]any{"line": l.ID, "role": l.Role, "source": l.Source}})
	})
}
