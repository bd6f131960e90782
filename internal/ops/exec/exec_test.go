package exec_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

// plan returns a plan whose waves hold the given hosts (wave 1 first).
func plan(waves ...[]string) ops.Plan {
	p := ops.Plan{
		Runbook:     "remove-capacity",
		Step:        ops.Command{Argv: []string{"svc", "drain"}, TimeoutSeconds: 60, MaxOutputBytes: 4096},
		Concurrency: 2,
		HaltAfter:   0,
	}
	for i, hs := range waves {
		p.Waves = append(p.Waves, ops.Wave{Number: i + 1, Hosts: hs})
	}
	return p
}

func operation(p ops.Plan) ops.Operation {
	p.Hash = ops.HashPlan(p)
	return ops.Operation{ID: "op1", Plan: p, State: ops.OpRunning, RequesterID: "p1", CreatedAt: t0}
}

type rig struct {
	poll time.Duration // Config.PollInterval; 0 means 20 ms
	db   *store.DB
	ops  *fakeOps
	g    *fakeGuard
	d    *fakeDispatcher
	eng  *exec.Engine
	stor exec.Store
}

func newRig(t testing.TB, db *store.DB, o *fakeOps, d *fakeDispatcher) *rig {
	t.Helper()
	r := &rig{db: db, ops: o, g: &fakeGuard{fail: map[int]string{}}, d: d, stor: db.ExecStore()}
	r.eng = r.engine(t, r.stor)
	return r
}

func (r *rig) engine(t testing.TB, st exec.Store) *exec.Engine {
	t.Helper()
	poll := r.poll
	if poll == 0 {
		poll = 20 * time.Millisecond
	}
	eng, err := exec.New(exec.Config{Store: st, Ops: r.ops, Guard: r.g, Dispatcher: r.d,
		Now: func() time.Time { return t0 }, PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.Shutdown(ctx)
	})
	return eng
}

// finish waits until the op is in a terminal state and every run of eng
// has ended (including in-flight steps) and returns the progress.
func (r *rig) finish(t testing.TB) exec.Progress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		p, err := r.eng.Wait(ctx, "op1", -1)
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if p.Terminal() {
			if err := r.eng.Drain(ctx); err != nil {
				t.Fatalf("Drain: %v", err)
			}
			p, err := r.eng.Progress(ctx, "op1")
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		if _, err := r.eng.Wait(ctx, "op1", p.Version); err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
}

// states returns "host/phase=state" for every record.
func (r *rig) records(t *testing.T) map[string]ops.StepState {
	t.Helper()
	steps, err := r.stor.ExecSteps(context.Background(), "op1")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ops.StepState{}
	for _, s := range steps {
		out[s.HostID+"/"+s.Phase] = s.State
	}
	return out
}

// auditKinds counts the audit entries by kind, and the host records they
// state (exec.LoggedSteps) as "dispatched" and "results".
func (r *rig) auditKinds(t *testing.T) map[string]int {
	t.Helper()
	return auditKinds(t, r.db)
}

func auditKinds(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT kind, data FROM audit_entries`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var data []byte
		if err := rows.Scan(&k, &data); err != nil {
			t.Fatal(err)
		}
		out[k]++
		steps, err := exec.LoggedSteps(k, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if s.Result {
				out["results"]++
			} else {
				out["dispatched"]++
			}
		}
	}
	return out
}

func start(t testing.TB, r *rig) {
	t.Helper()
	if err := r.eng.Start(context.Background(), "op1"); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func TestHappyPathCanaryThenWaves(t *testing.T) {
	p := plan([]string{"h1"}, []string{"h2", "h3"}, []string{"h4", "h5"})
	p.HealthCheck = &ops.Command{Argv: []string{"svc", "health"}, TimeoutSeconds: 10}
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), newDispatcher())
	start(t, r)
	got := r.finish(t)

	if got.State != ops.OpSucceeded || got.CurrentWave != 3 {
		t.Errorf("state, wave = %s, %d; want succeeded, 3 (detail %q)", got.State, got.CurrentWave, got.Detail)
	}
	want := map[string]ops.StepState{}
	for _, h := range []string{"h1", "h2", "h3", "h4", "h5"} {
		want[h+"/run"], want[h+"/health"] = ops.StepSucceeded, ops.StepSucceeded
	}
	if diff := cmp.Diff(want, r.records(t)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	// Waves run in order: every step of wave n (and its health checks)
	// before any of wave n+1; the canary alone first.
	waveOf := map[string]int{"h1": 1, "h2": 2, "h3": 2, "h4": 3, "h5": 3}
	calls := r.d.called()
	if len(calls) != 10 || calls[0] != "h1/run" || calls[1] != "h1/health" {
		t.Fatalf("dispatches = %v, want the canary's run and health first, 10 in all", calls)
	}
	for i := 1; i < len(calls); i++ {
		if waveOf[strings.Split(calls[i], "/")[0]] < waveOf[strings.Split(calls[i-1], "/")[0]] {
			t.Errorf("dispatch order %v goes back a wave at %d", calls, i)
		}
	}
	if diff := cmp.Diff([]int{1, 2, 3}, r.g.waves()); diff != "" {
		t.Errorf("guard checks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]ops.OpState{ops.OpSucceeded}, r.ops.states()); diff != "" {
		t.Errorf("op transitions (-want +got):\n%s", diff)
	}
	kinds := r.auditKinds(t)
	if kinds["dispatched"] != 10 || kinds["results"] != 10 || kinds["op.step_dispatched"]+kinds["op.step_result"] != 0 {
		t.Errorf("audit kinds = %v, want 10 hosts dispatched and 10 results, in batch entries", kinds)
	}
	ids := map[string]bool{}
	for _, s := range r.d.steps {
		if s.OpID != "op1" || ids[s.StepID] || !strings.HasPrefix(s.StepID, "stp_") {
			t.Errorf("step %+v: wrong op or repeated step ID", s)
		}
		ids[s.StepID] = true
	}
	if len(got.Waves) != 3 || len(got.Waves[1].Hosts) != 2 || got.Waves[1].Hosts[0].HostID != "h2" || got.Waves[1].Hosts[0].ExitCode != 0 {
		t.Errorf("progress waves = %+v", got.Waves)
	}
}

func TestThresholdHaltsCountingUnreachableAndTimedOut(t *testing.T) {
	for _, tt := range []struct {
		name     string
		bad      map[string]outcome
		wantHalt bool
	}{
		{"unreachable and exit 1 exceed 1", map[string]outcome{"h2/run": {err: errors.New("no connection")}, "h3/run": {exit: 1}}, true},
		{"unreachable and agent timeout exceed 1", map[string]outcome{"h2/run": {err: errors.New("no connection")}, "h3/run": {timedOut: true, exit: -1}}, true},
		{"one failure is within 1", map[string]outcome{"h3/run": {err: errors.New("no connection")}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := plan([]string{"h1"}, []string{"h2", "h3", "h4", "h5"}, []string{"h6"})
			p.Concurrency, p.HaltAfter = 1, 1
			d := newDispatcher()
			for k, o := range tt.bad {
				d.set(k, o)
			}
			r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
			start(t, r)
			got := r.finish(t)
			if !tt.wantHalt {
				if got.State != ops.OpSucceeded || len(r.d.called()) != 6 {
					t.Errorf("state %s after %v, want succeeded with all 6 hosts", got.State, r.d.called())
				}
				return
			}
			if got.State != ops.OpHalted {
				t.Fatalf("state = %s, want halted", got.State)
			}
			if diff := cmp.Diff([]string{"h1/run", "h2/run", "h3/run"}, r.d.called()); diff != "" {
				t.Errorf("dispatches (-want +got):\n%s", diff)
			}
			for _, w := range []string{"wave 2", "h2, h3", "more than the 1"} {
				if !strings.Contains(got.Detail, w) {
					t.Errorf("detail %q does not say %q", got.Detail, w)
				}
			}
			if s := got.Waves[1].Hosts[3].State; s != ops.StepPending {
				t.Errorf("h5 = %s, want pending (never dispatched)", s)
			}
		})
	}
}

// TestFailedCanaryHaltsWhateverTheThreshold: later waves may allow a
// failure, the canary does not.
func TestFailedCanaryHaltsWhateverTheThreshold(t *testing.T) {
	p := plan([]string{"h1"}, []string{"h2", "h3"})
	p.HaltAfter = 1
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), newDispatcher().set("h1/run", outcome{exit: 1}))
	start(t, r)
	got := r.finish(t)
	if got.State != ops.OpHalted || !strings.Contains(got.Detail, "canary") {
		t.Fatalf("state %s (%s), want halted by the canary", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h1/run"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}

func TestDispatchTimeoutCountsAsFailure(t *testing.T) {
	p := plan([]string{"h1"})
	p.Step.TimeoutSeconds = 0
	d := newDispatcher().set("h1/run", outcome{hang: true})
	o := newFakeOps(operation(p))
	r := &rig{db: storetest.OpenSQLite(t), ops: o, g: &fakeGuard{}, d: d}
	r.stor = r.db.ExecStore()
	eng, err := exec.New(exec.Config{Store: r.stor, Ops: o, Guard: r.g, Dispatcher: d,
		DefaultTimeout: time.Millisecond, Grace: time.Millisecond, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
	start(t, r)
	got := r.finish(t)
	if got.State != ops.OpHalted || got.Waves[0].Hosts[0].State != ops.StepFailed || !strings.Contains(got.Waves[0].Hosts[0].Error, "timed out") {
		t.Errorf("progress = %+v, want halted with h1 failed: timed out", got)
	}
}

func TestHealthCheckFailureHalts(t *testing.T) {
	p := plan([]string{"h1"}, []string{"h2"})
	p.HealthCheck = &ops.Command{Argv: []string{"svc", "health"}}
	d := newDispatcher().set("h1/health", outcome{exit: 2, output: "503"})
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
	start(t, r)
	got := r.finish(t)
	if got.State != ops.OpHalted || !strings.Contains(got.Detail, "health check failed on 1 host(s): h1") {
		t.Errorf("state %s, detail %q; want halted by h1's health check", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h1/run", "h1/health"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}

// TestHealthFailuresCountAgainstTheAllowance: a failed health check counts
// like a failed step: a resume past the allowance is refused, and a resume
// within it ends with the sick host named.
func TestHealthFailuresCountAgainstTheAllowance(t *testing.T) {
	for _, allowed := range []int{0, 1} {
		t.Run(fmt.Sprint("allowed=", allowed), func(t *testing.T) {
			p := plan([]string{"h1"}, []string{"h2"})
			p.HealthCheck = &ops.Command{Argv: []string{"svc", "health"}}
			p.HaltAfter = allowed
			d := newDispatcher().set("h1/health", outcome{exit: 2, output: "503"})
			r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
			start(t, r)
			if got := r.finish(t); got.State != ops.OpHalted {
				t.Fatalf("state %s, want halted by h1's health check", got.State)
			}
			err := r.eng.Resume(context.Background(), "op1", "person:p3")
			if allowed == 0 {
				if !isKind(err, usererr.Conflict) || !strings.Contains(err.Error(), "h1") {
					t.Errorf("Resume with a sick host and no allowance = %v, want a Conflict naming h1", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resume within the allowance: %v", err)
			}
			if got := r.finish(t); got.State != ops.OpSucceeded || !strings.Contains(got.Detail, "h1") {
				t.Errorf("after resume: %s (%q), want succeeded naming h1", got.State, got.Detail)
			}
		})
	}
}

func TestGuardFailureHaltsBeforeNextWave(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fail  map[int]string
		err   error
		want  string
		calls []string
	}{
		{"failing verdict", map[int]string{2: "index would keep 15 of 20 healthy hosts, below its floor of 16 (80%)."}, nil,
			"Halted before wave 2: index would keep 15 of 20", []string{"h1/run"}},
		{"guard cannot check", nil, errors.New("inventory unavailable"),
			"Halted before wave 1: the guardrails could not be re-checked", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := plan([]string{"h1"}, []string{"h2", "h3"})
			r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), newDispatcher())
			r.g.fail, r.g.err = tt.fail, tt.err
			start(t, r)
			got := r.finish(t)
			if got.State != ops.OpHalted || !strings.Contains(got.Detail, tt.want) {
				t.Errorf("state %s, detail %q; want halted with %q", got.State, got.Detail, tt.want)
			}
			if diff := cmp.Diff(tt.calls, r.d.called()); diff != "" {
				t.Errorf("dispatches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRollbackRunsOnHaltedWaveHosts(t *testing.T) {
	p := plan([]string{"h1"}, []string{"h2", "h3"}, []string{"h4"})
	p.Rollback = &ops.Command{Argv: []string{"svc", "undrain"}}
	p.Concurrency = 1 // h2 succeeds before h3 fails
	d := newDispatcher().set("h3/run", outcome{exit: 1})
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
	start(t, r)
	got := r.finish(t)
	if got.State != ops.OpHalted || !strings.Contains(got.Detail, "Rolled back 2 host(s).") {
		t.Errorf("state %s, detail %q; want halted and rolled back", got.State, got.Detail)
	}
	want := map[string]ops.StepState{
		"h1/run": ops.StepSucceeded, "h2/run": ops.StepSucceeded, "h3/run": ops.StepFailed,
		"h2/rollback": ops.StepSucceeded, "h3/rollback": ops.StepSucceeded,
	}
	if diff := cmp.Diff(want, r.records(t)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if h := got.Waves[1].Hosts[0]; h.Rollback != ops.StepSucceeded {
		t.Errorf("progress of h2 = %+v, want rollback succeeded", h)
	}
}

// startWithH2InFlight starts h1, then h2 | h3, h4 one at a time, and
// returns once h2's run is sent and held until release is closed.
func startWithH2InFlight(t *testing.T) (r *rig, release chan struct{}) {
	t.Helper()
	p := plan([]string{"h1"}, []string{"h2", "h3", "h4"})
	p.Concurrency = 1
	release = make(chan struct{})
	d := newDispatcher().set("h2/run", outcome{release: release})
	d.sent = make(chan string, 10)
	r = newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
	start(t, r)
	for k := range d.sent {
		if k == "h2/run" {
			break // h2 is in flight, h3 waits for the slot
		}
	}
	return r, release
}

func TestHaltStopsNewDispatches(t *testing.T) {
	r, release := startWithH2InFlight(t)
	ctx := context.Background()
	if err := r.eng.Halt(ctx, "op1", "person:p2", ""); !isKind(err, usererr.Invalid) {
		t.Errorf("Halt without a reason = %v, want Invalid", err)
	}
	if err := r.eng.Halt(ctx, "op1", "person:p2", "INC-7 looks worse"); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	// Halt has returned: from now on nothing new may leave, even though a
	// slot frees up when h2 finishes.
	close(release)
	got := r.finish(t)
	if diff := cmp.Diff([]string{"h1/run", "h2/run"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
	if got.State != ops.OpHalted || got.Waves[1].Hosts[0].State != ops.StepSucceeded {
		t.Errorf("progress = %+v, want halted with h2's result still recorded", got)
	}
	if tr := r.ops.transitions; len(tr) != 1 || tr[0].Actor != "person:p2" || strings.Contains(tr[0].Detail, "INC-7") {
		t.Errorf("transitions = %+v, want one halt by person:p2, its reason kept out of the public detail", tr)
	}
	var personal string
	if err := r.db.QueryRow(ctx, `SELECT personal FROM audit_entries WHERE kind = 'op.halt_reason'`).Scan(&personal); err != nil || !strings.Contains(personal, "INC-7") {
		t.Errorf("op.halt_reason personal data = %q, %v; want the reason", personal, err)
	}
	if err := r.eng.Halt(ctx, "op1", "person:p2", "again"); !isKind(err, usererr.Conflict) {
		t.Errorf("second Halt = %v, want Conflict", err)
	}
}

func TestResumeAsksTheGuardAboutUntouchedHosts(t *testing.T) {
	r, release := startWithH2InFlight(t)
	ctx := context.Background()
	if err := r.eng.Halt(ctx, "op1", "person:p2", "look first"); err != nil {
		t.Fatal(err)
	}
	close(release)
	r.finish(t)
	r.g.resumeErr = usererr.New(usererr.Conflict, "approvals_expired", "Operation op1 cannot resume: approvals expired.")
	if err := r.eng.Resume(ctx, "op1", "person:p3"); !isKind(err, usererr.Conflict) {
		t.Fatalf("Resume refused by the guard = %v, want its Conflict", err)
	}
	if got, _ := r.ops.Get(ctx, "op1"); got.State != ops.OpHalted {
		t.Errorf("state after a refused resume = %s, want halted", got.State)
	}
	if diff := cmp.Diff([][]string{{"h3", "h4"}}, r.g.resumes); diff != "" {
		t.Errorf("hosts the guard was asked about (-want +got):\n%s", diff)
	}
	r.g.resumeErr = nil
	if err := r.eng.Resume(ctx, "op1", "person:p3"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if got := r.finish(t); got.State != ops.OpSucceeded {
		t.Errorf("state after resume = %s (%s), want succeeded", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h1/run", "h2/run", "h3/run", "h4/run"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}

func TestNothingDispatchedUnlessRunning(t *testing.T) {
	for _, s := range []ops.OpState{ops.OpPending, ops.OpHalted, ops.OpAttention, ops.OpAborted, ops.OpDenied, ops.OpVoid} {
		t.Run(string(s), func(t *testing.T) {
			op := operation(plan([]string{"h1"}))
			op.State = s
			r := newRig(t, storetest.OpenSQLite(t), newFakeOps(op), newDispatcher())
			if err := r.eng.Start(context.Background(), "op1"); !isKind(err, usererr.Conflict) {
				t.Errorf("Start = %v, want Conflict", err)
			}
			r.eng.Shutdown(context.Background())
			if c := r.d.called(); len(c) != 0 {
				t.Errorf("dispatched %v for an op in state %s", c, s)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		waves [][]string
	}{
		{"halted elsewhere between waves", [][]string{{"h1"}, {"h2"}}},
		{"halted elsewhere within a wave", [][]string{{"h1", "h2"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := plan(tt.waves...)
			p.Concurrency = 1
			release := make(chan struct{})
			d := newDispatcher().set("h1/run", outcome{release: release})
			d.sent = make(chan string, 10)
			o := newFakeOps(operation(p))
			// Only the re-read before each dispatch can notice in time.
			r := &rig{poll: time.Hour, db: storetest.OpenSQLite(t), ops: o, g: &fakeGuard{}, d: d}
			r.stor = r.db.ExecStore()
			r.eng = r.engine(t, r.stor)
			start(t, r)
			<-d.sent
			o.force("op1", ops.OpHalted) // another server's kill switch
			close(release)
			r.finish(t)
			if diff := cmp.Diff([]string{"h1/run"}, r.d.called()); diff != "" {
				t.Errorf("dispatches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrashRecoverResume(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{
		{"sqlite", storetest.OpenSQLite},
		{"postgres", storetest.OpenPostgres},
	} {
		t.Run(tt.name, func(t *testing.T) { testCrashRecoverResume(t, tt.open(t)) })
	}
}

func testCrashRecoverResume(t *testing.T, db *store.DB) {
	p := plan([]string{"h1"}, []string{"h2", "h3"}, []string{"h4", "h5"})
	p.HaltAfter = 2
	o := newFakeOps(operation(p))

	// First process: h2 and h3 are sent and never answer before it dies.
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
	inflight := map[string]bool{}
	for k := range d1.sent {
		if inflight[k] = true; inflight["h2/run"] && inflight["h3/run"] {
			break
		}
	}
	dead.dead.Store(true) // SIGKILL: nothing more from this process reaches the database

	// Second process on the same database.
	d2 := newDispatcher()
	r := newRig(t, db, o, d2)
	ctx := context.Background()
	if err := r.eng.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	got, err := r.eng.Progress(ctx, "op1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ops.OpAttention || !strings.Contains(got.Detail, "h2 (run), h3 (run)") {
		t.Errorf("after Recover: state %s, detail %q; want needs_attention naming h2 and h3", got.State, got.Detail)
	}
	want := map[string]ops.StepState{"h1/run": ops.StepSucceeded, "h2/run": ops.StepUnknown, "h3/run": ops.StepUnknown}
	if diff := cmp.Diff(want, r.records(t)); diff != "" {
		t.Errorf("records after Recover (-want +got):\n%s", diff)
	}
	if c := d2.called(); len(c) != 0 {
		t.Errorf("Recover dispatched %v", c)
	}

	if err := r.eng.Resume(ctx, "op1", "person:p3"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got = r.finish(t)
	if diff := cmp.Diff([]string{"h4/run", "h5/run"}, sorted(d2.called())); diff != "" {
		t.Errorf("dispatches after Resume (-want +got) — h2 and h3 must never be sent again:\n%s", diff)
	}
	if got.State != ops.OpSucceeded {
		t.Errorf("state = %s (%s), want succeeded: 2 unknown hosts are within the 2 allowed", got.State, got.Detail)
	}
	if kinds := r.auditKinds(t); kinds["op.step_unknown"] != 2 {
		t.Errorf("audit kinds = %v, want 2 op.step_unknown", kinds)
	}
}

func TestResumeCountsUnknownUntilMarked(t *testing.T) {
	db := storetest.OpenSQLite(t)
	p := plan([]string{"h1"}, []string{"h2", "h3"})
	p.HaltAfter = 0
	op := operation(p)
	op.State = ops.OpAttention
	o := newFakeOps(op)
	r := newRig(t, db, o, newDispatcher())
	ctx := context.Background()
	st := db.ExecStore()
	// h1 was in flight at a crash and is now unknown.
	err := st.InTx(ctx, func(tx exec.Tx) error {
		return tx.InsertExecStep(ctx, exec.StepRecord{OpID: "op1", HostID: "h1", Phase: exec.PhaseRun, Wave: 1,
			StepID: exec.StepID("op1", "h1", exec.PhaseRun), State: ops.StepUnknown, ExitCode: -1, DispatchedAt: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); !isKind(err, usererr.Conflict) || !strings.Contains(err.Error(), "h1") {
		t.Fatalf("Resume with an unknown host over the threshold = %v, want Conflict naming h1", err)
	}
	if err := r.eng.MarkStep(ctx, "op1", "h1", exec.PhaseRun, ops.StepSucceeded, "person:p3", "checked: drained"); err != nil {
		t.Fatalf("MarkStep: %v", err)
	}
	if err := r.eng.MarkStep(ctx, "op1", "h1", exec.PhaseRun, ops.StepFailed, "person:p3", "again"); !isKind(err, usererr.Conflict) {
		t.Errorf("second MarkStep = %v, want Conflict", err)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); err != nil {
		t.Fatalf("Resume after marking: %v", err)
	}
	got := r.finish(t)
	if got.State != ops.OpSucceeded {
		t.Errorf("state = %s (%s), want succeeded", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h2/run", "h3/run"}, sorted(r.d.called())); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}

func TestResumeRefusesUnknownHealthCheck(t *testing.T) {
	db := storetest.OpenSQLite(t)
	p := plan([]string{"h1"}, []string{"h2"})
	p.HealthCheck = &ops.Command{Argv: []string{"svc", "health"}}
	p.HaltAfter = 5
	op := operation(p)
	op.State = ops.OpAttention
	r := newRig(t, db, newFakeOps(op), newDispatcher())
	ctx := context.Background()
	err := r.stor.InTx(ctx, func(tx exec.Tx) error {
		for _, s := range []exec.StepRecord{
			{OpID: "op1", HostID: "h1", Phase: exec.PhaseRun, Wave: 1, StepID: "stp_a", State: ops.StepSucceeded, DispatchedAt: t0},
			{OpID: "op1", HostID: "h1", Phase: exec.PhaseHealth, Wave: 1, StepID: "stp_b", State: ops.StepUnknown, ExitCode: -1, DispatchedAt: t0},
		} {
			if err := tx.InsertExecStep(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); !isKind(err, usererr.Conflict) || !strings.Contains(err.Error(), "h1") {
		t.Fatalf("Resume with an unknown health check = %v, want Conflict naming h1", err)
	}
	if err := r.eng.MarkStep(ctx, "op1", "h1", exec.PhaseHealth, ops.StepSucceeded, "person:p3", "curl is 200"); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); err != nil {
		t.Fatalf("Resume after marking: %v", err)
	}
	if got := r.finish(t); got.State != ops.OpSucceeded {
		t.Errorf("state = %s (%s), want succeeded", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h2/run", "h2/health"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}

func TestExistingRecordIsNeverDispatchedAgain(t *testing.T) {
	// Another server (or a bug) already recorded h2: the engine must skip
	// it — the unique constraint is the last line of invariant 4.
	db := storetest.OpenSQLite(t)
	p := plan([]string{"h1"}, []string{"h2", "h3"})
	r := newRig(t, db, newFakeOps(operation(p)), newDispatcher())
	ctx := context.Background()
	err := r.stor.InTx(ctx, func(tx exec.Tx) error {
		return tx.InsertExecStep(ctx, exec.StepRecord{OpID: "op1", HostID: "h2", Phase: exec.PhaseRun, Wave: 2,
			StepID: exec.StepID("op1", "h2", exec.PhaseRun), State: ops.StepSucceeded, ExitCode: 0, DispatchedAt: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	r.finish(t)
	if diff := cmp.Diff([]string{"h1/run", "h3/run"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
}

func TestAbort(t *testing.T) {
	op := operation(plan([]string{"h1"}))
	op.State = ops.OpAttention
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(op), newDispatcher())
	ctx := context.Background()
	if err := r.eng.Abort(ctx, "op1", "person:p3", "wrong runbook"); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.Resume(ctx, "op1", "person:p3"); !isKind(err, usererr.Conflict) {
		t.Errorf("Resume after Abort = %v, want Conflict", err)
	}
	if diff := cmp.Diff([]ops.OpState{ops.OpAborted}, r.ops.states()); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
	if c := r.d.called(); len(c) != 0 {
		t.Errorf("dispatched %v", c)
	}
}

func TestWaitWakesOnChange(t *testing.T) {
	p := plan([]string{"h1"})
	release := make(chan struct{})
	d := newDispatcher().set("h1/run", outcome{release: release})
	d.sent = make(chan string, 1)
	r := newRig(t, storetest.OpenSQLite(t), newFakeOps(operation(p)), d)
	start(t, r)
	<-d.sent
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, err := r.eng.Progress(ctx, "op1")
	if err != nil {
		t.Fatal(err)
	}
	if before.Waves[0].Hosts[0].State != ops.StepDispatched {
		t.Fatalf("h1 = %s, want dispatched (recorded before the send)", before.Waves[0].Hosts[0].State)
	}
	done := make(chan exec.Progress)
	go func() {
		p, _ := r.eng.Wait(ctx, "op1", before.Version)
		done <- p
	}()
	close(release)
	after := <-done
	if after.Version <= before.Version {
		t.Errorf("Wait returned version %d, want > %d", after.Version, before.Version)
	}
	short, cancelShort := context.WithCancel(ctx)
	cancelShort()
	r.finish(t)
	final, err := r.eng.Progress(ctx, "op1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Wait(short, "op1", final.Version); err != nil {
		t.Errorf("Wait on a terminal op = %v, want an immediate answer", err)
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// The ops engineer's Manager is what the app hands the engine.
var (
	_ exec.Ops   = (*ops.Manager)(nil)
	_ exec.Guard = (*ops.Manager)(nil)
)

func isKind(err error, k usererr.Kind) bool {
	ue, ok := usererr.As(err)
	return ok && ue.Kind == k
}

type fakeSecrets map[string]string

func (f fakeSecrets) Resolve(ctx context.Context, op ops.Operation, ref string) (string, error) {
	v, ok := f[ref]
	if !ok {
		return "", errors.New("no such secret")
	}
	return v, nil
}

func TestSecretsResolvedAtDispatchAndRedacted(t *testing.T) {
	p := plan([]string{"h1"})
	p.Step.Argv = []string{"db", "--password-from-env"}
	p.Step.Env = map[string]string{"PARAM_USER": "app"}
	p.Step.SecretEnv = map[string]string{"PARAM_PASS": "secret:db/pass"}
	p.SecretRefs = []string{"secret:db/pass"}
	for _, tt := range []struct {
		name      string
		secrets   exec.SecretResolver
		wantState ops.StepState
		wantSent  bool
	}{
		{"resolved", fakeSecrets{"secret:db/pass": "hunter2-long"}, ops.StepSucceeded, true},
		{"no secret store", nil, ops.StepFailed, false},
		{"unknown secret", fakeSecrets{}, ops.StepFailed, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := storetest.OpenSQLite(t)
			// The agent is not trusted to redact: the output comes back with
			// the secret plain and base64-encoded.
			d := newDispatcher().set("h1/run", outcome{output: "connected with hunter2-long aHVudGVyMi1sb25n\n"})
			o := newFakeOps(operation(p))
			eng, err := exec.New(exec.Config{Store: db.ExecStore(), Ops: o, Guard: &fakeGuard{}, Dispatcher: d, Secrets: tt.secrets})
			if err != nil {
				t.Fatal(err)
			}
			r := &rig{db: db, ops: o, d: d, eng: eng, stor: db.ExecStore()}
			start(t, r)
			got := r.finish(t)
			h := got.Waves[0].Hosts[0]
			if h.State != tt.wantState || strings.Contains(h.Output, "hunter2") || strings.Contains(h.Error, "hunter2") || strings.Contains(h.Output, "aHVudGVy") {
				t.Errorf("h1 = %+v, want %s and no secret in what is stored", h, tt.wantState)
			}
			if sent := len(d.steps) == 1; sent != tt.wantSent {
				t.Fatalf("sent = %v, want %v", sent, tt.wantSent)
			}
			if tt.wantSent {
				s := d.steps[0]
				if diff := cmp.Diff([]string{"db", "--password-from-env"}, s.Argv); diff != "" {
					t.Errorf("argv (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(map[string]string{"PARAM_USER": "app", "PARAM_PASS": "hunter2-long"}, s.Env); diff != "" {
					t.Errorf("env (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"hunter2-long"}, s.Redact); diff != "" {
					t.Errorf("redact (-want +got):\n%s", diff)
				}
			}
			var n int
			if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_entries WHERE data LIKE '%hunter2%'`).Scan(&n); err != nil || n != 0 {
				t.Errorf("audit entries holding the secret = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestSecretOnTheCommandLineIsNeverSent: a plan from before secrets moved
// to the environment, or one that reads a secret its plan does not list,
// fails its step without contacting the agent.
func TestSecretOnTheCommandLineIsNeverSent(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(p *ops.Plan)
		want string
	}{
		{"placeholder in argv", func(p *ops.Plan) {
			p.Step.Argv = []string{"db", "--password={{secret:db/pass}}"}
			p.SecretRefs = []string{"secret:db/pass"}
		}, "puts a secret on the command line"},
		{"secret not in the plan's list", func(p *ops.Plan) {
			p.Step.SecretEnv = map[string]string{"PARAM_PASS": "secret:db/pass"}
		}, "does not list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := plan([]string{"h1"})
			tt.edit(&p)
			db := storetest.OpenSQLite(t)
			d := newDispatcher()
			o := newFakeOps(operation(p))
			eng, err := exec.New(exec.Config{Store: db.ExecStore(), Ops: o, Guard: &fakeGuard{}, Dispatcher: d, Secrets: fakeSecrets{"secret:db/pass": "hunter2-long"}})
			if err != nil {
				t.Fatal(err)
			}
			r := &rig{db: db, ops: o, d: d, eng: eng, stor: db.ExecStore()}
			start(t, r)
			h := r.finish(t).Waves[0].Hosts[0]
			if len(d.steps) != 0 || h.State != ops.StepFailed || !strings.Contains(h.Error, tt.want) {
				t.Errorf("sent %d, h1 = %+v; want nothing sent and a failure saying %q", len(d.steps), h, tt.want)
			}
		})
	}
}

func TestHaltBetweenRecordAndSendLeavesPending(t *testing.T) {
	db := storetest.OpenSQLite(t)
	p := plan([]string{"h1"}, []string{"h2", "h3"})
	p.Concurrency = 1
	o := newFakeOps(operation(p))
	r := &rig{db: db, ops: o, g: &fakeGuard{}, d: newDispatcher(), stor: db.ExecStore()}
	hs := &hookStore{Store: db.ExecStore(), host: "h2"}
	r.eng = r.engine(t, hs)
	hs.after = func() {
		if err := r.eng.Halt(context.Background(), "op1", "person:p2", "stop now"); err != nil {
			t.Errorf("Halt: %v", err)
		}
	}
	start(t, r)
	got := r.finish(t)
	if diff := cmp.Diff([]string{"h1/run"}, r.d.called()); diff != "" {
		t.Fatalf("dispatches before resume (-want +got):\n%s", diff)
	}
	if h := got.Waves[1].Hosts[0]; got.State != ops.OpHalted || h.State != ops.StepPending {
		t.Fatalf("state %s, h2 %+v; want halted with h2 back to pending (never sent)", got.State, h)
	}
	if err := r.eng.Resume(context.Background(), "op1", "person:p2"); err != nil {
		t.Fatal(err)
	}
	if got := r.finish(t); got.State != ops.OpSucceeded {
		t.Errorf("state after resume = %s (%s), want succeeded", got.State, got.Detail)
	}
	if diff := cmp.Diff([]string{"h1/run", "h2/run", "h3/run"}, r.d.called()); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
	if kinds := r.auditKinds(t); kinds["op.step_not_sent"] != 1 || kinds["dispatched"] != 4 {
		t.Errorf("audit kinds = %v, want 1 op.step_not_sent and 4 hosts dispatched (h2 twice)", kinds)
	}
}
