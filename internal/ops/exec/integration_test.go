package exec_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// With the real ops.Manager (planner, approvals, guardrails, operations
// table) on the real store: what the app wires.

var (
	opsAdmin    = wire.Principal{Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}}
	opsOperator = wire.Principal{Kind: "person", ID: "p_op1", Name: "operator1", Roles: []string{"operator"}}
	opsApprover = wire.Principal{Kind: "person", ID: "p_ap1", Name: "approver1", Roles: []string{"approver"}}
)

// startedOp sets up the 2017 fleet (n hosts serving billing and index),
// runs remove-capacity count=2, approves it and starts it in ops: the op
// is running and nothing has been dispatched. advance moves ops' clock.
func startedOp(t *testing.T, db *store.DB, n int) (m *ops.Manager, op ops.Operation, advance func(time.Duration)) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance = func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	pol, err := policy.NewEngine(policy.EngineConfig{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	m, err = ops.New(ops.Config{Store: db.OpsStore(), Policy: pol, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tok, err := m.CreateJoinToken(ctx, opsAdmin, []string{"billing", "index"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id, _, _, err := m.EnrollHost(ctx, tok.Reveal(), fmt.Sprintf("host%02d", i+1), "")
		if err != nil {
			t.Fatal(err)
		}
		if err := m.RecordHeartbeat(ctx, id, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []ops.Service{
		{Name: "billing", MinHealthy: ops.Threshold{Percent: 50, IsPercent: true}, MaxPerOperation: ops.Threshold{Percent: 10, IsPercent: true}},
		{Name: "index", MinHealthy: ops.Threshold{Percent: 80, IsPercent: true}},
	} {
		if err := m.SetService(ctx, opsAdmin, s); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile("../../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyRunbook(ctx, opsAdmin, src); err != nil {
		t.Fatal(err)
	}
	op, _, err = m.Run(ctx, ops.RunRequest{Runbook: "remove-capacity", Params: map[string]string{"service": "billing", "count": "2"},
		Reason: "INC-1", Requester: opsOperator})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Approve(ctx, op.ID, opsApprover, op.Plan.Hash); err != nil {
		t.Fatal(err)
	}
	op, err = m.Start(ctx, op.ID, opsApprover)
	if err != nil {
		t.Fatal(err)
	}
	return m, op, advance
}

// finished waits (at most 30 s) until opID is in a terminal state and
// every run of eng has ended, and returns its progress.
func finished(t *testing.T, eng *exec.Engine, opID string) exec.Progress {
	t.Helper()
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := eng.Progress(wctx, opID)
	for err == nil && !p.Terminal() {
		p, err = eng.Wait(wctx, opID, p.Version)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Drain(wctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func count(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWithOpsManager(t *testing.T) {
	if testing.Short() {
		t.Skip("bakes for a second per wave")
	}
	db := storetest.OpenSQLite(t)
	m, op, _ := startedOp(t, db, 20)
	d := newDispatcher()
	eng, err := exec.New(exec.Config{Store: db.ExecStore(), Ops: m, Guard: m, Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Start(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	if p := finished(t, eng, op.ID); p.State != ops.OpSucceeded {
		t.Fatalf("state = %s (%s), want succeeded", p.State, p.Detail)
	}
	var targets []string
	for _, w := range op.Plan.Waves {
		targets = append(targets, w.Hosts...)
	}
	if len(op.Plan.Waves) != 2 || len(targets) != 2 {
		t.Fatalf("plan waves = %+v, want a canary and one more host", op.Plan.Waves)
	}
	hosts, err := m.ListHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if want := !slices.Contains(targets, h.ID); h.InService != want {
			t.Errorf("host %s in service = %v, want %v", h.ID, h.InService, want)
		}
	}
	kinds := auditKinds(t, db)
	for kind, want := range map[string]int{"dispatched": 4, "results": 4, "op.succeeded": 1, "host.removed_from_service": 2} {
		if got := kinds[kind]; got != want {
			t.Errorf("audit %s = %d, want %d", kind, got, want)
		}
	}
}

func TestRecoverWithOpsManager(t *testing.T) {
	db := storetest.OpenSQLite(t)
	m, op, _ := startedOp(t, db, 20)
	canary := op.Plan.Waves[0].Hosts[0]
	hold := make(chan struct{})
	defer close(hold)
	d1 := newDispatcher().set(canary+"/run", outcome{release: hold})
	d1.sent = make(chan string, 1)
	dead := &deadStore{Store: db.ExecStore()}
	first, err := exec.New(exec.Config{Store: dead, Ops: m, Guard: m, Dispatcher: d1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Shutdown(context.Background()) }) // after hold is closed, before the DB closes
	ctx := context.Background()
	if err := first.Start(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	<-d1.sent
	dead.dead.Store(true) // the server dies with the canary in flight

	second, err := exec.New(exec.Config{Store: db.ExecStore(), Ops: m, Guard: m, Dispatcher: newDispatcher()})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ops.OpAttention {
		t.Errorf("state = %s, want needs_attention", got.State)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM audit_entries WHERE kind = 'op.needs_attention'`); n != 1 {
		t.Errorf("op.needs_attention entries = %d, want 1", n)
	}
	if err := second.Abort(ctx, op.ID, "person:p_ap1", "canary host is gone"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get(ctx, op.ID); got.State != ops.OpAborted {
		t.Errorf("state after Abort = %s, want aborted", got.State)
	}
}

// haltedOp starts the 2017 operation with the real Manager and halts it
// while its canary runs; it returns once the canary has finished and the
// operation is halted with its second host untouched.
func haltedOp(t *testing.T) (m *ops.Manager, op ops.Operation, advance func(time.Duration), eng *exec.Engine, d *fakeDispatcher, db *store.DB) {
	t.Helper()
	db = storetest.OpenSQLite(t)
	m, op, advance = startedOp(t, db, 20)
	canary := op.Plan.Waves[0].Hosts[0]
	hold := make(chan struct{})
	d = newDispatcher().set(canary+"/run", outcome{release: hold})
	d.sent = make(chan string, 10)
	eng, err := exec.New(exec.Config{Store: db.ExecStore(), Ops: m, Guard: m, Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Shutdown(context.Background()) })
	ctx := context.Background()
	if err := eng.Start(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	<-d.sent
	if err := eng.Halt(ctx, op.ID, "person:p_ap1", "graphs look odd"); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if err := eng.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return m, op, advance, eng, d, db
}

// TestResumeRechecksWithOpsManager: a halted operation resumes only while
// its approvals are valid and the hosts it has not reached can still be
// targeted; a refusal leaves it halted.
func TestResumeRechecksWithOpsManager(t *testing.T) {
	m, op, advance, eng, d, db := haltedOp(t)
	rest := op.Plan.Waves[1].Hosts[0]
	ctx := context.Background()
	resume := func(code, says string) {
		t.Helper()
		err := eng.Resume(ctx, op.ID, "person:p_ap1")
		if ue, ok := usererr.As(err); !ok || ue.Code != code || !strings.Contains(ue.Msg, says) {
			t.Errorf("Resume = %v, want %s saying %q", err, code, says)
		}
		if got, _ := m.Get(ctx, op.ID); got.State != ops.OpHalted {
			t.Errorf("state after a refused resume = %s, want halted", got.State)
		}
	}
	if err := m.RecordHeartbeat(ctx, rest, false); err != nil {
		t.Fatal(err)
	}
	resume("plan_drifted", "unhealthy")
	if err := m.RecordHeartbeat(ctx, rest, true); err != nil {
		t.Fatal(err)
	}
	advance(2 * time.Hour)
	resume("approvals_expired", "0 of the 1 approvals")
	if got := d.called(); len(got) != 1 {
		t.Errorf("dispatches = %v, want only the canary's", got)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM audit_entries WHERE kind = 'op.resumed'`); n != 0 {
		t.Errorf("op.resumed entries = %d, want 0", n)
	}
}

// TestResumeWithOpsManager: within its approvals' lifetime, with its
// untouched host still targetable (its own hold on its hosts does not
// count against it), a halted operation resumes and finishes.
func TestResumeWithOpsManager(t *testing.T) {
	m, op, _, eng, d, _ := haltedOp(t)
	ctx := context.Background()
	if err := eng.Resume(ctx, op.ID, "person:p_ap1"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if p := finished(t, eng, op.ID); p.State != ops.OpSucceeded {
		t.Fatalf("state after resume = %s (%s), want succeeded", p.State, p.Detail)
	}
	rest := op.Plan.Waves[1].Hosts[0]
	if !slices.Contains(d.called(), rest+"/run") {
		t.Errorf("dispatches = %v, want %s/run after the resume", d.called(), rest)
	}
	if got, _ := m.Get(ctx, op.ID); got.State != ops.OpSucceeded {
		t.Errorf("stored state = %s", got.State)
	}
}

// TestAbortedRemovalKeepsDrainedHostsOut: a capacity-removing operation
// takes each host out of service before its step leaves, so an operation
// halted and aborted midway does not hand the drained canary back to the
// floors as capacity; the host it never reached stays in service.
func TestAbortedRemovalKeepsDrainedHostsOut(t *testing.T) {
	m, op, _, eng, _, db := haltedOp(t)
	canary, rest := op.Plan.Waves[0].Hosts[0], op.Plan.Waves[1].Hosts[0]
	ctx := context.Background()
	if err := eng.Abort(ctx, op.ID, "person:p_ap1", "not today"); err != nil {
		t.Fatal(err)
	}
	hosts, err := m.ListHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		switch h.ID {
		case canary:
			if h.InService {
				t.Errorf("the drained canary %s is back in service after the abort", h.Name)
			}
		case rest:
			if !h.InService {
				t.Errorf("%s, never reached, is out of service", h.Name)
			}
		}
	}
	if n := count(t, db, `SELECT COUNT(*) FROM audit_entries WHERE kind = 'host.removed_from_service'`); n != 1 {
		t.Errorf("%d host.removed_from_service entries, want 1 (the canary)", n)
	}
	// A person checks the canary and returns it.
	h, err := m.ReturnHost(ctx, opsAdmin, canary, "drain undone by hand, INC-1")
	if err != nil || !h.InService {
		t.Fatalf("ReturnHost = %+v, %v", h, err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM audit_entries WHERE kind = 'host.returned_to_service'`); n != 1 {
		t.Errorf("%d host.returned_to_service entries, want 1", n)
	}
}
