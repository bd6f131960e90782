package api

import (
	"context"
	"net/http"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// PolicyManager is what the policy routes need; *policy.Service implements it.
type PolicyManager interface {
	Get(ctx context.Context) (policy.Current, error)
	Apply(ctx context.Context, p wire.Principal, text string) (int, error)
	Test(ctx context.Context, text string, cases []policy.TestCase) ([]policy.TestResult, error)
}

// policyResource is the resource every policy route acts on.
var policyResource = Resource{Type: policy.ResourcePolicy, ID: "interlock"}

// PolicyRoutes serves reading, testing and applying the Cedar policy (see
// internal/api/wire/policy.go for the table).
func PolicyRoutes(svc PolicyManager) []Route {
	h := policyHandlers{svc: svc}
	res := func(*http.Request) Resource { return policyResource }
	return []Route{
		{Pattern: "GET /v1/policy", Action: policy.ActionPolicyGet, Resource: res, Handle: h.get},
		{Pattern: "PUT /v1/policy", Action: policy.ActionPolicyApply, Resource: res, Handle: h.apply},
		{Pattern: "POST /v1/policy/test", Action: policy.ActionPolicyTest, Resource: res, Handle: h.test},
	}
}

type policyHandlers struct{ svc PolicyManager }

func (h policyHandlers) get(c *Call) error {
	cur, err := h.svc.Get(c.Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.Policy{Text: cur.Text, Version: cur.Version, Hash: cur.Hash})
}

func (h policyHandlers) apply(c *Call) error {
	var in wire.PolicyApplyRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if in.Text == "" {
		return usererr.New(usererr.Invalid, "policy_empty", "the request has no policy text; send the whole policy in \"text\"")
	}
	v, err := h.svc.Apply(c.Context(), c.Principal, in.Text)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.PolicyApplied{Version: v, Hash: policy.Hash(in.Text)})
}

func (h policyHandlers) test(c *Call) error {
	var in wire.PolicyTestRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if len(in.Cases) == 0 {
		return usererr.New(usererr.Invalid, "policy_test_no_cases", "the request has no test cases; send at least one in \"cases\"")
	}
	cases := make([]policy.TestCase, len(in.Cases))
	for i, tc := range in.Cases {
		cases[i] = policy.TestCase{
			Name:        tc.Name,
			Principal:   wire.Principal{Kind: tc.Principal.Kind, ID: tc.Principal.ID, Name: tc.Principal.ID, Roles: tc.Principal.Roles},
			Action:      tc.Action,
			Resource:    policy.Resource{Type: tc.Resource.Type, ID: tc.Resource.ID, Attrs: tc.Resource.Attrs},
			Context:     tc.Context,
			Want:        tc.Want,
			WantReasons: tc.WantReasons,
		}
		if a := tc.WantApprovals; a != nil {
			cases[i].WantApprovals = &policy.Requirement{Count: a.Count, Roles: a.Roles, PolicyIDs: a.PolicyIDs}
		}
	}
	results, err := h.svc.Test(c.Context(), in.Text, cases)
	if err != nil {
		return err
	}
	out := wire.PolicyTestResponse{Hash: policy.Hash(in.Text), Results: make([]wire.PolicyTestResult, len(results))}
	if in.Text == "" {
		cur, err := h.svc.Get(c.Context())
		if err != nil {
			return err
		}
		out.Hash = cur.Hash
	}
	for i, r := range results {
		wr := wire.PolicyTestResult{Name: r.Name, Allow: r.Decision.Allow, Reasons: r.Decision.Reasons, Errors: r.Decision.Errors, Pass: r.Pass, Failures: r.Failures}
		if a := r.Approvals; a != nil {
			wr.Approvals = &wire.PolicyApprovals{Count: a.Count, Roles: a.Roles, PolicyIDs: a.PolicyIDs}
		}
		if r.Pass {
			out.Passed++
		} else {
			out.Failed++
		}
		out.Results[i] = wr
	}
	return c.JSON(http.StatusOK, out)
}

// PolicyAuthorizer adapts a policy.Engine to the server's Authorizer:
// route attrs (source_ip, now, and what handlers add) become the Cedar
// context; mfa_age_s and device_id come from the principal.
func PolicyAuthorizer(e *policy.Engine) Authorizer { return engineAuthorizer{e} }

type engineAuthorizer struct{ e *policy.Engine }

func (a engineAuthorizer) Authorize(ctx context.Context, p wire.Principal, action string, res Resource, attrs map[string]any) (bool, []string, error) {
	d := a.e.Decide(ctx, policy.Request{Principal: p, Action: action,
		Resource: policy.Resource{Type: res.Type, ID: res.ID, Attrs: res.Attrs}, Context: attrs})
	return d.Allow, d.Reasons, nil
}
