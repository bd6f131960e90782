package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
)

// ExecStore returns the wave executor's store (tables exec_steps and
// exec_versions, migration 060).
func (db *DB) ExecStore() exec.Store { return execStore{db} }

type execStore struct{ db *DB }

func (s execStore) InTx(ctx context.Context, fn func(exec.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

// InTxGrouped lets the executor's per-step transactions share commits
// (groupcommit.go).
func (s execStore) InTxGrouped(ctx context.Context, fn func(exec.Tx) error) error {
	return s.db.InTxGrouped(ctx, func(tx *Tx) error { return fn(tx) })
}

const execStepColumns = `op_id, host_id, phase, wave, step_id, state, exit_code, output, err_text, dispatched_at, finished_at`

func (s execStore) ExecSteps(ctx context.Context, opID string) ([]exec.StepRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT `+execStepColumns+` FROM exec_steps WHERE op_id = $1
		ORDER BY wave, dispatched_at, host_id, phase`, opID)
	if err != nil {
		return nil, fmt.Errorf("query steps of op %s: %w", opID, mapErr(err))
	}
	defer rows.Close()
	var out []exec.StepRecord
	for rows.Next() {
		var r exec.StepRecord
		var state string
		var dispatched, finished int64
		if err := rows.Scan(&r.OpID, &r.HostID, &r.Phase, &r.Wave, &r.StepID, &state, &r.ExitCode,
			&r.Output, &r.Error, &dispatched, &finished); err != nil {
			return nil, fmt.Errorf("scan step of op %s: %w", opID, err)
		}
		r.State = ops.StepState(state)
		r.DispatchedAt, r.FinishedAt = execTime(dispatched), execTime(finished)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read steps of op %s: %w", opID, err)
	}
	return out, nil
}

func (s execStore) ExecVersion(ctx context.Context, opID string) (int64, error) {
	var v int64
	err := s.db.QueryRow(ctx, `SELECT version FROM exec_versions WHERE op_id = $1`, opID).Scan(&v)
	if err != nil {
		if err = mapErr(err); errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		return 0, fmt.Errorf("read version of op %s: %w", opID, err)
	}
	return v, nil
}

// InsertExecStep implements exec.Tx.
func (t *Tx) InsertExecStep(ctx context.Context, r exec.StepRecord) error {
	_, err := t.Exec(ctx, `INSERT INTO exec_steps (`+execStepColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.OpID, r.HostID, r.Phase, r.Wave, r.StepID, string(r.State), r.ExitCode, r.Output, r.Error,
		execNanos(r.DispatchedAt), execNanos(r.FinishedAt))
	if err != nil {
		err = mapErr(err)
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("insert step %s/%s of op %s: %w: %w", r.HostID, r.Phase, r.OpID, exec.ErrStepExists, err)
		}
		return fmt.Errorf("insert step %s/%s of op %s: %w", r.HostID, r.Phase, r.OpID, err)
	}
	return nil
}

// UpdateExecStep implements exec.Tx.
func (t *Tx) UpdateExecStep(ctx context.Context, r exec.StepRecord, from ops.StepState) error {
	q := `UPDATE exec_steps SET state = $1, exit_code = $2, output = $3, err_text = $4, finished_at = $5
		WHERE op_id = $6 AND host_id = $7 AND phase = $8 AND state = $9`
	args := []any{string(r.State), r.ExitCode, r.Output, r.Error, execNanos(r.FinishedAt), r.OpID, r.HostID, r.Phase, string(from)}
	if !r.DispatchedAt.IsZero() {
		q = `UPDATE exec_steps SET state = $1, exit_code = $2, output = $3, err_text = $4, finished_at = $5, dispatched_at = $10
		WHERE op_id = $6 AND host_id = $7 AND phase = $8 AND state = $9`
		args = append(args, execNanos(r.DispatchedAt))
	}
	res, err := t.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("update step %s/%s of op %s: %w", r.HostID, r.Phase, r.OpID, mapErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update step %s/%s of op %s: %w", r.HostID, r.Phase, r.OpID, err)
	}
	if n != 1 {
		return fmt.Errorf("update step %s/%s of op %s from %s: %w", r.HostID, r.Phase, r.OpID, from, exec.ErrStepState)
	}
	return nil
}

// BumpExecVersion implements exec.Tx.
func (t *Tx) BumpExecVersion(ctx context.Context, opID string) (int64, error) {
	var v int64
	err := t.QueryRow(ctx, `INSERT INTO exec_versions (op_id, version) VALUES ($1, 1)
		ON CONFLICT (op_id) DO UPDATE SET version = exec_versions.version + 1
		RETURNING version`, opID).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("bump version of op %s: %w", opID, mapErr(err))
	}
	return v, nil
}

func execNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func execTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
