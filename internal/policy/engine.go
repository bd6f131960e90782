package policy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// EngineConfig configures an [Engine]. The zero value is usable.
type EngineConfig struct {
	// Now is the clock for mfa_age_s and now; nil means time.Now.
	Now func() time.Time
	// Log receives one debug line per decision (info for denials); nil discards.
	Log *slog.Logger
}

// Engine decides requests against the current policy set. It is safe for
// concurrent use; [Engine.Load] swaps the policy set atomically, so a
// decision sees either the old set or the new one, never a mix.
//
// Before evaluating, the Engine picks the policies that can apply to the
// request's action (those whose scope names it, plus those whose scope is
// any action): cedar-go evaluates every policy it is handed, so this index
// is what keeps a decision cheap with hundreds of policies.
type Engine struct {
	cur    atomic.Pointer[compiled]
	now    func() time.Time
	log    *slog.Logger
	people people
}

// NewEngine returns an Engine running the embedded default policy.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	e := &Engine{now: cfg.Now, log: cfg.Log}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	c, err := compile(DefaultText)
	if err != nil {
		return nil, fmt.Errorf("compile default policy: %w", err)
	}
	e.cur.Store(c)
	return e, nil
}

// Load validates text and, if it is valid, makes it the policy every later
// decision uses. version is what [Engine.Version] reports (0 = not stored).
// On error the current policy stays in force.
func (e *Engine) Load(text string, version int) error {
	c, err := compile(text)
	if err != nil {
		return err
	}
	c.version = version
	e.cur.Store(c)
	return nil
}

// swapIfNewer puts c in force unless a policy of the same or a later
// stored version already is (two servers, or Apply racing Sync).
func (e *Engine) swapIfNewer(c *compiled) bool {
	for {
		old := e.cur.Load()
		if old.version >= c.version && old.version != 0 {
			return false
		}
		if e.cur.CompareAndSwap(old, c) {
			return true
		}
	}
}

// Version reports the stored version and hash of the policy in force;
// version 0 is the embedded default.
func (e *Engine) Version() (version int, hash string) {
	c := e.cur.Load()
	return c.version, c.hash
}

// Decide answers req with the policy in force. Anything it cannot
// evaluate — an unknown action or resource type, a context value with no
// Cedar form — is a denial whose Errors say why. Default deny.
func (e *Engine) Decide(ctx context.Context, req Request) Decision {
	d := decide(e.cur.Load(), req, e.now(), &e.people)
	lvl := slog.LevelDebug
	if !d.Allow {
		lvl = slog.LevelInfo
	}
	if !e.log.Enabled(ctx, lvl) {
		return d // building the attributes costs a quarter of the allocations
	}
	e.log.LogAttrs(ctx, lvl, "policy decision",
		slog.String("principal", req.Principal.Actor()), slog.String("action", req.Action),
		slog.String("resource", req.Resource.Type+"::"+req.Resource.ID),
		slog.Bool("allow", d.Allow), slog.Any("reasons", d.Reasons), slog.Any("errors", d.Errors))
	return d
}

// ApprovalRequirement evaluates req (typically action op.run on
// Runbook::"<name>" with context risk, removes_capacity, service, count)
// against the approval policies, those annotated @approvals("N"). Among
// the ones whose conditions hold, the largest N wins; its @approver_role
// values (of every policy with that N) are the roles an approver may hold.
// An approval policy that fails to evaluate counts as holding, so an error
// never lowers the requirement. When none holds, the answer is 1 approval
// from role approver: leaving approval rules out never means "none".
func (e *Engine) ApprovalRequirement(ctx context.Context, req Request) (Requirement, error) {
	return approvalRequirement(e.cur.Load(), req, e.now(), &e.people)
}

// DefaultRequirement applies when no approval policy holds.
var DefaultRequirement = Requirement{Count: 1, Roles: []string{"approver"}, PolicyIDs: []string{"builtin.approvals.default"}}

func approvalRequirement(c *compiled, req Request, now time.Time, people *people) (Requirement, error) {
	creq, entities, err := cedarRequest(req, now, people)
	if err != nil {
		return Requirement{}, fmt.Errorf("approval requirement for %s: %w", req.Action, err)
	}
	_, diag := cedar.Authorize(c.approvals, entities, creq)
	var held []cedar.PolicyID
	for _, r := range diag.Reasons {
		held = append(held, r.PolicyID)
	}
	for _, e := range diag.Errors {
		held = append(held, e.PolicyID)
	}
	if len(held) == 0 {
		return cloneRequirement(DefaultRequirement), nil
	}
	out := Requirement{Count: -1}
	for _, id := range held {
		r := c.rules[id]
		switch {
		case r.count > out.Count:
			out = Requirement{Count: r.count, Roles: slices.Clone(r.roles), PolicyIDs: []string{string(id)}}
		case r.count == out.Count:
			out.PolicyIDs = append(out.PolicyIDs, string(id))
			for _, role := range r.roles {
				if !slices.Contains(out.Roles, role) {
					out.Roles = append(out.Roles, role)
				}
			}
		}
	}
	slices.Sort(out.Roles)
	slices.Sort(out.PolicyIDs)
	if out.Count == 0 {
		out.Roles = nil
	}
	return out, nil
}

func cloneRequirement(r Requirement) Requirement {
	return Requirement{Count: r.Count, Roles: slices.Clone(r.Roles), PolicyIDs: slices.Clone(r.PolicyIDs)}
}

// decide answers req with c. people may be nil (no cache).
func decide(c *compiled, req Request, now time.Time, people *people) Decision {
	policies, ok := c.byAction[req.Action]
	if !ok {
		return Decision{Errors: []string{fmt.Sprintf("unknown action %q", req.Action)}}
	}
	return evaluate(policies, req, now, people)
}

// evaluate runs the given policies (already picked for the action) on req.
func evaluate(policies *policyList, req Request, now time.Time, people *people) Decision {
	creq, entities, err := cedarRequest(req, now, people)
	if err != nil {
		return Decision{Errors: []string{err.Error()}}
	}
	ok, diag := cedar.Authorize(policies, entities, creq)
	d := Decision{Allow: ok == cedar.Allow}
	for _, r := range diag.Reasons {
		d.Reasons = append(d.Reasons, string(r.PolicyID))
	}
	for _, e := range diag.Errors {
		d.Errors = append(d.Errors, fmt.Sprintf("policy %s: %s", e.PolicyID, e.Message))
	}
	slices.Sort(d.Reasons)
	slices.Sort(d.Errors)
	return d
}

// cedarRequest turns a Request into Cedar's form and the entities the
// policies may look at: the principal (a Person in its roles, or an Agent)
// and the resource with its attributes. people may be nil.
func cedarRequest(req Request, now time.Time, people *people) (cedar.Request, *requestEntities, error) {
	p := req.Principal
	if p.ID == "" {
		return cedar.Request{}, nil, fmt.Errorf("the principal has no id")
	}
	if !knownActions[req.Action] {
		return cedar.Request{}, nil, fmt.Errorf("unknown action %q", req.Action)
	}
	entities := new(requestEntities)
	switch p.Kind {
	case "person":
		entities.principal = people.entity(p.ID, p.Roles)
	case "agent":
		entities.principal = types.Entity{UID: types.NewEntityUID(EntityAgent, types.String(p.ID))}
	default:
		return cedar.Request{}, nil, fmt.Errorf("unknown principal kind %q", p.Kind)
	}

	res := req.Resource
	if res.Type == "" {
		res.Type, res.ID = ResourceSystem, "interlock"
	}
	if !knownResources[res.Type] {
		return cedar.Request{}, nil, fmt.Errorf("unknown resource type %q", res.Type)
	}
	attrs, err := toRecord(res.Attrs)
	if err != nil {
		return cedar.Request{}, nil, fmt.Errorf("resource attribute %w", err)
	}
	entities.resource = types.Entity{UID: types.NewEntityUID(types.EntityType(res.Type), types.String(res.ID)), Attributes: attrs}

	rm := make(types.RecordMap, len(req.Context)+4)
	rm["source_ip"] = types.String("")
	rm["now"] = types.Long(now.Unix())
	for k, v := range req.Context {
		if k == "mfa_age_s" || k == "device_id" {
			continue // always from the principal
		}
		cv, err := toValue(v)
		if err != nil {
			return cedar.Request{}, nil, fmt.Errorf("context %s: %w", k, err)
		}
		rm[types.String(k)] = cv
	}
	rm["mfa_age_s"] = types.Long(mfaAge(p, now))
	rm["device_id"] = types.String(p.DeviceID)

	return cedar.Request{
		Principal: entities.principal.UID,
		Action:    types.NewEntityUID(EntityAction, types.String(req.Action)),
		Resource:  entities.resource.UID,
		Context:   types.NewRecord(rm),
	}, entities, nil
}

// personEntity is Person::"<id>", a member of Role::"<role>" for each role.
func personEntity(id string, roles []string) types.Entity {
	e := types.Entity{UID: types.NewEntityUID(EntityPerson, types.String(id))}
	if len(roles) == 0 {
		return e // an empty set, without a map
	}
	parents := make([]types.EntityUID, len(roles))
	for i, r := range roles {
		parents[i] = types.NewEntityUID(EntityRole, types.String(r))
	}
	e.Parents = types.NewEntityUIDSet(parents...)
	return e
}

// maxPeople bounds the [people] cache: adding one more empties it first.
const maxPeople = 4096

// people caches the Person entities of the principals seen lately, by
// person id. Building one costs a map for its role set, the same from one
// request to the next. An entry serves only a principal whose roles are
// exactly those it was built from, in the same order, so a change of roles
// is seen by the very next decision. Entities are immutable once built, so
// concurrent decisions may share them.
type people struct {
	m sync.Map     // person id → *person
	n atomic.Int64 // ids added since the last clear; off by at most the decisions in flight
}

type person struct {
	roles  []string // a copy: the caller's slice may change
	entity types.Entity
}

// entity returns the Person entity for id in roles. A nil cache builds it.
func (c *people) entity(id string, roles []string) types.Entity {
	if c == nil {
		return personEntity(id, roles)
	}
	v, found := c.m.Load(id)
	if found {
		if p := v.(*person); slices.Equal(p.roles, roles) {
			return p.entity
		}
	}
	p := &person{roles: slices.Clone(roles), entity: personEntity(id, roles)}
	if !found && c.n.Add(1) > maxPeople {
		c.n.Store(1)
		c.m.Clear()
	}
	c.m.Store(id, p)
	return p.entity
}

// requestEntities is the [types.EntityGetter] of one request: its
// principal and its resource, nothing else (roles have no entity of their
// own). A principal is a Person or an Agent and a resource never is, so
// the two UIDs differ and a lookup is two comparisons, not a map.
type requestEntities struct {
	principal, resource types.Entity
}

func (r *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case r.principal.UID:
		return r.principal, true
	case r.resource.UID:
		return r.resource, true
	}
	return types.Entity{}, false
}

// mfaAge is whole seconds since the principal's last second factor, -1
// when it never proved one.
func mfaAge(p wire.Principal, now time.Time) int64 {
	if p.MFAAt.IsZero() {
		return -1
	}
	age := int64(now.Sub(p.MFAAt) / time.Second)
	if age < 0 {
		return 0 // a clock a little ahead; still fresh
	}
	return age
}
