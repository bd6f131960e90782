package policy

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// Decision states of one (principal, action, resource) in a [wire.PolicyDiff].
const (
	stateDenied  = "denied"
	stateFresh   = "with fresh MFA"
	stateAllowed = "allowed"
)

var stateRank = map[string]int{stateDenied: 0, stateFresh: 1, stateAllowed: 2}

// builtinRoles are the roles Interlock's people hold; a diff also samples
// every other Role either policy names.
var builtinRoles = []string{"viewer", "operator", "approver", "admin"}

// Diff compares two policy texts by what they decide, not by their text:
// both are evaluated with Cedar over every action × every role (a person
// holding that one role, with and without fresh MFA, and an agent), on the
// resource type the action acts on and on every resource of that type
// either policy names; and the approval requirement of op.run over risk ×
// removes_capacity × the services the approval policies name. An action
// whose applicable policies are the same in both texts cannot decide
// differently and is skipped, which keeps a diff of a small edit to a
// large policy cheap.
//
// The diff samples; it does not prove. A condition on a context key or a
// resource attribute it does not vary (source_ip, a resource's tier) can
// hide a difference, which is why every policy change is a change request
// whatever its diff says.
func Diff(oldText, newText string, now time.Time) (wire.PolicyDiff, error) {
	oc, err := compile(oldText)
	if err != nil {
		return wire.PolicyDiff{}, fmt.Errorf("old policy: %w", err)
	}
	nc, err := compile(newText)
	if err != nil {
		return wire.PolicyDiff{}, fmt.Errorf("new policy: %w", err)
	}
	return diffCompiled(oc, nc, now), nil
}

func diffCompiled(oc, nc *compiled, now time.Time) wire.PolicyDiff {
	out := wire.PolicyDiff{OldHash: oc.hash, NewHash: nc.hash}
	oldText, newText := policyTexts(oc), policyTexts(nc)
	for id, t := range newText {
		switch o, ok := oldText[id]; {
		case !ok:
			out.Added = append(out.Added, id)
		case !bytes.Equal(o, t):
			out.Changed = append(out.Changed, id)
		}
	}
	for id := range oldText {
		if _, ok := newText[id]; !ok {
			out.Removed = append(out.Removed, id)
		}
	}
	sort.Strings(out.Added)
	sort.Strings(out.Removed)
	sort.Strings(out.Changed)

	refs := referencedEntities(oc, nc)
	roles := slices.Clone(builtinRoles)
	for _, r := range refs[EntityRole] {
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	type principal struct {
		label string
		p     wire.Principal
	}
	principals := []principal{{"agent", wire.Principal{Kind: "agent", ID: "policy-diff-agent"}}}
	for _, r := range roles {
		principals = append(principals, principal{"role " + r, wire.Principal{Kind: "person", ID: "policy-diff-" + r, Roles: []string{r}}})
	}
	// A person or agent a policy names by id is sampled as itself: a grant
	// to Person::"p_mallory" alone changes nothing for any role.
	for _, id := range refs[EntityPerson] {
		principals = append(principals, principal{fmt.Sprintf("%s::%q", EntityPerson, id), wire.Principal{Kind: "person", ID: id}})
	}
	for _, id := range refs[EntityAgent] {
		principals = append(principals, principal{fmt.Sprintf("%s::%q", EntityAgent, id), wire.Principal{Kind: "agent", ID: id}})
	}

	for _, action := range Actions {
		if samePolicies(oc.byAction[action], nc.byAction[action], oldText, newText) {
			continue
		}
		resources := sampleResources(action, refs)
		// Only a policy that reads mfa_age_s can decide differently with
		// and without fresh MFA; otherwise one decision per sample will do.
		mfa := mentions(oc.byAction[action], oldText, "mfa_age_s") || mentions(nc.byAction[action], newText, "mfa_age_s")
		for _, pr := range principals {
			for _, res := range resources {
				before := decisionState(oc, pr.p, action, res, mfa, now, &out.Samples)
				after := decisionState(nc, pr.p, action, res, mfa, now, &out.Samples)
				if before == after {
					continue
				}
				ch := wire.PermissionChange{Principal: pr.label, Action: action, Resource: resourceLabel(res), Before: before, After: after}
				if stateRank[after] > stateRank[before] {
					out.Gained = append(out.Gained, ch)
				} else {
					out.Lost = append(out.Lost, ch)
				}
			}
		}
	}

	if !samePolicies(oc.approvals, nc.approvals, oldText, newText) {
		out.Approvals = approvalChanges(oc, nc, refs, now, &out.Samples)
	}
	out.Unenumerated = unenumerated(oc, nc, out)
	return out
}

// variedInputs are the condition inputs the diff varies: MFA age for every
// policy, and for approval rules the context approvalChanges samples.
// Principals and resources it samples by id, never by attribute.
var variedInputs = map[string]bool{"context.mfa_age_s": true}

var variedApprovalInputs = map[string]bool{"context.mfa_age_s": true, "context.risk": true, "context.removes_capacity": true, "context.service": true}

// unenumerated names each policy added, removed or changed between oc and
// nc whose conditions read an input the diff does not vary (see
// [wire.PolicyDiff.Unenumerated]).
func unenumerated(oc, nc *compiled, d wire.PolicyDiff) []string {
	differs := map[string]bool{}
	for _, ids := range [][]string{d.Added, d.Removed, d.Changed} {
		for _, id := range ids {
			differs[id] = true
		}
	}
	reads := map[string]map[string]bool{}
	for _, c := range []*compiled{oc, nc} {
		for _, l := range []*policyList{c.all, c.approvals} {
			varied := variedInputs
			if l == c.approvals {
				varied = variedApprovalInputs
			}
			for _, e := range l.entries {
				id := string(e.id)
				if !differs[id] {
					continue
				}
				for _, in := range conditionInputs((*xast.Policy)(e.policy.AST())) {
					if !varied[in] {
						if reads[id] == nil {
							reads[id] = map[string]bool{}
						}
						reads[id][in] = true
					}
				}
			}
		}
	}
	var out []string
	for id, ins := range reads {
		out = append(out, fmt.Sprintf("%s (reads %s)", id, strings.Join(slices.Sorted(maps.Keys(ins)), ", ")))
	}
	sort.Strings(out)
	return out
}

// conditionInputs lists what p's conditions read from the request:
// "context.KEY", "principal.ATTR", "resource.ATTR" for each attribute
// accessed or tested with has, and "VAR tags" for tag lookups.
func conditionInputs(p *xast.Policy) []string {
	var out []string
	variable := func(n xast.IsNode) (string, bool) {
		v, ok := n.(xast.NodeTypeVariable)
		if !ok || v.Name == "action" {
			return "", false
		}
		return string(v.Name), true
	}
	for _, cond := range p.Conditions {
		xast.Inspect(xast.NewNode(cond.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeTypeAccess:
				if v, ok := variable(n.Arg); ok {
					out = append(out, v+"."+string(n.Value))
				}
			case xast.NodeTypeHas:
				if v, ok := variable(n.Arg); ok {
					out = append(out, v+"."+string(n.Value))
				}
			case xast.NodeTypeGetTag:
				if v, ok := variable(n.Left); ok {
					out = append(out, v+" tags")
				}
			case xast.NodeTypeHasTag:
				if v, ok := variable(n.Left); ok {
					out = append(out, v+" tags")
				}
			}
			return true
		})
	}
	return out
}

// policyTexts maps each policy id (approval rules included) to its Cedar
// text, annotations and all.
func policyTexts(c *compiled) map[string][]byte {
	m := make(map[string][]byte, len(c.all.entries)+len(c.approvals.entries))
	for _, l := range []*policyList{c.all, c.approvals} {
		for _, e := range l.entries {
			m[string(e.id)] = e.policy.MarshalCedar()
		}
	}
	return m
}

// samePolicies reports whether two lists hold the same policies (by id and
// text) in the same order.
func samePolicies(a, b *policyList, aText, bText map[string][]byte) bool {
	if len(a.entries) != len(b.entries) {
		return false
	}
	for i := range a.entries {
		ida, idb := string(a.entries[i].id), string(b.entries[i].id)
		if ida != idb || !bytes.Equal(aText[ida], bText[idb]) {
			return false
		}
	}
	return true
}

// mentions reports whether a policy of l has word in its text.
func mentions(l *policyList, text map[string][]byte, word string) bool {
	for _, e := range l.entries {
		if bytes.Contains(text[string(e.id)], []byte(word)) {
			return true
		}
	}
	return false
}

// decisionState decides p's request without MFA and, when mfa matters and
// that was a denial, with MFA proved just now.
func decisionState(c *compiled, p wire.Principal, action string, res Resource, mfa bool, now time.Time, samples *int) string {
	*samples++
	p.MFAAt = time.Time{}
	if decide(c, Request{Principal: p, Action: action, Resource: res}, now, nil).Allow {
		return stateAllowed
	}
	if !mfa {
		return stateDenied
	}
	*samples++
	p.MFAAt = now
	if decide(c, Request{Principal: p, Action: action, Resource: res}, now, nil).Allow {
		return stateFresh
	}
	return stateDenied
}

// anyID is the resource id the diff uses for "any resource of this type":
// no policy can name it, as it is not a valid Interlock name.
const anyID = "*"

// actionResource is the resource type each action's route acts on.
func actionResource(action string) string {
	switch {
	case action == ActionOpRun || action == ActionOpPlan || action == ActionOpBreakglass || strings.HasPrefix(action, "runbook."):
		return ResourceRunbook
	case strings.HasPrefix(action, "op."):
		return ResourceOperation
	case strings.HasPrefix(action, "service."):
		return ResourceService
	case strings.HasPrefix(action, "host."):
		return ResourceHost
	case strings.HasPrefix(action, "kms."):
		return ResourceKey
	case strings.HasPrefix(action, "secret."):
		return ResourceSecret
	case strings.HasPrefix(action, "policy."):
		return ResourcePolicy
	case strings.HasPrefix(action, "log."):
		return ResourceLog
	case strings.HasPrefix(action, "change."):
		return ResourceChange
	default:
		return ResourceSystem
	}
}

func sampleResources(action string, refs map[string][]string) []Resource {
	typ := actionResource(action)
	out := []Resource{{Type: ResourceSystem, ID: "interlock"}}
	if typ == ResourceSystem {
		return out
	}
	out = append(out, Resource{Type: typ, ID: anyID})
	if typ == ResourcePolicy {
		out = append(out, Resource{Type: typ, ID: "interlock"})
	}
	for _, id := range refs[typ] {
		if id != anyID && !(typ == ResourcePolicy && id == "interlock") {
			out = append(out, Resource{Type: typ, ID: id})
		}
	}
	return out
}

func resourceLabel(r Resource) string {
	if r.ID == anyID {
		return "any " + r.Type
	}
	return fmt.Sprintf("%s::%q", r.Type, r.ID)
}

// referencedEntities lists, by entity type, the ids either policy names
// in a scope or a condition, plus (under contextService) the strings the
// approval rules compare context.service with, as sample points.
func referencedEntities(cs ...*compiled) map[string][]string {
	seen := map[string]map[string]bool{}
	add := func(typ, id string) {
		if seen[typ] == nil {
			seen[typ] = map[string]bool{}
		}
		seen[typ][id] = true
	}
	for _, c := range cs {
		for _, l := range []*policyList{c.all, c.approvals} {
			approval := l == c.approvals
			for _, e := range l.entries {
				pa := (*xast.Policy)(e.policy.AST())
				walkValues(pa, func(v types.Value) {
					if u, ok := v.(types.EntityUID); ok {
						add(string(u.Type), string(u.ID))
					}
				})
				if approval {
					for _, svc := range serviceLiterals(pa) {
						add(contextService, svc)
					}
				}
			}
		}
	}
	out := make(map[string][]string, len(seen))
	for typ, ids := range seen {
		for id := range ids {
			out[typ] = append(out[typ], id)
		}
		sort.Strings(out[typ])
	}
	return out
}

// contextService keys, in referencedEntities, the values approval rules
// compare context.service with.
const contextService = "context.service"

// serviceLiterals returns the strings p compares context.service with
// (== or !=).
func serviceLiterals(p *xast.Policy) []string {
	var out []string
	isServiceAccess := func(n xast.IsNode) bool {
		a, ok := n.(xast.NodeTypeAccess)
		if !ok || a.Value != "service" {
			return false
		}
		v, ok := a.Arg.(xast.NodeTypeVariable)
		return ok && v.Name == "context"
	}
	check := func(b xast.BinaryNode) {
		for _, pair := range [][2]xast.IsNode{{b.Left, b.Right}, {b.Right, b.Left}} {
			if isServiceAccess(pair[0]) {
				if v, ok := pair[1].(xast.NodeValue); ok {
					if s, ok := v.Value.(types.String); ok {
						out = append(out, string(s))
					}
				}
			}
		}
	}
	for _, cond := range p.Conditions {
		xast.Inspect(xast.NewNode(cond.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeTypeEquals:
				check(n.BinaryNode)
			case xast.NodeTypeNotEquals:
				check(n.BinaryNode)
			}
			return true
		})
	}
	return out
}

// walkValues calls fn on every entity and literal a policy names, in its
// scope and its conditions.
func walkValues(p *xast.Policy, fn func(types.Value)) {
	scope := func(n xast.IsScopeNode) {
		switch s := n.(type) {
		case xast.ScopeTypeEq:
			fn(s.Entity)
		case xast.ScopeTypeIn:
			fn(s.Entity)
		case xast.ScopeTypeInSet:
			for _, e := range s.Entities {
				fn(e)
			}
		case xast.ScopeTypeIsIn:
			fn(s.Entity)
		}
	}
	scope(p.Principal)
	scope(p.Resource)
	var value func(v types.Value)
	value = func(v types.Value) {
		switch v := v.(type) {
		case types.Set:
			for e := range v.All() {
				value(e)
			}
		case types.Record:
			for _, e := range v.All() {
				value(e)
			}
		default:
			fn(v)
		}
	}
	for _, cond := range p.Conditions {
		xast.Inspect(xast.NewNode(cond.Body), func(n xast.IsNode) bool {
			if nv, ok := n.(xast.NodeValue); ok {
				value(nv.Value)
			}
			return true
		})
	}
}

// approvalChanges evaluates the approval requirement of op.run under both
// policies over risk × removes_capacity × service × runbook.
func approvalChanges(oc, nc *compiled, refs map[string][]string, now time.Time, samples *int) []wire.ApprovalChange {
	services := append([]string{""}, refs[contextService]...)
	runbooks := append([]string{anyID}, refs[ResourceRunbook]...)
	// An approval rule may name its requester: each person a policy names
	// is sampled as the requester too.
	requesters := []string{""}
	requesters = append(requesters, refs[EntityPerson]...)
	var out []wire.ApprovalChange
	for _, who := range requesters {
		requester := wire.Principal{Kind: "person", ID: "policy-diff-requester", Roles: []string{"operator"}, MFAAt: now}
		prefix := ""
		if who != "" {
			requester.ID = who
			prefix = fmt.Sprintf("requester=%s::%q ", EntityPerson, who)
		}
		out = append(out, approvalChangesOf(oc, nc, requester, prefix, runbooks, services, now, samples)...)
	}
	return out
}

func approvalChangesOf(oc, nc *compiled, requester wire.Principal, prefix string, runbooks, services []string, now time.Time, samples *int) []wire.ApprovalChange {
	var out []wire.ApprovalChange
	for _, rb := range runbooks {
		for _, risk := range []string{"low", "medium", "high"} {
			for _, removes := range []bool{false, true} {
				for _, svc := range services {
					ctx := map[string]any{"risk": risk, "removes_capacity": removes}
					label := fmt.Sprintf("%srisk=%s removes_capacity=%t", prefix, risk, removes)
					if svc != "" {
						ctx["service"] = svc
						label += " service=" + svc
					}
					if rb != anyID {
						label += " runbook=" + rb
					}
					req := Request{Principal: requester, Action: ActionOpRun, Resource: Resource{Type: ResourceRunbook, ID: rb}, Context: ctx}
					*samples += 2
					before, err1 := approvalRequirement(oc, req, now, nil)
					after, err2 := approvalRequirement(nc, req, now, nil)
					if err1 != nil || err2 != nil {
						continue // unreachable: the request is well formed
					}
					if before.Count == after.Count && slices.Equal(before.Roles, after.Roles) {
						continue
					}
					ch := wire.ApprovalChange{Context: label, Before: before.Count, After: after.Count, Roles: after.Roles}
					if before.Count > 0 && after.Count > 0 && !slices.Equal(before.Roles, after.Roles) {
						ch.BeforeRoles = before.Roles // who approves changed
					}
					out = append(out, ch)
				}
			}
		}
	}
	return out
}

// Loosens reports whether a diff gives anyone anything: a permission
// gained, fewer approvals or approvals from other roles somewhere, or a changed policy whose effect the
// diff cannot enumerate (it may).
func Loosens(d wire.PolicyDiff) bool {
	if len(d.Gained) > 0 || len(d.Unenumerated) > 0 {
		return true
	}
	for _, a := range d.Approvals {
		// Fewer approvals, or approvals from other roles: a role that
		// approves nothing today may be a weaker one (viewer), so any
		// change of who approves counts.
		if a.After < a.Before || a.BeforeRoles != nil {
			return true
		}
	}
	return false
}
