package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// generatePolicies writes n policies shaped like a large installation's:
// per-team grants on one action or a few, with conditions on the resource
// and the context, a handful of any-action forbids, and the admin permit.
func generatePolicies(n int) string {
	var b strings.Builder
	b.WriteString("@id(\"admins\")\npermit (principal in Role::\"admin\", action, resource);\n")
	for i := 1; i < n; i++ {
		team := fmt.Sprintf("team%d", i%50)
		switch {
		case i%100 == 0: // 1%: any-action forbids
			fmt.Fprintf(&b, "@id(\"p%d\")\nforbid (principal in Role::%q, action, resource)\nwhen { context has risk && context.risk == \"frozen-%d\" };\n", i, team, i)
		case i%10 == 0: // 10%: a few actions at once
			a1, a2 := Actions[i%len(Actions)], Actions[(i*7)%len(Actions)]
			fmt.Fprintf(&b, "@id(\"p%d\")\npermit (principal in Role::%q, action in [Action::%q, Action::%q], resource is Service)\nwhen { resource has tier && resource.tier == \"gold\" && context.source_ip like \"10.*\" };\n", i, team, a1, a2)
		default:
			a := Actions[i%len(Actions)]
			fmt.Fprintf(&b, "@id(\"p%d\")\npermit (principal in Role::%q, action == Action::%q, resource == Service::\"svc%d\")\nwhen { context has risk && context.risk == \"low\" };\n", i, team, a, i%20)
		}
	}
	return b.String()
}

// benchGrant is the first policy generatePolicies(n) writes that permits
// op.run to a team, found from op.run's place in Actions: the generator
// spreads actions by index, so this stays true however many actions
// there are (a fixed team and service broke when actions were added).
func benchGrant(n int) (int, error) {
	for i := 1; i < n; i++ {
		switch {
		case i%100 == 0: // a forbid
		case i%10 == 0:
			if Actions[i%len(Actions)] == ActionOpRun || Actions[(i*7)%len(Actions)] == ActionOpRun {
				return i, nil
			}
		case Actions[i%len(Actions)] == ActionOpRun:
			return i, nil
		}
	}
	return 0, fmt.Errorf("none of %d generated policies permits %s", n, ActionOpRun)
}

// benchRequest is an op.run that the generated policy grant permits:
// its team, its service (gold tier), a low risk and a 10.* address.
func benchRequest(grant int) Request {
	return Request{
		Principal: wire.Principal{Kind: "person", ID: "o", Roles: []string{"operator", fmt.Sprintf("team%d", grant%50)}, MFAAt: testNow},
		Action:    ActionOpRun,
		Resource:  Resource{Type: ResourceService, ID: fmt.Sprintf("svc%d", grant%20), Attrs: map[string]any{"tier": "gold"}},
		Context:   map[string]any{"risk": "low", "source_ip": "10.0.0.1"},
	}
}

// BenchmarkDecide1000 compares a decision at 1,000 policies with the
// action index (what Engine.Decide does) and without it (every policy
// handed to cedar-go, as cedar.PolicySet would).
//
//	go test ./internal/policy -run xxx -bench Decide1000 -benchmem
func BenchmarkDecide1000(b *testing.B) {
	c, err := compile(generatePolicies(1000))
	if err != nil {
		b.Fatal(err)
	}
	grant, err := benchGrant(1000)
	if err != nil {
		b.Fatal(err)
	}
	req := benchRequest(grant)
	if got, want := decide(c, req, testNow, nil), evaluate(c.all, req, testNow, nil); fmt.Sprint(got) != fmt.Sprint(want) || !got.Allow {
		b.Fatalf("indexed %+v, full %+v: want the same allow", got, want)
	}
	b.Logf("policies: %d; evaluated per op: indexed %d, full %d", len(c.all.entries), len(c.byAction[req.Action].entries), len(c.all.entries))
	b.Run("indexed", func(b *testing.B) {
		for b.Loop() {
			decide(c, req, testNow, nil)
		}
	})
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			evaluate(c.all, req, testNow, nil)
		}
	})
	// The same full evaluation through cedar-go's own PolicySet, to show
	// the unindexed figure is not an artefact of our iterator.
	ps := cedar.NewPolicySet()
	for _, e := range c.all.entries {
		ps.Add(e.id, e.policy)
	}
	creq, entities, err := cedarRequest(req, testNow, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cedar.PolicySet", func(b *testing.B) {
		for b.Loop() {
			cedar.Authorize(ps, entities, creq)
		}
	})
}

// BenchmarkDecideDefault is a decision under the default policy, through
// the Engine (logging to a discarding handler).
func BenchmarkDecideDefault(b *testing.B) {
	e := newTestEngine(b)
	req := benchRequest(7)
	b.ResetTimer()
	for b.Loop() {
		e.Decide(b.Context(), req)
	}
}

// BenchmarkDecideKMSEncrypt is a decision shaped like the KMS encrypt
// route, the hottest one: an admin, a Key, and source_ip in the context;
// "parallel" makes them from every P at once, as a loaded server does.
func BenchmarkDecideKMSEncrypt(b *testing.B) {
	e := newTestEngine(b)
	req := Request{
		Principal: wire.Principal{Kind: "person", ID: "p-1", Roles: []string{"admin"}, MFAAt: testNow},
		Action:    ActionKMSEncrypt,
		Resource:  Resource{Type: ResourceKey, ID: "bench"},
		Context:   map[string]any{"source_ip": "10.0.0.1"},
	}
	if d := e.Decide(b.Context(), req); !d.Allow {
		b.Fatalf("Decide = %+v, want allow", d)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			e.Decide(b.Context(), req)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e.Decide(context.Background(), req)
			}
		})
	})
}
