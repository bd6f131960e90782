package exec_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// haltDuringBatchOps is stateOps whose state read for the second dispatch
// batch answers "running" and then, before that batch's records commit,
// halts the operation: a halt committed by another server (or by this
// one, just before its kill switch cancels the run) while a batch of
// records is being written. The batch read the state before it began,
// and a batch of 512 records on PostgreSQL takes long enough for a halt
// to commit in between.
type haltDuringBatchOps struct {
	stateOps
	mu    sync.Mutex
	reads int
}

func (h *haltDuringBatchOps) State(ctx context.Context, id string) (ops.OpState, error) {
	st, err := h.stateOps.State(ctx, id)
	h.mu.Lock()
	h.reads++
	n := h.reads
	h.mu.Unlock()
	if n == 2 && err == nil && st == ops.OpRunning {
		h.force(id, ops.OpHalted)
	}
	return st, err
}

// TestAttackNoStepSentAfterAHaltCommittedDuringItsBatch: a halt that
// commits after a batch re-read the operation's state but before the
// batch's dispatch records commit must still stop every step of that
// batch: a step may leave only if its operation was running when its
// dispatch record committed (invariant 3). The step whose record was
// written goes back to pending, not sent.
func TestAttackNoStepSentAfterAHaltCommittedDuringItsBatch(t *testing.T) {
	release := make(chan struct{})
	d := newDispatcher().set("h1/run", outcome{release: release})
	p := plan([]string{"h1", "h2", "h3"})
	p.Concurrency = 1
	o := newFakeOps(operation(p))
	hops := &haltDuringBatchOps{stateOps: stateOps{o}}
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
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"h1/run"}, d.called()); diff != "" {
		t.Errorf("steps sent after the halt committed (-want +got):\n%s", diff)
	}
	steps, err := r.stor.ExecSteps(context.Background(), "op1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.HostID != "h1" && s.State != ops.StepPending {
			t.Errorf("host %s's record is %s after a halt stopped its step before it left, want pending", s.HostID, s.State)
		}
	}
}
