package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestDiff pins the semantic diff: what each edit to the default policy
// gives or takes, by (role, action), and which approval counts change.
func TestDiff(t *testing.T) {
	for _, tt := range []struct {
		name      string
		edit      func(string) string
		gained    []wire.PermissionChange
		lost      []wire.PermissionChange
		approvals []wire.ApprovalChange
		loosens   bool
	}{
		{
			name: "same text",
			edit: func(s string) string { return s },
		},
		{
			name: "comment only",
			edit: func(s string) string { return s + "\n// a comment\n" },
		},
		{
			name: "operators may apply policy",
			edit: func(s string) string {
				return s + `
@id("operator.policy")
permit (principal in Role::"operator", action == Action::"policy.apply", resource);
`
			},
			gained: []wire.PermissionChange{
				{Principal: "role operator", Action: "policy.apply", Resource: `System::"interlock"`, Before: "denied", After: "allowed"},
				{Principal: "role operator", Action: "policy.apply", Resource: "any Policy", Before: "denied", After: "allowed"},
				{Principal: "role operator", Action: "policy.apply", Resource: `Policy::"interlock"`, Before: "denied", After: "allowed"},
			},
			loosens: true,
		},
		{
			name: "approvers lose op.halt",
			edit: func(s string) string {
				return strings.Replace(s, `Action::"op.approve", Action::"op.deny", Action::"op.halt",`, `Action::"op.approve", Action::"op.deny",`, 1)
			},
			lost: []wire.PermissionChange{
				{Principal: "role approver", Action: "op.halt", Resource: `System::"interlock"`, Before: "allowed", After: "denied"},
				{Principal: "role approver", Action: "op.halt", Resource: "any Operation", Before: "allowed", After: "denied"},
			},
		},
		{
			name: "baseline approvals 1 → 0",
			edit: func(s string) string {
				return strings.Replace(s, "@id(\"approvals.baseline\")\n@approvals(\"1\")", "@id(\"approvals.baseline\")\n@approvals(\"0\")", 1)
			},
			approvals: []wire.ApprovalChange{
				{Context: "risk=low removes_capacity=true", Before: 1, After: 0},
				{Context: "risk=medium removes_capacity=false", Before: 1, After: 0},
				{Context: "risk=medium removes_capacity=true", Before: 1, After: 0},
				{Context: "risk=high removes_capacity=false", Before: 1, After: 0},
				{Context: "risk=high removes_capacity=true", Before: 1, After: 0},
			},
			loosens: true,
		},
		{
			name: "two approvals for high risk on billing",
			edit: func(s string) string {
				return s + `
@id("approvals.billing-high-risk")
@approvals("2")
@approver_role("approver")
permit (principal, action == Action::"op.run", resource)
when { context has risk && context.risk == "high" && context has service && context.service == "billing" };
`
			},
			approvals: []wire.ApprovalChange{
				{Context: "risk=high removes_capacity=false service=billing", Before: 1, After: 2, Roles: []string{"approver"}},
				{Context: "risk=high removes_capacity=true service=billing", Before: 1, After: 2, Roles: []string{"approver"}},
			},
		},
		{
			name: "fresh MFA no longer needed to approve",
			edit: func(s string) string {
				return strings.Replace(s, `action in [Action::"op.approve", Action::"op.breakglass", Action::"change.approve"],`, `action in [Action::"op.breakglass", Action::"change.approve"],`, 1)
			},
			gained: []wire.PermissionChange{
				{Principal: "role approver", Action: "op.approve", Resource: `System::"interlock"`, Before: "with fresh MFA", After: "allowed"},
				{Principal: "role approver", Action: "op.approve", Resource: "any Operation", Before: "with fresh MFA", After: "allowed"},
				{Principal: "role admin", Action: "op.approve", Resource: `System::"interlock"`, Before: "with fresh MFA", After: "allowed"},
				{Principal: "role admin", Action: "op.approve", Resource: "any Operation", Before: "with fresh MFA", After: "allowed"},
			},
			loosens: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Diff(DefaultText, tt.edit(DefaultText), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.gained, d.Gained); diff != "" {
				t.Errorf("gained (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.lost, d.Lost); diff != "" {
				t.Errorf("lost (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.approvals, d.Approvals); diff != "" {
				t.Errorf("approvals (-want +got):\n%s", diff)
			}
			if got := Loosens(d); got != tt.loosens {
				t.Errorf("Loosens = %t, want %t", got, tt.loosens)
			}
		})
	}
}

func TestDiffRefusesInvalidText(t *testing.T) {
	if _, err := Diff(DefaultText, "permit (principal, action, resource)", testNow); err == nil || !strings.Contains(err.Error(), "new policy") {
		t.Fatalf("Diff with an invalid new text: %v", err)
	}
}

// BenchmarkDiff is `interlock policy diff` on the default policy and on a
// 1,000-policy set, each with one policy edited and one approval rule
// lowered (target ≤ 100 ms per diff).
//
//	go test ./internal/policy -run xxx -bench Diff -benchmem
func BenchmarkDiff(b *testing.B) {
	for _, tc := range []struct {
		name string
		old  string
	}{
		{"default", DefaultText},
		{"1000", generatePolicies(1000) + approvalRules},
	} {
		edited := strings.Replace(tc.old, `@approvals("1")`, `@approvals("0")`, 1) + `
@id("bench.extra")
permit (principal in Role::"operator", action == Action::"service.set", resource);
`
		b.Run(tc.name, func(b *testing.B) {
			d, err := Diff(tc.old, edited, testNow)
			if err != nil {
				b.Fatal(err)
			}
			if len(d.Gained) == 0 || len(d.Approvals) == 0 {
				b.Fatalf("the edit shows no change: %+v", d)
			}
			b.ReportMetric(float64(d.Samples), "decisions/op")
			for b.Loop() {
				if _, err := Diff(tc.old, edited, testNow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const approvalRules = `
@id("approvals.baseline")
@approvals("1")
@approver_role("approver")
permit (principal, action == Action::"op.run", resource);
`
