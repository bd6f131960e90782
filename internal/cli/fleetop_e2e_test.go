package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// fleetStepRunbook runs `true` on count hosts, a canary first, with a
// health check.
const fleetStepRunbook = `name: bench-step
description: "One harmless step on every host."
risk: medium
parameters:
  - name: service
    type: service
  - name: count
    type: int
    min: 1
    max: 1000000
target:
  service: service
  count: count
step:
  argv: ["true"]
  timeout_s: 60
health_check:
  argv: ["true"]
  timeout_s: 60
waves:
  canary: 1
`

// TestFleetOperationRunsOnEveryAgent requests, approves and runs one step
// (and its health check) on 200 real in-process agents over HTTPS, through
// the CLI: the op.requested entry records the hosts by digest (the digest
// `ops show --hosts` computes from the list it prints), every host's
// dispatch and result is in the batch entries exactly once, and the log
// verifies.
func TestFleetOperationRunsOnEveryAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 200 agents")
	}
	const n = 200
	q := startServer(t, "")
	q.setUp(n)
	// A fleet-wide step keeps every host in service; the blast-radius cap
	// the quickstart sets on billing is lifted for it, and index's floor is
	// lowered to what a wave of a quarter of the fleet leaves.
	q.loosen("service", "set", "billing", "--max-per-operation", "none")
	q.loosen("service", "set", "index", "--min-healthy", "50%")
	rb := filepath.Join(q.dir, "bench-step.yaml")
	if err := os.WriteFile(rb, []byte(fleetStepRunbook), 0o600); err != nil {
		t.Fatal(err)
	}
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", rb)

	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "bench-step", "--param", "service=billing", "--param", fmt.Sprintf("count=%d", n), "--reason", "INC-fleet"), &run)
	op := run.Operation
	if op.State != "pending_approval" {
		t.Fatalf("operation %s is %s, want pending_approval", op.ID, op.State)
	}
	shown := q.mustAs("approver1", "ops", "show", op.ID)
	if !strings.Contains(shown, "--hosts lists every one") || strings.Count(shown, "\n") > 40 {
		t.Errorf("ops show of %d hosts is not summarised:\n%s", n, shown)
	}
	all := q.mustAs("approver1", "ops", "show", op.ID, "--hosts")
	_, digest, ok := strings.Cut(all, "hosts digest: ")
	if !ok {
		t.Fatalf("ops show --hosts prints no digest:\n%s", all)
	}
	digest = strings.Fields(digest)[0]
	q.mustAs("approver1", "approve", op.ID, "--otp", q.otp("approver1"))
	watch := q.mustAs("approver1", "--json", "ops", "watch", op.ID)
	if !strings.Contains(watch, `"succeeded"`) {
		t.Fatalf("ops watch did not end in success:\n%.2000s", watch)
	}
	q.mustAs("admin", "log", "verify")

	entries := q.auditEntries("op.succeeded")
	checkEntryLayouts(t, entries)
	for _, e := range entries {
		if e.Kind == "op.requested" && string(e.Data["host_count"]) == fmt.Sprint(n) {
			if e.Version != 2 || string(e.Data["hosts_digest"]) != `"`+digest+`"` || string(e.Data["plan_hash"]) != `"`+run.Result.Plan.Hash+`"` {
				t.Errorf("op.requested v%d records digest %s and plan %s; ops show --hosts computed %s, the plan is %s",
					e.Version, e.Data["hosts_digest"], e.Data["plan_hash"], digest, run.Result.Plan.Hash)
			}
		}
	}
	for _, kind := range []string{"op.steps_dispatched", "op.step_results"} {
		for _, phase := range []string{"run", "health"} {
			seen := map[string]int{}
			for _, h := range loggedHosts(t, entries, kind, phase) {
				var host string
				if err := json.Unmarshal(h["host"], &host); err != nil {
					t.Fatal(err)
				}
				seen[host]++
				if kind == "op.step_results" && string(h["state"]) != `"succeeded"` {
					t.Errorf("%s %s result of %s: %s", kind, phase, host, h["state"])
				}
			}
			for _, w := range run.Result.Plan.Waves {
				for _, h := range w.Hosts {
					if seen[h] != 1 {
						t.Errorf("%s of %s on %s: logged %d times, want once", kind, phase, h, seen[h])
					}
				}
			}
		}
	}
}
