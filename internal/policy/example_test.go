package policy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
)

func ExampleEngine_Decide() {
	now := time.Unix(1800000000, 0)
	engine, err := policy.NewEngine(policy.EngineConfig{Now: func() time.Time { return now }})
	if err != nil {
		panic(err)
	}
	approver := wire.Principal{Kind: "person", ID: "p-ann", Name: "ann", Roles: []string{"approver"}, MFAAt: now.Add(-time.Minute)}
	op := policy.Resource{Type: policy.ResourceOperation, ID: "op-42"}

	d := engine.Decide(context.Background(), policy.Request{Principal: approver, Action: policy.ActionOpApprove, Resource: op})
	fmt.Println(d.Allow, d.Reasons)

	approver.MFAAt = now.Add(-time.Hour) // stale second factor
	d = engine.Decide(context.Background(), policy.Request{Principal: approver, Action: policy.ActionOpApprove, Resource: op})
	fmt.Println(d.Allow, d.Reasons)

	d = engine.Decide(context.Background(), policy.Request{Principal: approver, Action: policy.ActionOpRun, Resource: policy.Resource{Type: policy.ResourceRunbook, ID: "remove-capacity"}})
	fmt.Println(d.Allow, d.Reasons)
	// Output:
	// true [approver.decide]
	// false [mfa.fresh-for-approval]
	// false []
}

func ExampleEngine_ApprovalRequirement() {
	engine, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		panic(err)
	}
	operator := wire.Principal{Kind: "person", ID: "p-olga", Roles: []string{"operator"}}
	req, err := engine.ApprovalRequirement(context.Background(), policy.Request{
		Principal: operator,
		Action:    policy.ActionOpRun,
		Resource:  policy.Resource{Type: policy.ResourceRunbook, ID: "remove-capacity"},
		Context:   map[string]any{"risk": "high", "removes_capacity": true, "service": "billing", "count": 2},
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d from %v (%v)\n", req.Count, req.Roles, req.PolicyIDs)
	// Output:
	// 1 from [approver] ([approvals.baseline])
}
