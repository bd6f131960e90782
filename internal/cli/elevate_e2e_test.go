package cli_test

import (
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// accessServer starts a server whose grants and training run on a clock
// the test moves (AccessNow), with the quickstart's people, 10 agents,
// services and runbook.
func accessServer(t *testing.T, store string) (*quickstart, *atomic.Int64) {
	t.Helper()
	var offset atomic.Int64
	q := startServerWith(t, store, app.Options{AccessNow: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	q.setUp(10)
	return q, &offset
}

// onBothStores runs fn on SQLite and, when INTERLOCK_TEST_POSTGRES_URL is
// set, on PostgreSQL.
func onBothStores(t *testing.T, fn func(t *testing.T, store string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "") })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.PostgresDSN(t)) })
}

// refused runs a command that must fail and returns its stderr.
func (q *quickstart) refused(user string, args ...string) string {
	q.t.Helper()
	code, out, errs := q.as(user, args...)
	if code == 0 {
		q.t.Fatalf("interlock %s as %s succeeded, want a refusal:\n%s", strings.Join(args, " "), user, out)
	}
	return errs
}

// TestJustInTimeElevation: eve holds approver for good and is eligible
// for operator. She cannot run an operation until elevated; she cannot
// approve her own grant; after another independent approver approves it
// with fresh MFA she can run, the decision's log entry names the grant;
// once the grant's hour is up on the server's clock she cannot; a revoked
// grant stops working at once.
func TestJustInTimeElevation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, offset := accessServer(t, tc.store(t))
			q.invite("eve", "approver")
			runArgs := []string{"--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "INC-9"}

			// Not eligible yet: asking is refused with a sentence.
			if errs := q.refused("eve", "elevate", "--role", "operator", "--for", "1h", "--reason", "INC-9"); !strings.Contains(errs, "not eligible for operator") {
				t.Errorf("a request without eligibility was refused without saying why: %s", errs)
			}
			q.mustAs("admin", "grants", "eligible", "eve", "operator")
			if errs := q.refused("eve", runArgs...); !strings.Contains(errs, "policy does not allow") {
				t.Fatalf("eve ran an operation before elevation, or was refused for another reason: %s", errs)
			}

			// Bad requests: each refused with a sentence, nothing made.
			for _, bad := range []struct {
				want string
				args []string
			}{
				{"does not exist", []string{"elevate", "--role", "god", "--for", "1h", "--reason", "INC-9"}},
				{"outside that", []string{"elevate", "--role", "operator", "--for", "13h", "--reason", "INC-9"}},
				{"outside that", []string{"elevate", "--role", "operator", "--for", "1s", "--reason", "INC-9"}},
				{"--reason", []string{"elevate", "--role", "operator", "--for", "1h", "--reason", " "}},
				{"no grant", []string{"grants", "approve", "gr_nosuchgrant"}},
			} {
				if errs := q.refused("eve", bad.args...); !strings.Contains(errs, bad.want) {
					t.Errorf("interlock %s: refusal does not say %q: %s", strings.Join(bad.args, " "), bad.want, errs)
				}
			}
			var none wire.GrantList
			mustJSON(t, q.mustAs("eve", "--json", "grants", "list"), &none)
			if len(none.Grants) != 0 {
				t.Fatalf("refused requests left grants: %+v", none.Grants)
			}

			var g wire.Grant
			mustJSON(t, q.mustAs("eve", "--json", "elevate", "--role", "operator", "--for", "1h", "--reason", "INC-9"), &g)
			if g.State != "pending" || g.Needed != 1 || !slices.Equal(g.ApproverRoles, []string{"admin", "approver"}) {
				t.Fatalf("grant = %+v, want pending, 1 approval from admin or approver", g)
			}
			if errs := q.refused("eve", runArgs...); !strings.Contains(errs, "policy does not allow") {
				t.Fatalf("a pending grant let eve run: %s", errs)
			}
			// Self-approval: eve is an approver, but not of her own grant.
			if errs := q.refused("eve", "grants", "approve", g.ID, "--otp", q.otp("eve")); !strings.Contains(errs, "cannot approve it") {
				t.Fatalf("self-approval was not refused as such: %s", errs)
			}
			// admin invited eve, so admin is not independent of her.
			if errs := q.refused("admin", "grants", "approve", g.ID, "--otp", q.otp("admin")); !strings.Contains(errs, "eve") {
				t.Errorf("eve's inviter approved her grant, or was refused without naming her: %s", errs)
			}
			mustJSON(t, q.mustAs("approver1", "--json", "grants", "approve", g.ID, "--otp", q.otp("approver1")), &g)
			if g.State != "active" || len(g.Approvals) != 1 || g.Approvals[0].Person != "approver1" {
				t.Fatalf("approved grant = %+v, want active, approved by approver1", g)
			}
			if d := g.ExpiresAt.Sub(g.StartsAt); d != time.Hour {
				t.Errorf("grant lasts %s, want 1h", d)
			}

			var run wire.RunResponse
			mustJSON(t, q.mustAs("eve", runArgs...), &run)
			if run.Operation.State != "pending_approval" {
				t.Fatalf("eve's operation is %s, want pending_approval", run.Operation.State)
			}
			q.mustAs("approver1", "deny", run.Operation.ID, "--reason", "test only")
			named := false
			for _, e := range q.auditEntries("elevate.decision") {
				if e.Kind != "elevate.decision" {
					continue
				}
				var action string
				var grants []string
				_ = json.Unmarshal(e.Data["action"], &action)
				_ = json.Unmarshal(e.Data["grants"], &grants)
				named = named || action == "op.run" && slices.Contains(grants, g.ID)
			}
			if !named {
				t.Errorf("no elevate.decision entry names grant %s for op.run", g.ID)
			}

			// A role held through a grant never approves grants: operator1,
			// eligible for approver and elevated, cannot approve eve's.
			q.mustAs("admin", "grants", "eligible", "operator1", "approver")
			var og, eg wire.Grant
			mustJSON(t, q.mustAs("operator1", "--json", "elevate", "--role", "approver", "--for", "1h", "--reason", "INC-9b"), &og)
			q.mustAs("approver1", "grants", "approve", og.ID)
			if errs := q.refused("eve", "elevate", "--role", "admin", "--for", "1h", "--reason", "again"); !strings.Contains(errs, "not eligible") {
				t.Errorf("eve asked for admin without eligibility: %s", errs)
			}
			q.mustAs("admin", "grants", "eligible", "eve", "operator", "admin")
			mustJSON(t, q.mustAs("eve", "--json", "elevate", "--role", "admin", "--for", "1h", "--reason", "INC-9c"), &eg)
			if eg.Needed != 1 || !slices.Equal(eg.ApproverRoles, []string{"admin"}) {
				t.Errorf("an admin grant needs %d from %v, want 1 from admin", eg.Needed, eg.ApproverRoles)
			}
			if errs := q.refused("approver1", "grants", "approve", eg.ID); !strings.Contains(errs, "standing role") {
				t.Errorf("an approver approved an admin grant: %s", errs)
			}
			if errs := q.refused("operator1", "grants", "approve", eg.ID, "--otp", q.otp("operator1")); !strings.Contains(errs, "standing role") {
				t.Errorf("a role held through a grant approved a grant: %s", errs)
			}
			q.mustAs("eve", "grants", "revoke", eg.ID, "--reason", "not needed")
			mustJSON(t, q.mustAs("eve", "--json", "grants", "show", eg.ID), &eg)
			if eg.State != "withdrawn" {
				t.Errorf("eve's own pending request after revoke is %s, want withdrawn", eg.State)
			}

			// The hour passes on the server's clock: the grant expires by itself.
			offset.Store(int64(time.Hour + time.Second))
			if errs := q.refused("eve", runArgs...); !strings.Contains(errs, "policy does not allow") {
				t.Fatalf("eve ran an operation after her grant expired: %s", errs)
			}
			mustJSON(t, q.mustAs("eve", "--json", "grants", "show", g.ID), &g)
			if g.State != "expired" {
				t.Errorf("grant after its hour is %s, want expired", g.State)
			}
			// The server records the end in the log by itself.
			expired := false
			for _, e := range q.auditEntriesN("elevate.expired", 2) {
				var holder string
				_ = json.Unmarshal(e.Data["holder"], &holder)
				expired = expired || e.Kind == "elevate.expired" && holder != ""
			}
			if !expired {
				t.Error("no elevate.expired entry after the grants' hour")
			}

			// A new grant, revoked by an admin: it stops at once.
			mustJSON(t, q.mustAs("eve", "--json", "elevate", "--role", "operator", "--for", "30m", "--reason", "INC-10"), &g)
			mustJSON(t, q.mustAs("approver1", "--json", "grants", "approve", g.ID), &g)
			mustJSON(t, q.mustAs("eve", runArgs...), &run)
			q.mustAs("approver1", "deny", run.Operation.ID, "--reason", "test only")
			// operator1 may not revoke someone else's grant.
			if errs := q.refused("operator1", "grants", "revoke", g.ID, "--reason", "mine now"); !strings.Contains(errs, "elevate.revoke") {
				t.Errorf("operator1 revoked eve's grant, or was refused for another reason: %s", errs)
			}
			q.mustAs("admin", "grants", "revoke", g.ID, "--reason", "incident closed")
			if errs := q.refused("eve", runArgs...); !strings.Contains(errs, "policy does not allow") {
				t.Fatalf("eve ran an operation after her grant was revoked: %s", errs)
			}
			// Every step is in the log, in order (grants run on a clock an
			// hour ahead here; their entries still carry the log's time).
			entries := q.auditEntriesN("elevate.revoked", 2)
			kinds := map[string]int{}
			for _, e := range entries {
				kinds[e.Kind]++
			}
			for k, n := range map[string]int{"elevate.eligibility_set": 3, "elevate.requested": 4, "elevate.approval_refused": 4,
				"elevate.approved": 3, "elevate.activated": 3, "elevate.revoked": 2, "elevate.expired": 2} {
				if kinds[k] != n {
					t.Errorf("the log has %d %s entries, want %d", kinds[k], k, n)
				}
			}
			checkEntryLayouts(t, entries)
		})
	}
}
