package ops_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// restartRunbook restarts hosts one wave at a time and removes no
// capacity, so one-at-a-time does not keep a second operation on billing
// away: only the planner's hold check stands between two operations and
// the same hosts. Low risk and read-only: the default policy needs no
// approval, so a run is ready (and holds its hosts) at once.
const restartRunbook = `
name: restart
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1, max: 100}
target: {service: service, count: count}
step:
  argv: ["systemctl", "restart", "{{service}}"]
waves: {size: 1, bake_s: 15}
`

func (e *env) applyRunbook(src string) {
	e.t.Helper()
	if _, err := e.m.ApplyRunbook(e.ctx, admin, []byte(src)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) restart(count string) (ops.Operation, error) {
	op, _, err := e.run(count, func(r *ops.RunRequest) { r.Runbook = "restart" })
	return op, err
}

// TestPlannerSkipsHeldHosts: while one operation holds hosts (ready,
// running or stopped part-way), another run's plan never includes them;
// it takes the next free hosts instead.
func TestPlannerSkipsHeldHosts(t *testing.T) {
	for _, tt := range []struct {
		name string
		// hold moves the first operation, ready after its run, to the
		// holding state under test.
		hold func(e *env, op ops.Operation)
	}{
		{name: "ready", hold: func(*env, ops.Operation) {}},
		{name: "running", hold: func(e *env, op ops.Operation) {
			if _, err := e.m.Start(e.ctx, op.ID, operator1); err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "halted", hold: func(e *env, op ops.Operation) {
			if _, err := e.m.Start(e.ctx, op.ID, operator1); err != nil {
				e.t.Fatal(err)
			}
			if err := e.m.SetState(e.ctx, op.ID, []ops.OpState{ops.OpRunning}, ops.OpHalted, "kill switch", "person:p_ap1"); err != nil {
				e.t.Fatal(err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 20)
			e.applyRunbook(restartRunbook)
			first, err := e.restart("2")
			if err != nil {
				t.Fatal(err)
			}
			if first.State != ops.OpReady {
				t.Fatalf("first op is %s, want ready (no approval needed)", first.State)
			}
			tt.hold(e, first)

			dry, err := e.m.Plan(e.ctx, ops.RunRequest{Runbook: "restart", Params: map[string]string{"service": "billing", "count": "2"}, Requester: operator1})
			if err != nil {
				t.Fatal(err)
			}
			second, err := e.restart("2")
			if err != nil {
				t.Fatal(err)
			}
			for what, hosts := range map[string][]string{"dry run": dry.Plan.Hosts(), "second op": second.Plan.Hosts()} {
				for _, h := range first.Plan.Hosts() {
					if slices.Contains(hosts, h) {
						t.Errorf("%s plans %v, including %s held by %s", what, hosts, h, first.ID)
					}
				}
				if len(hosts) != 2 {
					t.Errorf("%s plans %v, want 2 free hosts", what, hosts)
				}
			}
		})
	}
}

// TestApprovalVoidedByHostHeldElsewhere: two operations planned the same
// hosts while neither held them; once one is approved and holds them, the
// other's plan has drifted, and the refusal names the operation that
// holds each host.
//
// This is the held-host case of hostsDrift reached through Approve. Start
// and CheckResume share it, but cannot meet a held host through the
// public API: every way into a holding state (Run of an operation that
// needs no approval, the last Approve) plans again against current holds
// first, so the second operation is voided here, before it could start.
func TestApprovalVoidedByHostHeldElsewhere(t *testing.T) {
	e := newEnv(t, 20)
	// Medium risk: one approval each, so both wait without holding.
	e.applyRunbook(strings.Replace(restartRunbook, "risk: low", "risk: medium", 1))
	a, err := e.restart("2")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.restart("2")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != ops.OpPending || !slices.Equal(a.Plan.Hosts(), b.Plan.Hosts()) {
		t.Fatalf("a %s on %v, b on %v: want both pending on the same hosts", a.State, a.Plan.Hosts(), b.Plan.Hosts())
	}
	if _, ready, err := e.m.Approve(e.ctx, a.ID, approver1, a.Plan.Hash); err != nil || !ready {
		t.Fatalf("approve a: ready %v, %v", ready, err)
	}

	_, _, err = e.m.Approve(e.ctx, b.ID, approver1, b.Plan.Hash)
	ue := wantUserErr(t, err, usererr.Conflict, "plan_drifted")
	if want := "host host01 is held by operation " + a.ID; !strings.Contains(ue.Msg, want) {
		t.Errorf("drift message %q does not say %q", ue.Msg, want)
	}
	got, err := e.m.Get(e.ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ops.OpVoid || !strings.Contains(got.Detail, "held by operation "+a.ID) {
		t.Errorf("b = %s %q, want void naming %s", got.State, got.Detail, a.ID)
	}
}
