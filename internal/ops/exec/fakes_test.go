package exec_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
)

// fakeOps is an in-memory exec.Ops: the operations table as the ops
// engineer's store would keep it, with compare-and-set state changes.
type fakeOps struct {
	mu          sync.Mutex
	ops         map[string]ops.Operation
	transitions []transition
	dead        atomic.Bool // a crashed process: every call fails
	// outOfService lists, in order, the hosts TakeOutOfService was asked
	// to take out.
	outOfService []string
}

type transition struct {
	From, To ops.OpState
	Detail   string
	Actor    string
}

func newFakeOps(list ...ops.Operation) *fakeOps {
	f := &fakeOps{ops: map[string]ops.Operation{}}
	for _, op := range list {
		f.ops[op.ID] = op
	}
	return f
}

var errDead = errors.New("process is dead")

func (f *fakeOps) Get(ctx context.Context, id string) (ops.Operation, error) {
	if f.dead.Load() {
		return ops.Operation{}, errDead
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[id]
	if !ok {
		return op, fmt.Errorf("op %s: not found", id)
	}
	return op, nil
}

func (f *fakeOps) SetState(ctx context.Context, id string, from []ops.OpState, to ops.OpState, detail, actor string) error {
	if f.dead.Load() {
		return errDead
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := f.ops[id]
	if !ok {
		return fmt.Errorf("op %s: not found", id)
	}
	if !slices.Contains(from, op.State) {
		return fmt.Errorf("op %s is %s, not one of %v", id, op.State, from)
	}
	f.transitions = append(f.transitions, transition{op.State, to, detail, actor})
	op.State, op.Detail = to, detail
	f.ops[id] = op
	return nil
}

func (f *fakeOps) ListByState(ctx context.Context, state ops.OpState) ([]ops.Operation, error) {
	if f.dead.Load() {
		return nil, errDead
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ops.Operation
	for _, op := range f.ops {
		if op.State == state {
			out = append(out, op)
		}
	}
	return out, nil
}

// force sets a state directly, as another server or the approvals path would.
func (f *fakeOps) force(id string, s ops.OpState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op := f.ops[id]
	op.State = s
	f.ops[id] = op
}

func (f *fakeOps) op(id string) ops.Operation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops[id]
}

func (f *fakeOps) TakeOutOfService(_ context.Context, opID, hostID string) error {
	if f.dead.Load() {
		return errors.New("fake ops: the process is dead")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outOfService = append(f.outOfService, hostID)
	return nil
}

func (f *fakeOps) states() []ops.OpState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ops.OpState
	for _, t := range f.transitions {
		out = append(out, t.To)
	}
	return out
}

// fakeGuard passes every wave except those in fail.
type fakeGuard struct {
	mu     sync.Mutex
	fail   map[int]string // wave → failing verdict's message
	err    error
	checks []int
	// resumeErr refuses every resume; resumes records each call's
	// untouched hosts.
	resumeErr error
	resumes   [][]string
}

func (g *fakeGuard) CheckWave(ctx context.Context, op ops.Operation, wave int) ([]ops.Verdict, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks = append(g.checks, wave)
	if g.err != nil {
		return nil, g.err
	}
	vs := []ops.Verdict{{Rule: "capacity_floor", Service: "billing", Pass: true, Message: "billing keeps enough hosts."}}
	if msg, ok := g.fail[wave]; ok {
		vs = append(vs, ops.Verdict{Rule: "capacity_floor", Service: "index", Pass: false, Message: msg})
	}
	return vs, nil
}

func (g *fakeGuard) CheckResume(ctx context.Context, op ops.Operation, untouched []string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resumes = append(g.resumes, untouched)
	return g.resumeErr
}

func (g *fakeGuard) waves() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.checks)
}

// outcome is what the fake agent does for one host and phase.
type outcome struct {
	exit     int
	output   string
	err      error         // unreachable
	hang     bool          // never answers: the dispatch times out
	release  chan struct{} // answer only once this is closed
	timedOut bool          // the agent killed the command
}

// fakeDispatcher is a programmable agent hub.
type fakeDispatcher struct {
	mu       sync.Mutex
	outcomes map[string]outcome // "host/phase"
	calls    []string           // "host/phase", in dispatch order
	steps    []wire.Step
	sent     chan string // if set, receives "host/phase" as each dispatch starts
}

func newDispatcher() *fakeDispatcher {
	return &fakeDispatcher{outcomes: map[string]outcome{}}
}

func (d *fakeDispatcher) set(hostPhase string, o outcome) *fakeDispatcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.outcomes[hostPhase] = o
	return d
}

func (d *fakeDispatcher) Dispatch(ctx context.Context, host string, step wire.Step) (wire.StepResult, error) {
	key := host + "/" + step.Phase
	d.mu.Lock()
	d.calls = append(d.calls, key)
	d.steps = append(d.steps, step)
	o := d.outcomes[key]
	sent := d.sent
	d.mu.Unlock()
	if sent != nil {
		sent <- key
	}
	// The step is handed over: like the hub, keep waiting through a halt
	// (cancellation) but not past the deadline.
	wctx := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(wctx, dl)
		defer cancel()
	}
	ctx = wctx
	if o.hang {
		<-ctx.Done()
		return wire.StepResult{}, ctx.Err()
	}
	if o.release != nil {
		select {
		case <-o.release:
		case <-ctx.Done():
			return wire.StepResult{}, ctx.Err()
		}
	}
	if o.err != nil {
		return wire.StepResult{}, o.err
	}
	return wire.StepResult{StepID: step.StepID, ExitCode: o.exit, Output: o.output, TimedOut: o.timedOut}, nil
}

func (d *fakeDispatcher) called() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}

// deadStore wraps a Store; once dead, every transaction fails, as writes
// from a killed process never arrive.
type deadStore struct {
	exec.Store
	dead atomic.Bool
}

func (s *deadStore) InTx(ctx context.Context, fn func(exec.Tx) error) error {
	if s.dead.Load() {
		return errDead
	}
	return s.Store.InTx(ctx, fn)
}

// hookStore calls after once, right after the transaction that first
// records host as dispatched commits: the moment between the record and
// the send.
type hookStore struct {
	exec.Store
	host  string
	after func()
	once  sync.Once
}

type spyTx struct {
	exec.Tx
	hit *bool
	s   *hookStore
}

func (t spyTx) InsertExecStep(ctx context.Context, r exec.StepRecord) error {
	if r.HostID == t.s.host && r.State == ops.StepDispatched {
		*t.hit = true
	}
	return t.Tx.InsertExecStep(ctx, r)
}

func (s *hookStore) InTx(ctx context.Context, fn func(exec.Tx) error) error {
	hit := false
	err := s.Store.InTx(ctx, func(tx exec.Tx) error { return fn(spyTx{tx, &hit, s}) })
	if err == nil && hit {
		s.once.Do(s.after)
	}
	return err
}
