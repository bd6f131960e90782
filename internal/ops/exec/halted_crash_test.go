package exec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestHaltedOpCrashedMidWaveDoesNotResumeAsDone: steps in flight when a
// halted operation's server died become unknown at restart, so a resume
// cannot treat them as done.
func TestHaltedOpCrashedMidWaveDoesNotResumeAsDone(t *testing.T) {
	db := storetest.OpenSQLite(t)
	p := plan([]string{"h1"}, []string{"h2", "h3"}, []string{"h4", "h5"})
	p.HaltAfter = 0 // not a single failure is allowed
	o := newFakeOps(operation(p))

	hold := make(chan struct{})
	defer close(hold)
	d1 := newDispatcher().set("h2/run", outcome{release: hold}).set("h3/run", outcome{release: hold})
	d1.sent = make(chan string, 10)
	first := &rig{db: db, ops: o, g: &fakeGuard{}, d: d1}
	dead := &deadStore{Store: db.ExecStore()}
	first.eng = first.engine(t, dead)
	if err := first.eng.Start(context.Background(), "op1"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for k := range d1.sent {
		if seen[k] = true; seen["h2/run"] && seen["h3/run"] {
			break
		}
	}
	// Kill switch while h2 and h3 run, then the process dies before they report.
	if err := first.eng.Halt(context.Background(), "op1", "person:p2", "looks wrong"); err != nil {
		t.Fatal(err)
	}
	dead.dead.Store(true)

	d2 := newDispatcher()
	r := newRig(t, db, o, d2)
	ctx := context.Background()
	if err := r.eng.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	recs := r.records(t)
	if o.op("op1").State != ops.OpHalted || recs["h2/run"] != ops.StepUnknown || recs["h3/run"] != ops.StepUnknown {
		t.Fatalf("after Recover: state %s, records %v; want still halted with h2 and h3 unknown", o.op("op1").State, recs)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); err != nil {
		if !strings.Contains(err.Error(), "unknown") {
			t.Errorf("Resume refused without naming the unknown hosts: %v", err)
		}
		return // refused until a person marks h2 and h3: right
	}
	got := r.finish(t)
	t.Logf("after Resume: state %s (%s), dispatched %v, records %v", got.State, got.Detail, d2.called(), r.records(t))
	if got.State == ops.OpSucceeded {
		t.Error("h2 and h3 (outcome unknown after the crash) were treated as done: the op went on to wave 3 and succeeded with HaltAfter=0")
	}
}

// TestWaitOnUnknownOpLeavesNothingBehind: long-polls on made-up IDs must
// not grow the engine's memory.
func TestWaitOnUnknownOpLeavesNothingBehind(t *testing.T) {
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(), newDispatcher())
	for i := range 50 {
		if _, err := r.eng.Wait(context.Background(), fmt.Sprintf("op_nope_%d", i), 0); err == nil {
			t.Fatal("Wait on an unknown operation succeeded")
		}
	}
	if n := r.eng.WaitersForTest(); n != 0 {
		t.Errorf("%d change channels left after waits on unknown operations, want 0", n)
	}
}
