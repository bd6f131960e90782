package exec_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestResumeWhileHaltedStepInFlight: the kill switch stops dispatching at
// once, but a step already sent runs on. Until it reports, the halted
// operation cannot be resumed: a resume then would run next to the old
// run, or count the step as done. Once it has reported, the resume goes on.
func TestResumeWhileHaltedStepInFlight(t *testing.T) {
	p := plan([]string{"h1"}, []string{"h2", "h3"})
	hold := make(chan struct{})
	d := newDispatcher().set("h1/run", outcome{release: hold})
	d.sent = make(chan string, 10)
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
	released := false
	defer func() {
		if !released {
			close(hold)
		}
	}()
	ctx := context.Background()
	start(t, r)
	<-d.sent // the canary is running on h1
	if err := r.eng.Halt(ctx, "op1", "person:p2", "graphs look odd"); err != nil {
		t.Fatal(err)
	}

	err := r.eng.Resume(ctx, "op1", "person:p3")
	if ue, ok := usererr.As(err); !ok || ue.Code != "op_still_stopping" {
		t.Fatalf("Resume with h1 in flight = %v, want op_still_stopping", err)
	}
	if got := r.ops.op("op1").State; got != ops.OpHalted {
		t.Errorf("state after the refused resume = %s, want halted", got)
	}
	if diff := cmp.Diff([]ops.OpState{ops.OpHalted}, r.ops.states()); diff != "" {
		t.Errorf("op transitions (-want +got):\n%s", diff)
	}
	r.g.mu.Lock()
	asked := len(r.g.resumes)
	r.g.mu.Unlock()
	if asked != 0 {
		t.Errorf("the guard was asked %d times whether to resume, want 0", asked)
	}

	// h1 reports; the run ends; now the operation resumes and finishes.
	close(hold)
	released = true
	if err := r.eng.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.records(t)["h1/run"]; got != ops.StepSucceeded {
		t.Fatalf("h1/run = %s after it reported, want succeeded", got)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); err != nil {
		t.Fatalf("Resume after h1 reported: %v", err)
	}
	if got := r.finish(t); got.State != ops.OpSucceeded {
		t.Errorf("state = %s (%s), want succeeded", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h1/run", "h2/run", "h3/run"}, slices.Sorted(slices.Values(d.called()))); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}
