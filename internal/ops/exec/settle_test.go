package exec_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// lostErr is what the hub returns when a host's connection ends after
// the step was handed over.
type lostErr struct{}

func (lostErr) Error() string {
	return "host h3: its agent is not connected (the connection closed while the step ran)"
}
func (lostErr) OutcomeUnknown() bool { return true }

// TestLostAgentSettlesFromItsLedger: an agent that vanishes mid-step
// leaves its step unknown (not failed), gets no rollback, and the
// operation needs attention naming it. Its ledger's report settles the
// step once: another host cannot settle it, a replay changes nothing,
// and with every step known and none failed the operation continues by
// itself. On SQLite and PostgreSQL.
func TestLostAgentSettlesFromItsLedger(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan([]string{"h1"}, []string{"h2", "h3"}, []string{"h4"})
			p.Rollback = &ops.Command{Argv: []string{"svc", "undrain"}}
			d := newDispatcher().set("h3/run", outcome{err: lostErr{}})
			r := newRig(t, tc.open(t), newFakeOps(operation(p)), d)
			start(t, r)
			got := r.finish(t)
			if got.State != ops.OpAttention || !strings.Contains(got.Detail, "contact with the agent of h3 was lost") || !strings.Contains(got.Detail, "Nothing was rolled back") {
				t.Fatalf("state %s, detail %q; want needs_attention naming h3", got.State, got.Detail)
			}
			recs := r.records(t)
			delete(recs, "h2/run") // sent, or held back once h3 counted against the allowance
			want := map[string]ops.StepState{"h1/run": ops.StepSucceeded, "h3/run": ops.StepUnknown}
			if diff := cmp.Diff(want, recs); diff != "" {
				t.Fatalf("records after the agent vanished (-want +got):\n%s", diff)
			}
			for _, c := range d.called() {
				if strings.HasSuffix(c, "/rollback") {
					t.Errorf("a rollback was dispatched (%s) to a wave whose host could not be reached", c)
				}
			}

			ctx := context.Background()
			h3 := exec.StepID("op1", "h3", exec.PhaseRun)
			// Another host's agent cannot settle h3's step.
			err := r.eng.SettleFromAgent(ctx, "h2", wire.StepResult{StepID: h3, ExitCode: 0})
			if ue, ok := usererr.As(err); !ok || ue.Code != "unknown_step" {
				t.Errorf("h2 reporting h3's step: %v, want unknown_step", err)
			}
			if r.records(t)["h3/run"] != ops.StepUnknown {
				t.Fatal("another host's report settled h3's step")
			}
			// h3's own ledger settles it, and the operation continues.
			if err := r.eng.SettleFromAgent(ctx, "h3", wire.StepResult{StepID: h3, ExitCode: 0, Output: "drained\n"}); err != nil {
				t.Fatalf("settle from h3's ledger: %v", err)
			}
			got = r.finish(t)
			if got.State != ops.OpSucceeded {
				t.Errorf("after the settle the operation is %s (%s), want succeeded", got.State, got.Detail)
			}
			// A replay (another connect) changes nothing: never twice.
			if err := r.eng.SettleFromAgent(ctx, "h3", wire.StepResult{StepID: h3, ExitCode: 1}); err != nil {
				t.Errorf("a replayed result: %v, want accepted without change", err)
			}
			if s := r.records(t)["h3/run"]; s != ops.StepSucceeded {
				t.Errorf("a replayed result changed h3's step to %s", s)
			}
			if n := strings.Count(strings.Join(d.called(), " "), "h3/run"); n != 1 {
				t.Errorf("h3's step was dispatched %d times, want once", n)
			}
		})
	}
}

// TestSettledFailureHaltsForAPerson: when the ledger says the step
// failed (interrupted with its agent), the operation halts rather than
// continue, whatever failures the plan allows.
func TestSettledFailureHaltsForAPerson(t *testing.T) {
	p := plan([]string{"h3"}, []string{"h4"})
	p.HaltAfter = 5
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), newDispatcher().set("h3/run", outcome{err: lostErr{}}))
	start(t, r)
	if got := r.finish(t); got.State != ops.OpAttention {
		t.Fatalf("state %s, want needs_attention", got.State)
	}
	err := r.eng.SettleFromAgent(context.Background(), "h3", wire.StepResult{StepID: exec.StepID("op1", "h3", exec.PhaseRun), ExitCode: -1,
		Error: "the agent stopped while this step ran"})
	if err != nil {
		t.Fatal(err)
	}
	got := r.finish(t)
	if got.State != ops.OpHalted || !strings.Contains(got.Detail, "settled from its agent's ledger") || !strings.Contains(got.Detail, "h3") {
		t.Errorf("state %s, detail %q; want halted, naming h3", got.State, got.Detail)
	}
	if s := r.records(t); s["h4/run"] != "" {
		t.Errorf("h4 was sent its step after a settled failure: %v", s)
	}
	var rl interface{ RetryLater() bool }
	if errors.As(exec.RetryLaterError{}, &rl) && !rl.RetryLater() {
		t.Error("RetryLaterError does not ask to retry")
	}
}
