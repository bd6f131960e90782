package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestDiffBlindSpots is the attacker's side of the semantic diff: a policy
// edit that loosens only for one named person, or only when a context
// value or an attribute the diff does not vary holds, must not be shown to
// the approver as "no decision changes". A person or agent a policy names
// is sampled; a changed policy whose conditions read an input the diff
// cannot enumerate is named, and the diff then counts as loosening.
func TestDiffBlindSpots(t *testing.T) {
	for _, tt := range []struct {
		name         string
		add          string
		edit         func(string) string
		gained       []wire.PermissionChange
		approvals    []wire.ApprovalChange
		unenumerated []string
	}{
		{
			name: "one named person may apply policy",
			add: `@id("backdoor.person")
permit (principal == Person::"p_mallory", action == Action::"policy.apply", resource == Policy::"interlock");`,
			gained: []wire.PermissionChange{
				{Principal: `Person::"p_mallory"`, Action: "policy.apply", Resource: `Policy::"interlock"`, Before: "denied", After: "allowed"},
			},
		},
		{
			name: "operators apply policy from one address",
			add: `@id("backdoor.ip")
permit (principal in Role::"operator", action == Action::"policy.apply", resource)
when { context.source_ip == "10.9.9.9" };`,
			unenumerated: []string{"backdoor.ip (reads context.source_ip)"},
		},
		{
			name: "operators read any secret after a date",
			add: `@id("backdoor.later")
permit (principal in Role::"operator", action == Action::"secret.get", resource)
when { context.now > 1900000000 };`,
			unenumerated: []string{"backdoor.later (reads context.now)"},
		},
		{
			name: "operators read secrets of one tier",
			add: `@id("backdoor.attr")
permit (principal in Role::"operator", action == Action::"secret.get", resource)
when { resource has tier && resource.tier == "gold" };`,
			unenumerated: []string{"backdoor.attr (reads resource.tier)"},
		},
		{
			name: "no approvals when the reason says hotfix",
			edit: func(s string) string {
				s = strings.Replace(s, "unless {\n  context has risk && context.risk == \"low\" &&\n  context has removes_capacity && context.removes_capacity == false\n};",
					"unless {\n  context has risk && context.risk == \"low\" &&\n  context has removes_capacity && context.removes_capacity == false ||\n  context has reason && context.reason like \"*hotfix*\"\n};", 1)
				return s + `
@id("approvals.hotfix")
@approvals("0")
permit (principal, action == Action::"op.run", resource)
when { context has reason && context.reason like "*hotfix*" };`
			},
			unenumerated: []string{"approvals.baseline (reads context.reason)", "approvals.hotfix (reads context.reason)"},
		},
		{
			name: "no approvals for one named requester",
			add: `@id("approvals.mallory")
@approvals("0")
permit (principal == Person::"p_mallory", action == Action::"op.run", resource);`,
			edit: func(s string) string {
				return strings.Replace(s, "permit (principal, action == Action::\"op.run\", resource)\nunless {\n  context has risk && context.risk == \"low\"",
					"permit (principal, action == Action::\"op.run\", resource)\nunless {\n  principal == Person::\"p_mallory\" ||\n  context has risk && context.risk == \"low\"", 1)
			},
			approvals: []wire.ApprovalChange{
				{Context: `requester=Person::"p_mallory" risk=low removes_capacity=true`, Before: 1, After: 0},
				{Context: `requester=Person::"p_mallory" risk=medium removes_capacity=false`, Before: 1, After: 0},
				{Context: `requester=Person::"p_mallory" risk=medium removes_capacity=true`, Before: 1, After: 0},
				{Context: `requester=Person::"p_mallory" risk=high removes_capacity=false`, Before: 1, After: 0},
				{Context: `requester=Person::"p_mallory" risk=high removes_capacity=true`, Before: 1, After: 0},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := DefaultText
			if tt.edit != nil {
				next = tt.edit(next)
			}
			if tt.add != "" {
				next += "\n" + tt.add + "\n"
			}
			d, err := Diff(DefaultText, next, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Added)+len(d.Changed) == 0 {
				t.Fatalf("the edit changed no policy: %+v", d)
			}
			var gained []wire.PermissionChange
			for _, g := range d.Gained {
				if strings.HasPrefix(g.Principal, "Person::") {
					gained = append(gained, g)
				}
			}
			if diff := cmp.Diff(tt.gained, gained); diff != "" {
				t.Errorf("gained by named principals (-want +got):\n%s", diff)
			}
			var approvals []wire.ApprovalChange
			for _, a := range d.Approvals {
				if strings.Contains(a.Context, "requester=") {
					approvals = append(approvals, a)
				}
			}
			if diff := cmp.Diff(tt.approvals, approvals); diff != "" {
				t.Errorf("approvals of named requesters (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.unenumerated, d.Unenumerated); diff != "" {
				t.Errorf("unenumerated (-want +got):\n%s", diff)
			}
			if !Loosens(d) {
				t.Errorf("Loosens = false for a diff that loosens: %+v", d)
			}
		})
	}
}

// TestDiffEnumeratedConditions keeps the honest note for what the diff
// cannot vary: conditions on MFA age, risk, removes_capacity and service
// (what it does vary) name no policy.
func TestDiffEnumeratedConditions(t *testing.T) {
	next := strings.Replace(DefaultText, "context.mfa_age_s <= 300", "context.mfa_age_s <= 120", 1) + `
@id("approvals.billing-high-risk")
@approvals("2")
permit (principal, action == Action::"op.run", resource)
when { context has risk && context.risk == "high" && context has service && context.service == "billing" };
`
	d, err := Diff(DefaultText, next, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Unenumerated) > 0 || !slices.Contains(d.Changed, "mfa.fresh-for-approval") {
		t.Fatalf("diff = %+v, want mfa.fresh-for-approval changed and nothing unenumerated", d)
	}
}

// TestDiffApproverRoleChange: the same number of approvals from a weaker
// role (viewers approving) is a loosening, shown with who approved before.
func TestDiffApproverRoleChange(t *testing.T) {
	next := strings.Replace(DefaultText, "@id(\"approvals.baseline\")\n@approvals(\"1\")\n@approver_role(\"approver\")",
		"@id(\"approvals.baseline\")\n@approvals(\"1\")\n@approver_role(\"viewer\")", 1)
	if next == DefaultText {
		t.Fatal("the edit changed nothing")
	}
	d, err := Diff(DefaultText, next, testNow)
	if err != nil {
		t.Fatal(err)
	}
	want := wire.ApprovalChange{Context: "risk=high removes_capacity=true", Before: 1, After: 1, BeforeRoles: []string{"approver"}, Roles: []string{"viewer"}}
	if !slices.ContainsFunc(d.Approvals, func(a wire.ApprovalChange) bool { return cmp.Equal(a, want) }) {
		t.Errorf("approvals = %+v, want one like %+v", d.Approvals, want)
	}
	if !Loosens(d) {
		t.Error("Loosens = false for approvals from viewers")
	}
}
