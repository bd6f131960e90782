package ops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

func TestWithdraw(t *testing.T) {
	e := newEnv(t, 20)
	e.beatAll()
	op, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	// Nobody but the requester: not an approver, not an admin.
	for _, p := range []wire.Principal{approver1, admin} {
		_, err := e.m.Withdraw(e.ctx, op.ID, p, "")
		wantUserErr(t, err, usererr.Forbidden, "not_requester")
	}
	if n := e.audits("op.withdrawn"); n != 0 {
		t.Fatalf("refused withdrawals wrote %d entries", n)
	}
	got, err := e.m.Withdraw(e.ctx, op.ID, operator1, "wrong ticket")
	if err != nil || got.State != ops.OpWithdrawn {
		t.Fatalf("Withdraw = %s, %v", got.State, err)
	}
	if n := e.audits("op.withdrawn"); n != 1 {
		t.Errorf("op.withdrawn entries = %d, want 1", n)
	}
	_, err = e.m.Withdraw(e.ctx, op.ID, operator1, "")
	wantUserErr(t, err, usererr.Conflict, "op_not_pending")
	_, _, err = e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
	wantUserErr(t, err, usererr.Conflict, "op_not_pending")
	_, err = e.m.Withdraw(e.ctx, "op_nope", operator1, "")
	wantUserErr(t, err, usererr.NotFound, "unknown_operation")
}

// refusingChecker refuses approvers in refuse and records what it was asked.
type refusingChecker struct {
	refuse map[string]bool
	asked  []string
	at     []time.Time
}

func (c *refusingChecker) CheckIndependentApprover(_ context.Context, requesterID, approverID string, requestedAt time.Time) error {
	c.asked = append(c.asked, requesterID+"→"+approverID)
	c.at = append(c.at, requestedAt)
	if c.refuse[approverID] {
		return usererr.New(usererr.Forbidden, "approver_invited_by_requester", "%s was invited by %s.", approverID, requesterID)
	}
	return nil
}

// TestApproveAsksIndependence: Approve asks the checker about the
// requester, the approver and the operation's creation time; a refusal
// leaves the operation pending with an op.approval_refused entry, and an
// independent approver still approves.
func TestApproveAsksIndependence(t *testing.T) {
	e := newEnv(t, 20)
	e.beatAll()
	chk := &refusingChecker{refuse: map[string]bool{approver1.ID: true}}
	m, err := ops.New(ops.Config{Store: e.db.OpsStore(), Now: e.clock, Independence: chk})
	if err != nil {
		t.Fatal(err)
	}
	op, _, err := e.run("2")
	if err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(time.Second)
	_, _, err = m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
	ue := wantUserErr(t, err, usererr.Forbidden, "approver_invited_by_requester")
	if want := "p_ap1 was invited by p_op1. Operation " + op.ID + " stays pending."; ue.Msg != want {
		t.Errorf("refusal says %q, want %q", ue.Msg, want)
	}
	if got, _ := m.Get(e.ctx, op.ID); got.State != ops.OpPending || len(got.Approvals) != 0 {
		t.Fatalf("after the refusal the op is %s with %d approvals", got.State, len(got.Approvals))
	}
	var data []byte
	if err := e.db.QueryRow(e.ctx, `SELECT data FROM audit_entries WHERE kind = 'op.approval_refused'`).Scan(&data); err != nil {
		t.Fatalf("no op.approval_refused entry: %v", err)
	}
	if !strings.Contains(string(data), `"code":"approver_invited_by_requester"`) {
		t.Errorf("op.approval_refused data = %s, want the refusal's code", data)
	}
	if _, ready, err := m.Approve(e.ctx, op.ID, approver2, op.Plan.Hash); err != nil || !ready {
		t.Fatalf("independent approver2: ready %v, %v", ready, err)
	}
	if len(chk.asked) != 2 || chk.asked[0] != "p_op1→p_ap1" || !chk.at[0].Equal(op.CreatedAt) {
		t.Errorf("checker was asked %v at %v; want p_op1→p_ap1 at the op's creation %v", chk.asked, chk.at, op.CreatedAt)
	}
}
