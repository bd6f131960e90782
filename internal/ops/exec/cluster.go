package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
)

// Several servers on one database.
//
// An operation's waves are run by one server at a time: launch claims the
// operation's run (RunClaims) and gives it up when its run goroutine
// ends. A claim lives as long as its server does: when the server dies,
// RecoverOrphan (called by whichever server holds the recovery lease)
// does for that operation what Recover does at a restart, and the
// operation settles from its agents' ledgers.

// RunClaims says which server runs an operation. internal/app adapts the
// cluster store to it; nil (one server) means this engine runs everything
// it launches.
type RunClaims interface {
	// ClaimRun makes this server the runner of opID unless another live
	// server is; it reports whether this server is the runner now.
	ClaimRun(ctx context.Context, opID string) (bool, error)
	ReleaseRun(ctx context.Context, opID string) error
}

// claim takes opID's run for this engine; true when there is no RunClaims.
func (e *Engine) claim(ctx context.Context, opID string) (bool, error) {
	if e.cfg.Runs == nil {
		return true, nil
	}
	return e.cfg.Runs.ClaimRun(context.WithoutCancel(ctx), opID)
}

// release gives up opID's run, and launches it again if it is still
// running: another server resumed it (continueSettled) while this run was
// finishing its last steps and could not claim it.
func (e *Engine) release(opID string) {
	if e.cfg.Runs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.cfg.Runs.ReleaseRun(ctx, opID); err != nil {
		e.log.WarnContext(ctx, "release the run of an op", slog.String("op", opID), slog.Any("err", err))
		return
	}
	if e.isClosed() {
		return
	}
	if op, err := e.cfg.Ops.Get(ctx, opID); err == nil && op.State == ops.OpRunning {
		if err := e.launch(ctx, opID); err != nil {
			e.log.WarnContext(ctx, "relaunch a running op", slog.String("op", opID), slog.Any("err", err))
		}
	}
}

// RecoverOrphan does for one operation whose runner server died what
// Recover does after a restart: its in-flight steps become unknown and a
// running operation needs attention (and continues by itself when the
// agents' reports settle them). Steps that the dead server queued but no
// server took were never sent: they go back to pending (Unsent).
func (e *Engine) RecoverOrphan(ctx context.Context, op ops.Operation) error {
	if e.running(op.ID) != nil {
		return nil
	}
	return e.recoverOne(ctx, op, op.State == ops.OpRunning)
}

// Unsent records that a step recorded as dispatched (or unknown after
// RecoverOrphan) was never handed to its agent: it goes back to pending,
// with an op.step_not_sent entry, so that a resume sends it.
func (e *Engine) Unsent(ctx context.Context, stepID string) error {
	finder, ok := e.cfg.Store.(StepFinder)
	if !ok {
		return errors.New("exec: the store cannot find steps by ID")
	}
	rec, found, err := finder.ExecStepByStepID(ctx, stepID)
	if err != nil || !found {
		return err
	}
	from := rec.State
	if from != ops.StepDispatched && from != ops.StepUnknown {
		return nil
	}
	now := e.cfg.Now()
	rec.State, rec.Error, rec.FinishedAt = ops.StepPending, "not sent: the server that queued it went away first", time.Time{}
	err = e.cfg.Store.InTx(ctx, func(tx Tx) error {
		if err := tx.UpdateExecStep(ctx, rec, from); err != nil {
			return err
		}
		if _, err := tx.BumpExecVersion(ctx, rec.OpID); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.step_not_sent", Version: 1, Actor: SystemActor,
			Subject: "op:" + rec.OpID, Time: now,
			Data: map[string]any{"host": rec.HostID, "phase": rec.Phase, "wave": rec.Wave, "step_id": rec.StepID,
				"state": string(rec.State), "exit_code": rec.ExitCode, "error": rec.Error}})
	})
	if errors.Is(err, ErrStepState) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("return unsent step %s: %w", stepID, err)
	}
	e.notify(rec.OpID)
	if e.running(rec.OpID) == nil {
		e.continueSettled(ctx, rec.OpID)
	}
	return nil
}
