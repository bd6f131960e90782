package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Withdraw lets the person who requested an operation take it back before
// it starts (waiting for approval, or ready). Nobody else may: approvers
// deny. The reason is optional and goes into the audit entry as personal
// data.
func (s *Manager) Withdraw(ctx context.Context, opID string, by wire.Principal, reason string) (Operation, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) > 1000 {
		return Operation{}, usererr.New(usererr.Invalid, "reason_too_long", "The reason must be at most 1000 characters.")
	}
	var op Operation
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		var err error
		if op, err = loadOp(ctx, tx, opID); err != nil {
			return err
		}
		if by.Kind != "person" || by.ID != op.RequesterID {
			return usererr.New(usererr.Forbidden, "not_requester",
				"Only the person who requested operation %s can withdraw it; an approver can deny it instead (interlock deny).", op.ID)
		}
		if op.State != OpPending && op.State != OpReady {
			return usererr.New(usererr.Conflict, "op_not_pending",
				"Operation %s is %s; only an operation that has not started can be withdrawn (use halt or abort).", op.ID, op.State)
		}
		now := s.clock()
		op.State, op.UpdatedAt, op.Detail = OpWithdrawn, now, "withdrawn by "+by.Name
		if err := tx.UpdateOperation(ctx, op); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.withdrawn", Version: 1, Actor: by.Actor(), Subject: "op:" + op.ID, Time: now,
			Data:     map[string]any{"plan_hash": op.Plan.Hash, "approvals": len(op.Approvals)},
			Personal: map[string]string{"reason": reason, "requester_username": by.Name}})
	})
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return Operation{}, err
		}
		return Operation{}, fmt.Errorf("withdraw op %s: %w", opID, err)
	}
	return op, nil
}

// Verdicts judges op's guardrails again on the live inventory, changing
// nothing: what an approver looks at before signing. It fails when the
// plan can no longer be built (approving then voids the operation).
func (s *Manager) Verdicts(ctx context.Context, op Operation) ([]Verdict, error) {
	req := RunRequest{Runbook: op.Plan.Runbook, Params: op.Plan.Params, Requester: wire.Principal{Kind: "person", ID: op.RequesterID},
		Confirm: op.Plan.Params, BreakGlass: op.BreakGlass}
	res, _, err := s.plan(ctx, s.store, req, op.ID, op.Plan.RunbookVersion)
	if err != nil {
		return nil, fmt.Errorf("judge op %s again: %w", op.ID, err)
	}
	return res.Verdicts, nil
}
