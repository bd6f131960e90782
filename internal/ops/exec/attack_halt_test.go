package exec_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// raceOps is stateOps with a hook on the state reads made once it is
// armed: the first read after arming is the one the step writer makes
// before it writes the next batch of dispatch records, and the hook can
// act right after it (a halt committed elsewhere while the batch is
// written), or make a later read fail.
type raceOps struct {
	stateOps
	mu    sync.Mutex
	armed bool
	reads int // since arming
	// afterRead runs after the n-th read since arming and may replace its
	// answer.
	afterRead func(n int, id string, st ops.OpState) (ops.OpState, error)
}

func (h *raceOps) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed = true
}

func (h *raceOps) State(ctx context.Context, id string) (ops.OpState, error) {
	st, err := h.stateOps.State(ctx, id)
	h.mu.Lock()
	armed := h.armed
	if armed {
		h.reads++
	}
	n := h.reads
	h.mu.Unlock()
	if armed && err == nil {
		return h.afterRead(n, id, st)
	}
	return st, err
}

// raceRig runs plan h1, h2, h3 one at a time with the canary h1 held until
// the hook is armed, and returns the engine's dispatches, h2's record and
// the operation once the engine is idle.
func raceRig(t *testing.T, hook func(o *fakeOps, n int, id string, st ops.OpState) (ops.OpState, error)) ([]string, exec.StepRecord, ops.Operation) {
	t.Helper()
	release := make(chan struct{})
	d := newDispatcher().set("h1/run", outcome{release: release})
	p := plan([]string{"h1", "h2", "h3"})
	p.Concurrency = 1
	o := newFakeOps(operation(p))
	hops := &raceOps{stateOps: stateOps{o}}
	hops.afterRead = func(n int, id string, st ops.OpState) (ops.OpState, error) { return hook(o, n, id, st) }
	r := &rig{poll: time.Hour, db: storetest.OpenSQLite(t), ops: o, g: &fakeGuard{fail: map[int]string{}}, d: d}
	r.stor = r.db.ExecStore()
	eng, err := exec.New(exec.Config{Store: r.stor, Ops: hops, Guard: r.g, Dispatcher: d, Now: func() time.Time { return t0 }, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.Shutdown(ctx)
	})
	r.eng = eng
	d.sent = make(chan string, 3)
	start(t, r)
	if got := <-d.sent; got != "h1/run" {
		t.Fatalf("first dispatch %s, want h1/run", got)
	}
	hops.arm() // the next state read is the one before h2's record
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	steps, err := r.stor.ExecSteps(context.Background(), "op1")
	if err != nil {
		t.Fatal(err)
	}
	var h2 exec.StepRecord
	for _, s := range steps {
		if s.HostID == "h2" {
			h2 = s
		}
	}
	return d.called(), h2, o.op("op1")
}

// TestAttackNoStepSentAfterAHaltCommittedDuringItsBatch: a halt that
// commits after the step writer re-read the operation's state but before
// the batch's dispatch records commit (another server's kill switch while
// a batch of hundreds of records is written) still stops every step of
// that batch: a step leaves only if its operation was running after its
// dispatch record committed (invariant 3). The record goes back to
// pending, not sent.
func TestAttackNoStepSentAfterAHaltCommittedDuringItsBatch(t *testing.T) {
	sent, h2, op := raceRig(t, func(o *fakeOps, n int, id string, st ops.OpState) (ops.OpState, error) {
		if n == 1 {
			o.force(id, ops.OpHalted) // commits after this read answered "running"
		}
		return st, nil
	})
	if diff := cmp.Diff([]string{"h1/run"}, sent); diff != "" {
		t.Errorf("steps sent after the halt committed (-want +got):\n%s", diff)
	}
	if h2.State != ops.StepPending {
		t.Errorf("h2's record is %q after a halt stopped its step before it left, want pending", h2.State)
	}
	if op.State != ops.OpHalted {
		t.Errorf("operation %s, want halted", op.State)
	}
}

// TestAttackUnreadableStateAfterABatchHalts: when the state cannot be read
// again after a batch of dispatch records committed, the batch's steps are
// not sent and the operation halts for a person — it does not go on to
// later hosts and waves (and finish "succeeded") with those hosts never
// run.
func TestAttackUnreadableStateAfterABatchHalts(t *testing.T) {
	sent, h2, op := raceRig(t, func(o *fakeOps, n int, id string, st ops.OpState) (ops.OpState, error) {
		if n == 2 {
			return "", errors.New("connection reset by peer")
		}
		return st, nil
	})
	if diff := cmp.Diff([]string{"h1/run"}, sent); diff != "" {
		t.Errorf("steps sent though the state could not be read (-want +got):\n%s", diff)
	}
	if h2.State != ops.StepPending {
		t.Errorf("h2's record is %q, want pending (not sent)", h2.State)
	}
	if op.State != ops.OpHalted {
		t.Errorf("operation %s (%s), want halted by the executor", op.State, op.Detail)
	}
}
