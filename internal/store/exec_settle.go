package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
)

// ExecStepByStepID finds the step record with a step ID (unique, migration
// 060), so that a result an agent reports after the server lost track of
// the step can be matched to it.
func (s execStore) ExecStepByStepID(ctx context.Context, stepID string) (exec.StepRecord, bool, error) {
	var r exec.StepRecord
	var state string
	var dispatched, finished int64
	err := s.db.QueryRow(ctx, `SELECT `+execStepColumns+` FROM exec_steps WHERE step_id = $1`, stepID).Scan(
		&r.OpID, &r.HostID, &r.Phase, &r.Wave, &r.StepID, &state, &r.ExitCode, &r.Output, &r.Error, &dispatched, &finished)
	if err != nil {
		if err = mapErr(err); errors.Is(err, ErrNotFound) {
			return exec.StepRecord{}, false, nil
		}
		return exec.StepRecord{}, false, fmt.Errorf("find step %s: %w", stepID, err)
	}
	r.State = ops.StepState(state)
	r.DispatchedAt, r.FinishedAt = execTime(dispatched), execTime(finished)
	return r, true, nil
}
