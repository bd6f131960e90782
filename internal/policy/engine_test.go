package policy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

var testNow = time.Unix(1800000000, 0)

func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(EngineConfig{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDefaultPolicyListsEveryAction(t *testing.T) {
	header, _, _ := strings.Cut(DefaultText, "//   resource")
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(header, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '/' }) {
		words[w] = true
	}
	for _, a := range Actions {
		if !words[a] {
			t.Errorf("the default policy's header does not list action %s", a)
		}
	}
	if len(knownActions) != len(Actions) {
		t.Errorf("Actions has duplicates: %d names, %d distinct", len(Actions), len(knownActions))
	}
}

func TestDecideRefusesWhatItCannotEvaluate(t *testing.T) {
	e := newTestEngine(t)
	admin := wire.Principal{Kind: "person", ID: "root", Roles: []string{"admin"}, MFAAt: testNow}
	for _, tt := range []struct {
		name string
		req  Request
		want Decision
	}{
		{"unknown action", Request{Principal: admin, Action: "op.delete"},
			Decision{Errors: []string{`unknown action "op.delete"`}}},
		{"unknown resource type", Request{Principal: admin, Action: ActionHostList, Resource: Resource{Type: "Server", ID: "x"}},
			Decision{Errors: []string{`unknown resource type "Server"`}}},
		{"unknown principal kind", Request{Principal: wire.Principal{Kind: "robot", ID: "r"}, Action: ActionWhoami},
			Decision{Errors: []string{`unknown principal kind "robot"`}}},
		{"principal without id", Request{Principal: wire.Principal{Kind: "person", Roles: []string{"admin"}}, Action: ActionWhoami},
			Decision{Errors: []string{"the principal has no id"}}},
		{"context value without a Cedar form", Request{Principal: admin, Action: ActionWhoami, Context: map[string]any{"x": struct{}{}}},
			Decision{Errors: []string{"context x: a struct {} has no Cedar value"}}},
		{"null context value", Request{Principal: admin, Action: ActionWhoami, Context: map[string]any{"risk": nil}},
			Decision{Errors: []string{"context risk: null has no Cedar value; leave the key out instead"}}},
		{"empty resource means System", Request{Principal: admin, Action: ActionWhoami},
			Decision{Allow: true, Reasons: []string{"admin.all", "viewer.read"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.Decide(context.Background(), tt.req)); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideLogsAtTheLevelItIsGiven(t *testing.T) {
	viewer := wire.Principal{Kind: "person", ID: "v", Roles: []string{"viewer"}}
	allow := Request{Principal: viewer, Action: ActionHostList}
	deny := Request{Principal: viewer, Action: ActionUserDisable}
	for _, tt := range []struct {
		name  string
		level slog.Level
		want  []string
	}{
		{"debug logs both", slog.LevelDebug, []string{
			`level=DEBUG msg="policy decision" principal=person:v action=host.list resource=:: allow=true reasons=[viewer.read] errors=[]`,
			`level=INFO msg="policy decision" principal=person:v action=user.disable resource=:: allow=false reasons=[] errors=[]`,
		}},
		{"info logs denials", slog.LevelInfo, []string{
			`level=INFO msg="policy decision" principal=person:v action=user.disable resource=:: allow=false reasons=[] errors=[]`,
		}},
		{"warn logs nothing", slog.LevelWarn, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			e, err := NewEngine(EngineConfig{Now: func() time.Time { return testNow }, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			e.Decide(t.Context(), allow)
			e.Decide(t.Context(), deny)
			var got []string
			for line := range strings.Lines(buf.String()) {
				got = append(got, strings.TrimSuffix(line, "\n"))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideTakesMFAFromThePrincipalOnly(t *testing.T) {
	e := newTestEngine(t)
	approver := wire.Principal{Kind: "person", ID: "ann", Roles: []string{"approver"}} // never proved MFA
	req := Request{Principal: approver, Action: ActionOpApprove, Resource: Resource{Type: ResourceOperation, ID: "op-1"},
		Context: map[string]any{"mfa_age_s": 0, "device_id": "forged"}}
	if d := e.Decide(context.Background(), req); d.Allow {
		t.Fatalf("Decide = %+v: a caller-supplied mfa_age_s must not override the principal's", d)
	}
	req.Principal.MFAAt = testNow.Add(-10 * time.Second)
	if d := e.Decide(context.Background(), req); !d.Allow {
		t.Fatalf("Decide with MFA 10 s ago = %+v, want allow", d)
	}
}

func TestContextValues(t *testing.T) {
	text := `@id("admins") permit (principal in Role::"admin", action, resource);
@id("typed") permit (principal, action == Action::"service.set", resource)
when { context.count == 3 && context.ratio.greaterThan(decimal("0.5")) && context.at == 1800000000 &&
       context.tags.contains("a") && context.meta.zone == "a" && context.ok && context.n == 7 };`
	c, err := compile(text)
	if err != nil {
		t.Fatal(err)
	}
	p := wire.Principal{Kind: "person", ID: "x"}
	req := Request{Principal: p, Action: ActionServiceSet, Resource: Resource{Type: ResourceService, ID: "billing"}, Context: map[string]any{
		"count": float64(3), "ratio": 0.75, "at": testNow, "tags": []string{"a", "b"},
		"meta": map[string]any{"zone": "a"}, "ok": true, "n": uint16(7),
	}}
	if d := decide(c, req, testNow, nil); !d.Allow {
		t.Errorf("decide = %+v, want allow by typed", d)
	}
}

// TestEntitiesPoliciesSee pins what a policy can read of the principal and
// the resource: roles as parents, attributes only on the resource, and no
// other entity.
func TestEntitiesPoliciesSee(t *testing.T) {
	c := mustCompile(t, `@id("tier") permit (principal, action == Action::"service.set", resource) when { resource.tier == "gold" };
@id("has-tier") permit (principal, action == Action::"runbook.get", resource) when { resource has tier };
@id("roleless") permit (principal is Person, action == Action::"service.list", resource)
unless { principal in [Role::"viewer", Role::"admin"] };
@id("in-admin") permit (principal in Role::"admin", action == Action::"host.list", resource);
@id("principal-attrs") permit (principal, action == Action::"user.list", resource) when { principal has roles };
@id("role-attrs") permit (principal, action == Action::"device.list", resource) when { Role::"admin" has name };
@id("in-resource") permit (principal, action == Action::"op.list", resource) when { principal in resource };`)
	admin := wire.Principal{Kind: "person", ID: "root", Roles: []string{"admin"}}
	nobody := wire.Principal{Kind: "person", ID: "n"}
	agent := wire.Principal{Kind: "agent", ID: "web-1"}
	gold := Resource{Type: ResourceService, ID: "billing", Attrs: map[string]any{"tier": "gold"}}
	bare := Resource{Type: ResourceService, ID: "billing"}
	for _, tt := range []struct {
		name string
		req  Request
		want Decision
	}{
		{"attribute", Request{Principal: nobody, Action: ActionServiceSet, Resource: gold}, Decision{Allow: true, Reasons: []string{"tier"}}},
		{"missing attribute", Request{Principal: nobody, Action: ActionServiceSet, Resource: bare},
			Decision{Errors: []string{"policy tier: `Service::\"billing\"` does not have the attribute `tier`"}}},
		{"has attribute", Request{Principal: nobody, Action: ActionRunbookGet, Resource: gold}, Decision{Allow: true, Reasons: []string{"has-tier"}}},
		{"has no attribute", Request{Principal: nobody, Action: ActionRunbookGet, Resource: bare}, Decision{}},
		{"has no attribute, empty map", Request{Principal: nobody, Action: ActionRunbookGet, Resource: Resource{Type: ResourceService, ID: "billing", Attrs: map[string]any{}}}, Decision{}},
		{"roleless person", Request{Principal: nobody, Action: ActionServiceList}, Decision{Allow: true, Reasons: []string{"roleless"}}},
		{"person with a listed role", Request{Principal: admin, Action: ActionServiceList}, Decision{}},
		{"agent is no person", Request{Principal: agent, Action: ActionServiceList}, Decision{}},
		{"in role", Request{Principal: admin, Action: ActionHostList}, Decision{Allow: true, Reasons: []string{"in-admin"}}},
		{"not in role", Request{Principal: nobody, Action: ActionHostList}, Decision{}},
		{"principal has no attributes", Request{Principal: admin, Action: ActionUserList}, Decision{}},
		{"roles are not entities", Request{Principal: admin, Action: ActionDeviceList}, Decision{}},
		{"principal not in resource", Request{Principal: admin, Action: ActionOpList, Resource: gold}, Decision{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, decide(c, tt.req, testNow, nil)); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideSeesRoleChangesAtOnce: the Engine caches Person entities by
// id, and a cached entry must never answer for other roles.
func TestDecideSeesRoleChangesAtOnce(t *testing.T) {
	e := newTestEngine(t)
	roles := []string{"viewer"}
	req := Request{Principal: wire.Principal{Kind: "person", ID: "p-1", Roles: roles}, Action: ActionUserDisable}
	steps := []struct {
		name  string
		roles []string
		allow bool
	}{
		{"viewer", []string{"viewer"}, false},
		{"promoted", []string{"viewer", "admin"}, true},
		{"demoted", []string{"viewer"}, false},
		{"no roles", nil, false},
		{"admin", []string{"admin"}, true},
	}
	for _, st := range steps {
		req.Principal.Roles = st.roles
		if d := e.Decide(t.Context(), req); d.Allow != st.allow {
			t.Errorf("%s: Decide = %+v, want allow %v", st.name, d, st.allow)
		}
	}
	if _, ok := e.people.m.Load("p-1"); !ok {
		t.Error("the Engine did not cache Person p-1")
	}
	// The cache holds its own copy: a caller reusing its slice changes
	// the roles the next decision sees, not the cached entry.
	req.Principal.Roles[0] = "viewer"
	if d := e.Decide(t.Context(), req); d.Allow {
		t.Errorf("after the caller's slice became [viewer]: Decide = %+v, want deny", d)
	}
	// An agent with a person's id is not that person.
	agent := Request{Principal: wire.Principal{Kind: "agent", ID: "p-1"}, Action: ActionUserDisable}
	if d := e.Decide(t.Context(), agent); d.Allow {
		t.Errorf("agent p-1: Decide = %+v, want deny", d)
	}
}

func TestPeopleCacheIsBounded(t *testing.T) {
	var c people
	for i := range maxPeople * 3 {
		id := fmt.Sprintf("p-%d", i)
		got := c.entity(id, []string{"viewer"})
		if diff := cmp.Diff(personEntity(id, []string{"viewer"}), got); diff != "" {
			t.Fatalf("entity(%s) (-want +got):\n%s", id, diff)
		}
		if i%64 != 0 && i != maxPeople {
			continue // counting is linear; sample
		}
		n := 0
		for range c.m.Range {
			n++
		}
		if n == 0 || n > maxPeople {
			t.Fatalf("after %d people the cache holds %d, want 1 to %d", i+1, n, maxPeople)
		}
	}
}

func TestPeopleCacheConcurrentRoleChanges(t *testing.T) {
	e := newTestEngine(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			roles, allow := []string{"viewer"}, false
			if g%2 == 0 {
				roles, allow = []string{"admin"}, true
			}
			req := Request{Principal: wire.Principal{Kind: "person", ID: "same", Roles: roles}, Action: ActionUserDisable}
			for range 500 {
				if d := e.Decide(context.Background(), req); d.Allow != allow {
					t.Errorf("roles %v: Decide = %+v, want allow %v", roles, d, allow)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLoadKeepsThePolicyInForceOnError(t *testing.T) {
	e := newTestEngine(t)
	v0, h0 := e.Version()
	if err := e.Load("@id(\"a\") permit (principal, action, resource) when {", 7); err == nil {
		t.Fatal("Load of broken text succeeded")
	}
	if v, h := e.Version(); v != v0 || h != h0 {
		t.Errorf("Version after failed Load = %d %s, want %d %s", v, h, v0, h0)
	}
	if err := e.Load(`@id("all") permit (principal, action, resource);`, 7); err != nil {
		t.Fatal(err)
	}
	if v, h := e.Version(); v != 7 || h == h0 {
		t.Errorf("Version after Load = %d %s, want 7 and a new hash", v, h)
	}
}

// TestIndexAgreesWithFullEvaluation checks every action for several
// principals under the default policy: picking policies by action must
// never change a decision.
func TestIndexAgreesWithFullEvaluation(t *testing.T) {
	for name, c := range map[string]*compiled{"default": mustCompile(t, DefaultText), "generated": mustCompile(t, generatePolicies(300))} {
		principals := []wire.Principal{
			{Kind: "agent", ID: "web-1"},
			{Kind: "person", ID: "n"},
			{Kind: "person", ID: "v", Roles: []string{"viewer"}},
			{Kind: "person", ID: "o", Roles: []string{"operator", "team7"}, MFAAt: testNow},
			{Kind: "person", ID: "a", Roles: []string{"approver", "team12"}, MFAAt: testNow.Add(-time.Hour)},
			{Kind: "person", ID: "r", Roles: []string{"admin"}, MFAAt: testNow},
		}
		n := 0
		for _, p := range principals {
			for i, a := range Actions {
				req := Request{Principal: p, Action: a, Resource: Resource{Type: ResourceService, ID: fmt.Sprintf("svc%d", i%20), Attrs: map[string]any{"tier": "gold"}},
					Context: map[string]any{"risk": "low"}}
				got, want := decide(c, req, testNow, nil), evaluate(c.all, req, testNow, nil)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: %s %s: indexed decision differs (-full +indexed):\n%s", name, p.ID, a, diff)
				}
				if got.Allow {
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no request was allowed; the comparison proves nothing", name)
		}
	}
}

func mustCompile(t testing.TB, text string) *compiled {
	t.Helper()
	c, err := compile(text)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConcurrentDecideAndLoad(t *testing.T) {
	e := newTestEngine(t)
	viewer := wire.Principal{Kind: "person", ID: "v", Roles: []string{"viewer"}}
	alt := `@id("admins") permit (principal in Role::"admin", action, resource);
@id("viewers.hosts") permit (principal in Role::"viewer", action == Action::"host.list", resource);`
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				d := e.Decide(context.Background(), Request{Principal: viewer, Action: ActionHostList})
				if !d.Allow || len(d.Reasons) != 1 {
					t.Errorf("Decide during Load = %+v, want allow by exactly one policy", d)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 50; i++ {
			text := DefaultText
			if i%2 == 0 {
				text = alt
			}
			if err := e.Load(text, i); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func TestApprovalRequirementDefaultsWhenNoRuleHolds(t *testing.T) {
	e := newTestEngine(t)
	if err := e.Load(`@id("admins") permit (principal in Role::"admin", action, resource);`, 1); err != nil {
		t.Fatal(err)
	}
	got, err := e.ApprovalRequirement(context.Background(), Request{
		Principal: wire.Principal{Kind: "person", ID: "o", Roles: []string{"operator"}},
		Action:    ActionOpRun, Resource: Resource{Type: ResourceRunbook, ID: "uptime"},
		Context: map[string]any{"risk": "low", "removes_capacity": false},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultRequirement, got); diff != "" {
		t.Errorf("ApprovalRequirement without approval rules (-want +got):\n%s", diff)
	}
	got.Roles[0] = "mutated"
	if DefaultRequirement.Roles[0] != "approver" {
		t.Error("ApprovalRequirement returned DefaultRequirement's own slice")
	}
	if _, err := e.ApprovalRequirement(context.Background(), Request{Principal: wire.Principal{Kind: "person", ID: "o"}, Action: "op.nope"}); err == nil {
		t.Error("ApprovalRequirement for an unknown action succeeded")
	}
}
