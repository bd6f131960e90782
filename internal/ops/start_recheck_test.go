package ops_test

import (
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestStartRechecksDriftAndGuardrails: between the last approval and the
// start, the world may change. Start builds the plan again in its own
// transaction: a planned host that can no longer be targeted voids the
// operation, a guardrail that now refuses leaves it ready; either way
// nothing starts.
func TestStartRechecksDriftAndGuardrails(t *testing.T) {
	for _, tt := range []struct {
		name string
		// change happens after the approval, before Start; target is the
		// operation's canary host.
		change    func(e *env, target string)
		kind      usererr.Kind
		code      string
		says      string
		wantState ops.OpState
	}{
		{
			name: "host turned unhealthy",
			change: func(e *env, target string) {
				if err := e.m.RecordHeartbeat(e.ctx, target, false); err != nil {
					e.t.Fatal(err)
				}
			},
			kind: usererr.Conflict, code: "plan_drifted", says: "host host01 is unhealthy", wantState: ops.OpVoid,
		},
		{
			name: "host taken out of service",
			change: func(e *env, target string) {
				if err := e.m.TakeOutOfService(e.ctx, "op_elsewhere", target); err != nil {
					e.t.Fatal(err)
				}
			},
			kind: usererr.Conflict, code: "plan_drifted", says: "host host01 is out of service", wantState: ops.OpVoid,
		},
		{
			name: "host revoked",
			change: func(e *env, target string) {
				if _, err := e.m.RevokeHost(e.ctx, admin, target, "key copied off the box"); err != nil {
					e.t.Fatal(err)
				}
			},
			kind: usererr.Conflict, code: "plan_drifted", says: "host host01 is revoked", wantState: ops.OpVoid,
		},
		{
			name: "freeze declared",
			change: func(e *env, _ string) {
				svc := ops.Service{Name: "index", MinHealthy: ops.Threshold{Percent: 80, IsPercent: true},
					Freezes: []ops.Window{{Start: e.now.Add(-time.Minute), End: e.now.Add(time.Hour), Reason: "INC-12 under way"}}}
				if err := e.m.SetService(e.ctx, admin, svc); err != nil {
					e.t.Fatal(err)
				}
			},
			kind: usererr.Forbidden, code: "guardrail", says: "index is frozen from", wantState: ops.OpReady,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 20)
			op, _, err := e.run("2")
			if err != nil {
				t.Fatal(err)
			}
			if _, ready, err := e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash); err != nil || !ready {
				t.Fatalf("approve: ready %v, %v", ready, err)
			}
			target := op.Plan.Waves[0].Hosts[0]
			tt.change(e, target)

			_, err = e.m.Start(e.ctx, op.ID, approver1)
			ue := wantUserErr(t, err, tt.kind, tt.code)
			if !strings.Contains(ue.Msg, tt.says) {
				t.Errorf("refusal %q does not say %q", ue.Msg, tt.says)
			}
			got, err := e.m.Get(e.ctx, op.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.wantState {
				t.Errorf("state after the refused start = %s (%q), want %s", got.State, got.Detail, tt.wantState)
			}
			if n := e.audits("op.started"); n != 0 {
				t.Errorf("%d op.started entries, want 0: nothing may start", n)
			}
			if running, err := e.m.ListByState(e.ctx, ops.OpRunning); err != nil || len(running) != 0 {
				t.Errorf("running operations = %d, %v; want none", len(running), err)
			}
			if tt.wantState == ops.OpVoid {
				// Void is final: a second try cannot start it either.
				_, err = e.m.Start(e.ctx, op.ID, approver1)
				wantUserErr(t, err, usererr.Conflict, "op_not_ready")
			}
		})
	}
}
