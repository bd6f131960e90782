// Package elevate is just-in-time elevation: a person holds some roles for
// good (standing, in internal/identity) and may be *eligible* for others,
// which they hold only while a time-boxed grant is active. A grant is
// asked for with a reason and a duration; the Cedar policy says how many
// people must approve it and in which roles (approval policies on action
// elevate.request, as for operations); an approval needs another,
// independent person (identity.CheckIndependentApprover) with fresh MFA;
// the grant ends by itself at its expiry on the server's clock, or earlier
// when someone revokes it. Every change commits with its audit entry.
//
// internal/app adds the roles of a person's active grants to the
// principal at authentication (so operations, approvals and policy see
// them alike) and records every decision made for an elevated person with
// the grants that were in force.
package elevate

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Grant states. A grant is active only while its state is StateActive and
// the clock is before ExpiresAt; past it, it is expired without a write.
const (
	StatePending = "pending"
	StateActive  = "active"
	// StateExpired is reported as soon as the time is up, and stored by
	// [Service.ExpireDue] with its log entry.
	StateExpired = "expired"
	StateDenied  = "denied"
	StateRevoked = "revoked"
	// StateWithdrawn is a pending request its own requester took back.
	StateWithdrawn = "withdrawn"
)

// Limits on a request.
const (
	MaxDuration = 12 * time.Hour
	MinDuration = time.Minute
	// PendingTTL is how long a request waits for approval.
	PendingTTL   = 24 * time.Hour
	maxReasonLen = 500
	// freshMFA is how recent an approver's second factor must be, as in
	// the default policy's mfa.fresh-for-approval (checked here too, so
	// that a looser policy cannot drop it).
	freshMFA = 5 * time.Minute
)

// Approval is one person's approval of a grant.
type Approval struct {
	PersonID string    `json:"person_id"`
	At       time.Time `json:"at"`
}

// Grant is one request for a role for a while.
type Grant struct {
	ID            string
	PersonID      string
	Role          string
	Reason        string
	Duration      time.Duration
	State         string // as stored; see [Grant.StateAt]
	RequestedAt   time.Time
	Needed        int
	ApproverRoles []string
	PolicyIDs     []string
	Approvals     []Approval
	StartsAt      time.Time // zero until active
	ExpiresAt     time.Time // zero until active
	EndedAt       time.Time // denied, revoked or withdrawn
	EndedBy       string    // audit actor
	EndReason     string
}

// StateAt is the grant's state at now: an active grant past its expiry is
// expired, and so is a pending request past PendingTTL.
func (g Grant) StateAt(now time.Time) string {
	switch {
	case g.State == StateActive && !now.Before(g.ExpiresAt):
		return StateExpired
	case g.State == StatePending && !now.Before(g.RequestedAt.Add(PendingTTL)):
		return StateExpired
	}
	return g.State
}

// Eligibility is a role a person may be elevated to.
type Eligibility struct {
	PersonID  string
	Role      string
	GrantedBy string
	GrantedAt time.Time
}

// Store is what the service needs from the database (internal/store
// implements it). Read methods return an error for which IsNotFound is
// true when the row does not exist.
type Store interface {
	Reader
	InTx(ctx context.Context, fn func(Tx) error) error
	IsNotFound(err error) bool
}

// Reader holds the reads, outside and inside a transaction.
type Reader interface {
	ElevationGrant(ctx context.Context, id string) (Grant, error)
	// ElevationGrants lists grants, newest first: personID's, or everyone's for "".
	ElevationGrants(ctx context.Context, personID string) ([]Grant, error)
	// ActiveElevationGrants lists personID's grants in state active whose
	// expiry is after now.
	ActiveElevationGrants(ctx context.Context, personID string, now time.Time) ([]Grant, error)
	// DueElevationGrants lists grants stored as active whose expiry is at
	// or before now, and pending ones requested at or before pendingBefore.
	DueElevationGrants(ctx context.Context, now, pendingBefore time.Time) ([]Grant, error)
	// EligibleRoles lists personID's eligibility, or everyone's for "".
	EligibleRoles(ctx context.Context, personID string) ([]Eligibility, error)
}

// Tx is one transaction; its writes commit with its audit entries.
type Tx interface {
	audit.Tx
	Reader
	InsertElevationGrant(ctx context.Context, g Grant) error
	// UpdateElevationGrant stores g's state, approvals, times and ending.
	UpdateElevationGrant(ctx context.Context, g Grant) error
	// SetEligibleRoles replaces personID's eligibility with roles.
	SetEligibleRoles(ctx context.Context, personID string, roles []Eligibility) error
}

// Requirements says how many approvals a grant needs: policy.Engine.
type Requirements interface {
	ApprovalRequirement(ctx context.Context, req policy.Request) (policy.Requirement, error)
}

// Independence refuses an approver who is not independent of the
// requester: identity.Service.
type Independence interface {
	CheckIndependentApprover(ctx context.Context, requesterID, approverID string, requestedAt time.Time) error
}

// People lists accounts: identity.Service.
type People interface {
	ListUsers(ctx context.Context) ([]identity.User, error)
}

// Config configures a Service.
type Config struct {
	Store        Store
	Requirements Requirements
	Independence Independence
	People       People
	// Now is the server's clock; grants start and expire by it. nil means time.Now.
	Now func() time.Time
	// LogNow is the server's clock for audit entries (the log refuses
	// entries out of time order) and for the freshness of an approver's
	// second factor, which sessions record by it; nil means Now. Only
	// tests set it apart from Now, to move grants past their expiry.
	LogNow func() time.Time
	Log    *slog.Logger
}

// Service manages eligibility and grants.
type Service struct {
	store  Store
	req    Requirements
	indep  Independence
	ppl    People
	now    func() time.Time
	logNow func() time.Time
	log    *slog.Logger
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Requirements == nil || cfg.Independence == nil || cfg.People == nil {
		return nil, errors.New("elevate: Store, Requirements, Independence and People are required")
	}
	s := &Service{store: cfg.Store, req: cfg.Requirements, indep: cfg.Independence, ppl: cfg.People, now: cfg.Now, logNow: cfg.LogNow, log: cfg.Log}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logNow == nil {
		s.logNow = s.now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.now() }

func newGrantID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("grant id: %w", err)
	}
	return "gr_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

func (s *Service) user(ctx context.Context, pick func(identity.User) bool, what string) (identity.User, error) {
	us, err := s.ppl.ListUsers(ctx)
	if err != nil {
		return identity.User{}, fmt.Errorf("list users: %w", err)
	}
	for _, u := range us {
		if pick(u) {
			return u, nil
		}
	}
	return identity.User{}, usererr.New(usererr.NotFound, "user_not_found", "There is no user %s.", what)
}

// UserByName finds an account by username.
func (s *Service) UserByName(ctx context.Context, name string) (identity.User, error) {
	return s.user(ctx, func(u identity.User) bool { return u.Username == name }, name)
}

func validRole(r string) bool { return slices.Contains(identity.Roles, r) }

// SetEligible makes username eligible for exactly roles (none removes all
// eligibility). A role the person already holds standing is refused (it
// would mean nothing), and so is an unknown role. Roles that are no longer
// eligible lose their active and pending grants at once.
func (s *Service) SetEligible(ctx context.Context, by wire.Principal, username string, roles []string) ([]Eligibility, error) {
	u, err := s.UserByName(ctx, username)
	if err != nil {
		return nil, err
	}
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	for _, r := range roles {
		if !validRole(r) {
			return nil, usererr.New(usererr.Invalid, "invalid_role", "Role %q does not exist; use one of %s.", r, strings.Join(identity.Roles, ", "))
		}
		if slices.Contains(u.Roles, r) {
			return nil, usererr.New(usererr.Invalid, "role_standing", "%s already holds %s for good; eligibility for it would mean nothing.", username, r)
		}
	}
	now := s.now()
	var out []Eligibility
	err = s.store.InTx(ctx, func(tx Tx) error {
		before, err := tx.EligibleRoles(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("read eligibility: %w", err)
		}
		out = out[:0]
		var prev []string
		for _, e := range before {
			prev = append(prev, e.Role)
		}
		for _, r := range roles {
			e := Eligibility{PersonID: u.ID, Role: r, GrantedBy: by.Actor(), GrantedAt: now}
			if i := slices.IndexFunc(before, func(b Eligibility) bool { return b.Role == r }); i >= 0 {
				e = before[i] // unchanged: keep who made it and when
			}
			out = append(out, e)
		}
		if err := tx.SetEligibleRoles(ctx, u.ID, out); err != nil {
			return fmt.Errorf("set eligibility: %w", err)
		}
		// Grants for roles no longer eligible end now.
		gs, err := tx.ElevationGrants(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("read grants: %w", err)
		}
		for _, g := range gs {
			st := g.StateAt(now)
			if (st == StateActive || st == StatePending) && !slices.Contains(roles, g.Role) {
				if err := s.end(ctx, tx, g, StateRevoked, by, "no longer eligible for "+g.Role, now); err != nil {
					return err
				}
			}
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: KindEligibilitySet, Version: 1, Actor: by.Actor(), Subject: "person:" + u.ID, Time: s.logNow(),
			Data: map[string]any{"roles": anyStrings(roles), "previous": anyStrings(prev)}, Personal: map[string]string{"username": username}})
	})
	return out, err
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Request asks for role for d. The requester must be eligible for it. The
// policy's approval rules for elevate.request (context role, duration_s)
// say how many approvals it needs; with none it is active at once.
func (s *Service) Request(ctx context.Context, p wire.Principal, role string, d time.Duration, reason string) (Grant, error) {
	if p.Kind != "person" {
		return Grant{}, usererr.New(usererr.Forbidden, "not_a_person", "Only a person can ask for elevation.")
	}
	if !validRole(role) {
		return Grant{}, usererr.New(usererr.Invalid, "invalid_role", "Role %q does not exist; use one of %s.", role, strings.Join(identity.Roles, ", "))
	}
	if d < MinDuration || d > MaxDuration {
		return Grant{}, usererr.New(usererr.Invalid, "invalid_duration", "A grant lasts from %s to %s; %s is outside that.", MinDuration, MaxDuration, d)
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > maxReasonLen {
		return Grant{}, usererr.New(usererr.Invalid, "reason_required", "Say why you need %s with --reason (a ticket or incident, at most %d characters).", role, maxReasonLen)
	}
	id, err := newGrantID()
	if err != nil {
		return Grant{}, err
	}
	rq, err := s.req.ApprovalRequirement(ctx, policy.Request{Principal: p, Action: policy.ActionElevateRequest,
		Resource: policy.Resource{Type: policy.ResourceSystem, ID: "interlock"},
		Context:  map[string]any{"role": role, "duration_s": int64(d / time.Second), "reason": reason}})
	if err != nil {
		return Grant{}, fmt.Errorf("approval requirement: %w", err)
	}
	now := s.now()
	g := Grant{ID: id, PersonID: p.ID, Role: role, Reason: reason, Duration: d, State: StatePending, RequestedAt: now,
		Needed: rq.Count, ApproverRoles: rq.Roles, PolicyIDs: rq.PolicyIDs}
	err = s.store.InTx(ctx, func(tx Tx) error {
		el, err := tx.EligibleRoles(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("read eligibility: %w", err)
		}
		if !slices.ContainsFunc(el, func(e Eligibility) bool { return e.Role == role }) {
			return usererr.New(usererr.Forbidden, "not_eligible", "You are not eligible for %s; an admin makes people eligible with interlock grants eligible.", role)
		}
		gs, err := tx.ElevationGrants(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("read grants: %w", err)
		}
		for _, o := range gs {
			if o.Role == role && (o.StateAt(now) == StatePending || o.StateAt(now) == StateActive) {
				return usererr.New(usererr.Conflict, "grant_exists", "You already have grant %s for %s (%s); revoke it first to ask again.", o.ID, role, o.StateAt(now))
			}
		}
		if err := tx.InsertElevationGrant(ctx, g); err != nil {
			return fmt.Errorf("insert grant: %w", err)
		}
		if err := audit.Append(ctx, tx, audit.Entry{Kind: KindRequested, Version: 1, Actor: p.Actor(), Subject: "grant:" + g.ID, Time: s.logNow(),
			Data: map[string]any{"role": role, "duration_s": int64(d / time.Second), "approvals_needed": g.Needed,
				"approver_roles": anyStrings(g.ApproverRoles), "policy_ids": anyStrings(g.PolicyIDs)},
			Personal: map[string]string{"reason": reason}}); err != nil {
			return err
		}
		if g.Needed == 0 {
			return s.activate(ctx, tx, &g, now)
		}
		return nil
	})
	return g, err
}

func (s *Service) activate(ctx context.Context, tx Tx, g *Grant, now time.Time) error {
	g.State, g.StartsAt, g.ExpiresAt = StateActive, now, now.Add(g.Duration)
	if err := tx.UpdateElevationGrant(ctx, *g); err != nil {
		return fmt.Errorf("activate grant: %w", err)
	}
	approvers := make([]any, 0, len(g.Approvals))
	for _, a := range g.Approvals {
		approvers = append(approvers, "person:"+a.PersonID)
	}
	return audit.Append(ctx, tx, audit.Entry{Kind: KindActivated, Version: 1, Actor: "person:" + g.PersonID, Subject: "grant:" + g.ID, Time: s.logNow(),
		Data: map[string]any{"role": g.Role, "starts_at": g.StartsAt.Unix(), "expires_at": g.ExpiresAt.Unix(), "approvers": approvers}})
}

// Approve records p's approval of grant id; the grant becomes active when
// it has the approvals it needs. Refusals (self-approval, a sock puppet,
// the wrong role, stale MFA) are audit entries too.
func (s *Service) Approve(ctx context.Context, p wire.Principal, id string) (Grant, error) {
	now := s.now()
	g, err := s.load(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	if st := g.StateAt(now); st != StatePending {
		return Grant{}, usererr.New(usererr.Conflict, "grant_not_pending", "Grant %s is %s; only a pending request can be approved.", id, st)
	}
	if refusal := s.checkApprover(ctx, p, g, now); refusal != nil {
		ue, _ := usererr.As(refusal)
		code := "refused"
		if ue != nil {
			code = ue.Code
		}
		err := s.store.InTx(ctx, func(tx Tx) error {
			return audit.Append(ctx, tx, audit.Entry{Kind: KindApprovalRefused, Version: 1, Actor: p.Actor(), Subject: "grant:" + g.ID, Time: s.logNow(),
				Data: map[string]any{"role": g.Role, "code": code}, Personal: map[string]string{"why": refusal.Error()}})
		})
		if err != nil {
			return Grant{}, err
		}
		return Grant{}, refusal
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		cur, err := tx.ElevationGrant(ctx, id)
		if err != nil {
			return fmt.Errorf("reload grant: %w", err)
		}
		if cur.StateAt(now) != StatePending {
			return usererr.New(usererr.Conflict, "grant_not_pending", "Grant %s is %s; only a pending request can be approved.", id, cur.StateAt(now))
		}
		if slices.ContainsFunc(cur.Approvals, func(a Approval) bool { return a.PersonID == p.ID }) {
			return usererr.New(usererr.Conflict, "already_approved", "You already approved grant %s; it needs another person.", id)
		}
		cur.Approvals = append(cur.Approvals, Approval{PersonID: p.ID, At: now})
		g = cur
		if err := audit.Append(ctx, tx, audit.Entry{Kind: KindApproved, Version: 1, Actor: p.Actor(), Subject: "grant:" + g.ID, Time: s.logNow(),
			Data: map[string]any{"role": g.Role, "requester": "person:" + g.PersonID, "approvals": len(g.Approvals), "needed": g.Needed}}); err != nil {
			return err
		}
		if len(g.Approvals) >= g.Needed {
			return s.activate(ctx, tx, &g, now)
		}
		if err := tx.UpdateElevationGrant(ctx, g); err != nil {
			return fmt.Errorf("record approval: %w", err)
		}
		return nil
	})
	return g, err
}

// checkApprover says why p may not approve g, or nil.
func (s *Service) checkApprover(ctx context.Context, p wire.Principal, g Grant, now time.Time) error {
	if p.Kind != "person" {
		return usererr.New(usererr.Forbidden, "person_required", "Only a person can approve a grant.")
	}
	if err := s.indep.CheckIndependentApprover(ctx, g.PersonID, p.ID, g.RequestedAt); err != nil {
		return err
	}
	if p.MFAAt.IsZero() || s.logNow().Sub(p.MFAAt) > freshMFA {
		return usererr.New(usererr.Forbidden, "mfa_stale", "Approving a grant needs a second factor proved in the last 5 minutes; give a current one-time code with --otp CODE and try again.")
	}
	// Only standing roles count: a role held through a grant must not
	// approve grants (two eligible people would elevate each other).
	u, err := s.user(ctx, func(u identity.User) bool { return u.ID == p.ID }, p.Name)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(u.Roles, func(r string) bool { return slices.Contains(g.ApproverRoles, r) }) {
		return usererr.New(usererr.Forbidden, "approver_role", "Approving grant %s needs a standing role among %s; you hold %s.",
			g.ID, strings.Join(g.ApproverRoles, ", "), strings.Join(u.Roles, ", "))
	}
	return nil
}

func (s *Service) load(ctx context.Context, id string) (Grant, error) {
	g, err := s.store.ElevationGrant(ctx, id)
	if s.store.IsNotFound(err) {
		return Grant{}, usererr.New(usererr.NotFound, "grant_not_found", "There is no grant %s.", id)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("load grant %s: %w", id, err)
	}
	return g, nil
}

// Get returns one grant.
func (s *Service) Get(ctx context.Context, id string) (Grant, error) { return s.load(ctx, id) }

// Deny ends a pending request without granting it. The requester cannot
// deny their own (they withdraw it with Revoke).
func (s *Service) Deny(ctx context.Context, p wire.Principal, id, reason string) (Grant, error) {
	return s.finish(ctx, p, id, reason, StateDenied, func(g Grant, st string) error {
		if st != StatePending {
			return usererr.New(usererr.Conflict, "grant_not_pending", "Grant %s is %s; only a pending request can be denied.", id, st)
		}
		if g.PersonID == p.ID {
			return usererr.New(usererr.Forbidden, "self_deny", "This is your own request; take it back with interlock grants revoke %s.", id)
		}
		return nil
	})
}

// Revoke ends a grant now: active ones lose their role at once, pending
// ones are withdrawn. Callers decide who may (internal/api: the holder,
// or whoever policy allows elevate.revoke).
func (s *Service) Revoke(ctx context.Context, p wire.Principal, id, reason string) (Grant, error) {
	return s.finish(ctx, p, id, reason, StateRevoked, func(g Grant, st string) error {
		if st != StatePending && st != StateActive {
			return usererr.New(usererr.Conflict, "grant_ended", "Grant %s is already %s.", id, st)
		}
		return nil
	})
}

func (s *Service) finish(ctx context.Context, p wire.Principal, id, reason, state string, check func(Grant, string) error) (Grant, error) {
	if len(reason) > maxReasonLen {
		return Grant{}, usererr.New(usererr.Invalid, "reason_too_long", "The reason is longer than %d characters.", maxReasonLen)
	}
	now := s.now()
	var g Grant
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		g, err = tx.ElevationGrant(ctx, id)
		if s.store.IsNotFound(err) {
			return usererr.New(usererr.NotFound, "grant_not_found", "There is no grant %s.", id)
		} else if err != nil {
			return fmt.Errorf("load grant %s: %w", id, err)
		}
		st := g.StateAt(now)
		if err := check(g, st); err != nil {
			return err
		}
		if state == StateRevoked && st == StatePending && g.PersonID == p.ID {
			state = StateWithdrawn
		}
		if err := s.end(ctx, tx, g, state, p, reason, now); err != nil {
			return err
		}
		g.State, g.EndedAt, g.EndedBy, g.EndReason = state, now, p.Actor(), reason
		return nil
	})
	return g, err
}

func (s *Service) end(ctx context.Context, tx Tx, g Grant, state string, by wire.Principal, reason string, now time.Time) error {
	before := g.StateAt(now)
	g.State, g.EndedAt, g.EndedBy, g.EndReason = state, now, by.Actor(), reason
	if err := tx.UpdateElevationGrant(ctx, g); err != nil {
		return fmt.Errorf("end grant: %w", err)
	}
	kind := KindRevoked
	if state == StateDenied {
		kind = KindDenied
	}
	return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: by.Actor(), Subject: "grant:" + g.ID, Time: s.logNow(),
		Data:     map[string]any{"role": g.Role, "holder": "person:" + g.PersonID, "state_before": before, "state": state},
		Personal: map[string]string{"reason": reason}})
}

// ExpireDue stores the end of every grant whose time is up (and every
// request that waited PendingTTL), each with an elevate.expired entry, so
// that the log says when access ended. Access itself ended at expiry
// whether or not this ran. It returns how many it recorded.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	now := s.now()
	// Look first, outside a transaction: most ticks find nothing, and a
	// write transaction would take the database's write lock for naught.
	if due, err := s.store.DueElevationGrants(ctx, now, now.Add(-PendingTTL)); err != nil || len(due) == 0 {
		return 0, err
	}
	n := 0
	err := s.store.InTx(ctx, func(tx Tx) error {
		n = 0
		gs, err := tx.DueElevationGrants(ctx, now, now.Add(-PendingTTL))
		if err != nil {
			return fmt.Errorf("due grants: %w", err)
		}
		for _, g := range gs {
			before := g.State
			g.State, g.EndedAt, g.EndedBy, g.EndReason = StateExpired, now, "system", "time is up"
			if err := tx.UpdateElevationGrant(ctx, g); err != nil {
				return fmt.Errorf("expire grant: %w", err)
			}
			at := g.ExpiresAt
			if before == StatePending {
				at = g.RequestedAt.Add(PendingTTL)
			}
			if err := audit.Append(ctx, tx, audit.Entry{Kind: KindExpired, Version: 1, Actor: "system", Subject: "grant:" + g.ID, Time: s.logNow(),
				Data: map[string]any{"role": g.Role, "holder": "person:" + g.PersonID, "state_before": before, "ended_at": at.Unix()}}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// List lists grants, newest first: personID's, or everyone's for "".
func (s *Service) List(ctx context.Context, personID string) ([]Grant, error) {
	gs, err := s.store.ElevationGrants(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	return gs, nil
}

// Eligibility lists personID's eligible roles, or everyone's for "".
func (s *Service) Eligibility(ctx context.Context, personID string) ([]Eligibility, error) {
	es, err := s.store.EligibleRoles(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("list eligibility: %w", err)
	}
	return es, nil
}

// Active returns personID's grants in force now.
func (s *Service) Active(ctx context.Context, personID string) ([]Grant, error) {
	gs, err := s.store.ActiveElevationGrants(ctx, personID, s.now())
	if err != nil {
		return nil, fmt.Errorf("active grants of %s: %w", personID, err)
	}
	return gs, nil
}

// Elevate adds the roles of p's active grants to p and names the grants
// in p.Grants. A role p already holds is not added twice.
func (s *Service) Elevate(ctx context.Context, p wire.Principal) (wire.Principal, error) {
	if p.Kind != "person" {
		return p, nil
	}
	gs, err := s.Active(ctx, p.ID)
	if err != nil || len(gs) == 0 {
		return p, err
	}
	p.Roles = slices.Clone(p.Roles)
	for _, g := range gs {
		if !slices.Contains(p.Roles, g.Role) {
			p.Roles = append(p.Roles, g.Role)
		}
		p.Grants = append(p.Grants, g.ID)
	}
	return p, nil
}
