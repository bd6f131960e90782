package policy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// DefaultText is the policy Interlock runs until someone applies another.
//
//go:embed default.cedar
var DefaultText string

// Annotations a policy may carry. Any other annotation is refused, so that
// a typo such as @approval("2") cannot silently turn an approval rule into
// a permit.
const (
	annID           = "id"
	annApprovals    = "approvals"
	annApproverRole = "approver_role"
	annDescription  = "description"
)

// maxApprovals bounds @approvals: a larger number is almost surely a typo
// that would block every operation.
const maxApprovals = 10

// entry is one compiled policy with its @id.
type entry struct {
	id     cedar.PolicyID
	policy *cedar.Policy
}

// policyList lets cedar.Authorize evaluate exactly the entries given. It
// is built once per compiled policy set, iterator included, so handing one
// to Authorize allocates nothing.
type policyList struct {
	entries []entry
	all     iter.Seq2[cedar.PolicyID, *cedar.Policy]
}

func newPolicyList(entries []entry) *policyList {
	l := &policyList{entries: entries}
	l.all = func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range l.entries {
			if !yield(e.id, e.policy) {
				return
			}
		}
	}
	return l
}

func (l *policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] { return l.all }

// approvalRule is a policy annotated @approvals.
type approvalRule struct {
	entry
	count int
	roles []string
}

// compiled is a validated, indexed policy set. It is immutable once built,
// so the Engine can swap it atomically and share it between goroutines.
type compiled struct {
	text    string
	hash    string
	version int // 0: the embedded default, never stored
	ids     []string

	// all holds every authorization policy (approval rules excluded), in
	// file order; byAction holds, per action, the policies whose action
	// scope names it followed by those whose scope is any action.
	all       *policyList
	byAction  map[string]*policyList
	approvals *policyList
	rules     map[cedar.PolicyID]approvalRule
}

// Hash returns the text's content hash as Current and the audit log show it.
func Hash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Validate parses and checks a policy text the way Apply does, without
// applying it. Its error is a *usererr.Error naming the line and column.
func Validate(text string) error {
	_, err := compile(text)
	return err
}

// cedar-go reports "parser error: parse error at <input>:L:C "tok": what"
// (or "<input>:L:C: what" from its scanner).
var parsePos = regexp.MustCompile(`^(?:parser error: )?(?:parse error at )?<input>:(\d+):(\d+):? ?(.*)$`)

var exactGot = regexp.MustCompile(`exact got (.*) want (.*)$`)

func syntaxError(err error) error {
	msg := err.Error()
	where := "near the end of the text"
	if m := parsePos.FindStringSubmatch(msg); m != nil {
		if m[1] != "0" {
			where = fmt.Sprintf("at line %s, column %s", m[1], m[2])
		}
		msg = m[3]
	}
	msg = strings.TrimSpace(strings.TrimPrefix(msg, "parser error: "))
	if m := exactGot.FindStringSubmatch(msg); m != nil {
		msg = fmt.Sprintf("expected %q but found %q", m[2], m[1])
	}
	return usererr.Wrap(err, usererr.Invalid, "policy_syntax", "the policy is not valid Cedar %s: %s", where, msg)
}

func compile(text string) (*compiled, error) {
	if err := checkBounds(text); err != nil {
		return nil, err
	}
	list, err := cedar.NewPolicyListFromBytes("policy", []byte(text))
	if err != nil {
		return nil, syntaxError(err)
	}
	if len(list) == 0 {
		return nil, usererr.New(usererr.Invalid, "policy_empty",
			"the policy has no statements; it would deny every request to everyone, including the admins who could fix it")
	}
	c := &compiled{
		text:     text,
		hash:     Hash(text),
		byAction: make(map[string]*policyList, len(Actions)),
		rules:    map[cedar.PolicyID]approvalRule{},
	}
	seen := map[string]int{} // id → line
	var all, anyAction, approvals []entry
	specific := map[string][]entry{}
	for _, p := range list {
		pos := p.Position()
		at := fmt.Sprintf("line %d, column %d", pos.Line, pos.Column)
		ann := p.Annotations()
		for k := range ann {
			switch string(k) {
			case annID, annApprovals, annApproverRole, annDescription:
			default:
				return nil, invalidf("policy_annotation", "the policy at %s has the annotation @%s, which Interlock does not know; use @id, @approvals, @approver_role or @description", at, k)
			}
		}
		id := strings.TrimSpace(string(ann[annID]))
		if id == "" {
			return nil, invalidf("policy_id_missing", "the policy at %s has no @id(\"…\"); every policy needs a unique id so decisions can name it", at)
		}
		if line, dup := seen[id]; dup {
			return nil, invalidf("policy_id_duplicate", "the policy at %s reuses the id %q of the policy at line %d; ids must be unique", at, id, line)
		}
		seen[id] = pos.Line
		c.ids = append(c.ids, id)
		pa := (*xast.Policy)(p.AST())
		if err := checkEntities(pa, id, at); err != nil {
			return nil, err
		}
		e := entry{id: cedar.PolicyID(id), policy: p}

		if n, ok := ann[annApprovals]; ok {
			count, err := strconv.Atoi(strings.TrimSpace(string(n)))
			if err != nil || count < 0 || count > maxApprovals {
				return nil, invalidf("policy_approvals", "the policy %q at %s has @approvals(%q); it must be a whole number from 0 to %d", id, at, n, maxApprovals)
			}
			if p.Effect() != cedar.Permit {
				return nil, invalidf("policy_approvals", "the approval policy %q at %s is a forbid; approval rules must be written as permit (…) when { … }", id, at)
			}
			roles := []string{"approver"}
			if r, ok := ann[annApproverRole]; ok {
				roles = nil
				for _, role := range strings.Split(string(r), ",") {
					if role = strings.TrimSpace(role); role != "" {
						roles = append(roles, role)
					}
				}
				if len(roles) == 0 {
					return nil, invalidf("policy_approvals", "the approval policy %q at %s has an empty @approver_role", id, at)
				}
			}
			approvals = append(approvals, e)
			c.rules[e.id] = approvalRule{entry: e, count: count, roles: roles}
			continue
		}
		if _, ok := ann[annApproverRole]; ok {
			return nil, invalidf("policy_approvals", "the policy %q at %s has @approver_role but no @approvals(\"N\")", id, at)
		}

		all = append(all, e)
		actions, anyScope := actionScope(pa)
		if anyScope {
			anyAction = append(anyAction, e)
			continue
		}
		for _, a := range actions {
			specific[a] = append(specific[a], e)
		}
	}
	c.all, c.approvals = newPolicyList(all), newPolicyList(approvals)
	for _, a := range Actions {
		c.byAction[a] = newPolicyList(slices.Concat(specific[a], anyAction))
	}
	return c, nil
}

func invalidf(code, format string, args ...any) error {
	return usererr.New(usererr.Invalid, code, format, args...)
}

// actionScope returns the actions a policy's scope is limited to, or
// anyAction when its scope is any action. Interlock defines no action
// groups, so `action in Action::"x"` names just x.
func actionScope(p *xast.Policy) (actions []string, anyAction bool) {
	switch s := p.Action.(type) {
	case xast.ScopeTypeEq:
		return []string{string(s.Entity.ID)}, false
	case xast.ScopeTypeIn:
		return []string{string(s.Entity.ID)}, false
	case xast.ScopeTypeInSet:
		for _, e := range s.Entities {
			actions = append(actions, string(e.ID))
		}
		return actions, false
	default:
		return nil, true
	}
}

// checkEntities refuses entity types and actions Interlock does not know,
// wherever they appear: in the scope or in the conditions.
func checkEntities(p *xast.Policy, id, at string) error {
	var uids []types.EntityUID
	var typs []types.EntityType
	addScope := func(n xast.IsScopeNode) {
		switch s := n.(type) {
		case xast.ScopeTypeEq:
			uids = append(uids, s.Entity)
		case xast.ScopeTypeIn:
			uids = append(uids, s.Entity)
		case xast.ScopeTypeInSet:
			uids = append(uids, s.Entities...)
		case xast.ScopeTypeIs:
			typs = append(typs, s.Type)
		case xast.ScopeTypeIsIn:
			typs = append(typs, s.Type)
			uids = append(uids, s.Entity)
		}
	}
	addScope(p.Principal)
	addScope(p.Action)
	addScope(p.Resource)
	var addValue func(v types.Value)
	addValue = func(v types.Value) {
		switch v := v.(type) {
		case types.EntityUID:
			uids = append(uids, v)
		case types.Set:
			for e := range v.All() {
				addValue(e)
			}
		case types.Record:
			for _, e := range v.All() {
				addValue(e)
			}
		}
	}
	for _, cond := range p.Conditions {
		xast.Inspect(xast.NewNode(cond.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeValue:
				addValue(n.Value)
			case xast.NodeTypeIs:
				typs = append(typs, n.EntityType)
			case xast.NodeTypeIsIn:
				typs = append(typs, n.EntityType)
			}
			return true
		})
	}
	for _, u := range uids {
		typs = append(typs, u.Type)
		if string(u.Type) == EntityAction && !knownActions[string(u.ID)] {
			return invalidf("policy_action_unknown", "the policy %q at %s names Action::%q, which is not an Interlock action (the list is at the top of Interlock's default policy, internal/policy/default.cedar)", id, at, string(u.ID))
		}
	}
	for _, t := range typs {
		if !knownEntityTypes[string(t)] {
			return invalidf("policy_type_unknown", "the policy %q at %s names the entity type %s, which Interlock does not know; use Person, Agent, Role, Action, %s", id, at, string(t), strings.Join(ResourceTypes, ", "))
		}
	}
	return nil
}
