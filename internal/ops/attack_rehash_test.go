package ops_test

import (
	"encoding/json"
	"testing"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestAttackRehashedPlanIsNotApproved: someone with write access to the
// database swaps a host into a pending operation's stored plan and stores
// the new plan's hash with it, so the plan is consistent with itself
// (CheckPlanIntact passes) and an approver would sign the new hash. The
// approval plans again from the runbook and parameters, finds a different
// plan and voids the operation instead (plan_drifted). (Resuming checks
// the approvals against the plan's hash, so a plan rehashed after approval
// cannot run either.)
func TestAttackRehashedPlanIsNotApproved(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t), 0)
			if _, err := e.m.ApplyRunbook(e.ctx, admin, []byte(fleetRunbook)); err != nil {
				t.Fatal(err)
			}
			e.addFleet("fleet", 40)
			e.addFleet("other", 1)
			op, _, err := e.m.Run(e.ctx, ops.RunRequest{Runbook: "fleet-step", Params: map[string]string{"service": "fleet", "count": "20"}, Reason: "INC-9", Requester: operator1})
			if err != nil {
				t.Fatal(err)
			}
			p := op.Plan
			p.Waves = append([]ops.Wave(nil), p.Waves...)
			p.Waves[1].Hosts = append([]string{"host_other_00000"}, p.Waves[1].Hosts[1:]...)
			p.Hash = ops.HashPlan(p)
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.db.Exec(e.ctx, `UPDATE ops_operations SET plan = $1 WHERE id = $2`, string(b), op.ID); err != nil {
				t.Fatal(err)
			}
			if got, err := e.m.Get(e.ctx, op.ID); err != nil || ops.CheckPlanIntact(got) != nil || got.Plan.Hash != p.Hash {
				t.Fatalf("the rehashed plan is not consistent with itself (%v); the attack did not take", err)
			}
			_, _, err = e.m.Approve(e.ctx, op.ID, approver1, p.Hash)
			wantUserErr(t, err, usererr.Conflict, "plan_drifted")
			if got, _ := e.m.Get(e.ctx, op.ID); got.State != ops.OpVoid || len(got.Approvals) != 0 {
				t.Errorf("after a refused approval: %s with %d approvals, want void with none", got.State, len(got.Approvals))
			}
		})
	}
}
