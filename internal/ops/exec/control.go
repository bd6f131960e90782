package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// SystemActor is the audit actor of the executor's own decisions.
const SystemActor = "system"

// Start begins running an operation in the background. The operation MUST
// be in state running (set by the approvals path); any other state is
// refused and nothing is dispatched. Starting an operation this engine is
// already running is a no-op.
func (e *Engine) Start(ctx context.Context, opID string) error {
	op, err := e.cfg.Ops.Get(ctx, opID)
	if err != nil {
		return fmt.Errorf("load op %s: %w", opID, err)
	}
	if op.State != ops.OpRunning {
		return usererr.New(usererr.Conflict, "op_not_running",
			"Operation %s is %s, not running, so nothing will be dispatched; only an approved, running operation can be executed.", opID, op.State)
	}
	return e.launch(ctx, opID)
}

func (e *Engine) launch(ctx context.Context, opID string) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return errors.New("exec: engine is shut down")
	}
	if _, ok := e.runs[opID]; ok {
		e.mu.Unlock()
		return nil
	}
	e.mu.Unlock()
	if mine, err := e.claim(ctx, opID); err != nil {
		return fmt.Errorf("claim the run of op %s: %w", opID, err)
	} else if !mine {
		return nil // another live server runs it
	}
	e.mu.Lock()
	if _, ok := e.runs[opID]; ok || e.closed {
		e.mu.Unlock()
		return nil
	}
	runCtx, cancel := context.WithCancel(e.base)
	r := &run{cancel: cancel, done: make(chan struct{})}
	e.runs[opID] = r
	e.wg.Add(1)
	e.mu.Unlock()
	e.bump(ctx, opID)

	go func() {
		defer e.wg.Done()
		defer func() {
			cancel()
			e.mu.Lock()
			delete(e.runs, opID)
			e.mu.Unlock()
			close(r.done)
			e.notify(opID)
			e.release(opID)
			// Steps of this run may have been settled from agents' ledgers
			// while it stopped (lost contact): continue now if they were.
			if !e.isClosed() {
				e.continueSettled(e.base, opID)
			}
		}()
		e.execute(runCtx, cancel, opID)
	}()
	return nil
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// running reports whether this engine still has a goroutine for opID.
func (e *Engine) running(opID string) *run {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[opID]
}

// Halt is the kill switch: the operation moves to halted and this engine
// stops dispatching for it at once (other servers notice within
// Config.PollInterval). Steps already sent finish or time out and their
// results are still recorded. No rollback runs on a person's halt. by is
// the audit actor ("person:<id>").
func (e *Engine) Halt(ctx context.Context, opID, by, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return usererr.New(usererr.Invalid, "reason_required", "Say why you are halting the operation (--reason); the reason goes into the audit log.")
	}
	if err := e.setState(ctx, opID, []ops.OpState{ops.OpRunning}, ops.OpHalted,
		fmt.Sprintf("Halted by %s with the kill switch.", by), by); err != nil {
		return err
	}
	if r := e.running(opID); r != nil {
		r.cancel()
	}
	e.noteReason(ctx, opID, "op.halt_reason", by, reason)
	return nil
}

// noteReason bumps the op's version and records a person's reason as
// personal data (erasable), apart from the state change's own entry whose
// detail is public.
func (e *Engine) noteReason(ctx context.Context, opID, kind, by, reason string) {
	ctx = context.WithoutCancel(ctx)
	err := e.cfg.Store.InTx(ctx, func(tx Tx) error {
		if _, err := tx.BumpExecVersion(ctx, opID); err != nil {
			return err
		}
		if strings.TrimSpace(reason) == "" {
			return nil
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: by, Subject: "op:" + opID,
			Time: e.cfg.Now(), Personal: map[string]string{"reason": reason}})
	})
	if err != nil {
		e.log.ErrorContext(ctx, "record reason", slog.String("op", opID), slog.String("kind", kind), slog.Any("err", err))
	}
	e.notify(opID)
}

// Abort ends an operation for good: running, halted or needing attention
// → aborted. Nothing more is dispatched for it.
func (e *Engine) Abort(ctx context.Context, opID, by, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return usererr.New(usererr.Invalid, "reason_required", "Say why you are aborting the operation (--reason); the reason goes into the audit log.")
	}
	if err := e.setState(ctx, opID, []ops.OpState{ops.OpRunning, ops.OpHalted, ops.OpAttention}, ops.OpAborted,
		fmt.Sprintf("Aborted by %s.", by), by); err != nil {
		return err
	}
	if r := e.running(opID); r != nil {
		r.cancel()
	}
	e.noteReason(ctx, opID, "op.abort_reason", by, reason)
	return nil
}

// Resume continues a halted operation, or one that needs attention after a
// restart, from where it stopped. It never re-dispatches a host and phase
// that already has a record; hosts left unknown count as failures unless a
// person marked them with MarkStep first.
func (e *Engine) Resume(ctx context.Context, opID, by string) error {
	op, err := e.cfg.Ops.Get(ctx, opID)
	if err != nil {
		return fmt.Errorf("load op %s: %w", opID, err)
	}
	if op.State != ops.OpHalted && op.State != ops.OpAttention {
		return usererr.New(usererr.Conflict, "op_not_resumable",
			"Operation %s is %s; only a halted operation or one that needs attention can be resumed.", opID, op.State)
	}
	if r := e.running(opID); r != nil {
		return usererr.New(usererr.Conflict, "op_still_stopping",
			"Operation %s is still waiting for steps that were already sent; try again when they have reported.", opID)
	}
	steps, err := e.cfg.Store.ExecSteps(ctx, opID)
	if err != nil {
		return fmt.Errorf("load steps of op %s: %w", opID, err)
	}
	if bad := failedHosts(steps); len(bad) > op.Plan.HaltAfter {
		return usererr.New(usererr.Conflict, "too_many_failures",
			"Operation %s cannot resume: %d hosts failed or are unknown (%s), more than the %d this plan allows. Mark unknown hosts you have checked (interlock ops mark), or abort and plan again.",
			opID, len(bad), ops.HostList(bad), op.Plan.HaltAfter)
	}
	var unknownChecks []string
	for _, s := range steps {
		if s.Phase == PhaseHealth && s.State == ops.StepUnknown {
			unknownChecks = append(unknownChecks, s.HostID)
		}
	}
	if len(unknownChecks) > 0 {
		return usererr.New(usererr.Conflict, "unknown_health",
			"Operation %s cannot resume: the health check of %s was in flight at a restart and its result is unknown. Check those hosts and mark the health step (interlock ops mark --phase health), or abort.",
			opID, ops.HostList(unknownChecks))
	}
	if err := e.cfg.Guard.CheckResume(ctx, op, untouchedHosts(op.Plan, steps)); err != nil {
		return err
	}
	if err := e.setState(ctx, opID, []ops.OpState{ops.OpHalted, ops.OpAttention}, ops.OpRunning,
		fmt.Sprintf("Resumed by %s.", by), by); err != nil {
		return err
	}
	return e.launch(ctx, opID)
}

// untouchedHosts are the plan's hosts with no step of any phase: the ones
// a resume would send to for the first time.
func untouchedHosts(p ops.Plan, steps []StepRecord) []string {
	seen := map[string]bool{}
	for _, s := range steps {
		seen[s.HostID] = true
	}
	var out []string
	for _, h := range p.Hosts() {
		if !seen[h] {
			out = append(out, h)
		}
	}
	return out
}

// MarkStep records a person's finding about a step left unknown by a
// restart: to is StepSucceeded or StepFailed. Only unknown steps can be
// marked.
func (e *Engine) MarkStep(ctx context.Context, opID, hostID, phase string, to ops.StepState, by, reason string) error {
	if to != ops.StepSucceeded && to != ops.StepFailed {
		return usererr.New(usererr.Invalid, "bad_mark", "A step can be marked succeeded or failed, not %q.", to)
	}
	if strings.TrimSpace(reason) == "" {
		return usererr.New(usererr.Invalid, "reason_required", "Say what you checked on the host (--reason); it goes into the audit log.")
	}
	now := e.cfg.Now()
	err := e.cfg.Store.InTx(ctx, func(tx Tx) error {
		r := StepRecord{OpID: opID, HostID: hostID, Phase: phase, State: to, ExitCode: -1,
			Error: "marked " + string(to) + " by " + by, FinishedAt: now}
		if err := tx.UpdateExecStep(ctx, r, ops.StepUnknown); err != nil {
			return err
		}
		if _, err := tx.BumpExecVersion(ctx, opID); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.step_marked", Version: 1, Actor: by,
			Subject: "op:" + opID, Time: now,
			Data:     map[string]any{"host": hostID, "phase": phase, "state": string(to)},
			Personal: map[string]string{"reason": reason}})
	})
	if errors.Is(err, ErrStepState) {
		return usererr.Wrap(err, usererr.Conflict, "step_not_unknown",
			"Host %s has no unknown %s step in operation %s; only steps left unknown by a restart can be marked.", hostID, phase, opID)
	}
	if err != nil {
		return fmt.Errorf("mark step %s/%s of op %s: %w", hostID, phase, opID, err)
	}
	e.notify(opID)
	return nil
}

// Recover MUST run once at server start, before any Start: every
// operation left running by the previous process has its in-flight steps
// (dispatched, no result) marked unknown and moves to needs_attention with
// a detail naming those hosts. Nothing is re-dispatched; a person resumes
// or aborts.
//
// Operations that were already halted (or waiting for a person) when the
// process stopped keep their state, but their in-flight steps become
// unknown too: otherwise a resume would count them as done.
func (e *Engine) Recover(ctx context.Context) error {
	var errs []error
	for _, state := range []ops.OpState{ops.OpRunning, ops.OpHalted, ops.OpAttention} {
		list, err := e.cfg.Ops.ListByState(ctx, state)
		if err != nil {
			return fmt.Errorf("list %s ops: %w", state, err)
		}
		for _, op := range list {
			if e.running(op.ID) != nil {
				continue // started by this process: not orphaned
			}
			if err := e.recoverOne(ctx, op, state == ops.OpRunning); err != nil {
				errs = append(errs, fmt.Errorf("recover op %s: %w", op.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) recoverOne(ctx context.Context, op ops.Operation, wasRunning bool) error {
	steps, err := e.cfg.Store.ExecSteps(ctx, op.ID)
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	var unknown []string
	err = e.cfg.Store.InTx(ctx, func(tx Tx) error {
		unknown = unknown[:0]
		for _, s := range steps {
			switch s.State {
			case ops.StepDispatched:
				r := s
				r.State, r.Error, r.FinishedAt = ops.StepUnknown, "in flight when the server stopped", now
				if err := tx.UpdateExecStep(ctx, r, ops.StepDispatched); err != nil {
					return err
				}
				if err := audit.Append(ctx, tx, audit.Entry{Kind: "op.step_unknown", Version: 1, Actor: SystemActor,
					Subject: "op:" + op.ID, Time: now,
					Data: map[string]any{"host": s.HostID, "phase": s.Phase, "wave": s.Wave, "step_id": s.StepID}}); err != nil {
					return err
				}
				unknown = append(unknown, s.HostID+" ("+s.Phase+")")
			case ops.StepUnknown:
				unknown = append(unknown, s.HostID+" ("+s.Phase+")")
			}
		}
		_, err := tx.BumpExecVersion(ctx, op.ID)
		return err
	})
	if err != nil {
		return err
	}
	if !wasRunning {
		e.notify(op.ID)
		return nil
	}
	detail := fmt.Sprintf("The server restarted during wave %d with no step in flight. Nothing was re-run; resume to continue or abort.", currentWave(steps))
	if len(unknown) > 0 {
		detail = fmt.Sprintf("The server restarted while %d host(s) were running a step: %s. Their result is unknown and nothing was re-run. The operation continues by itself when their agents report the outcome from their ledgers; or check those hosts, mark them, then resume or abort.",
			len(unknown), ops.HostList(unknown))
	}
	e.log.WarnContext(ctx, "op needs attention after restart", slog.String("op", op.ID), slog.Int("unknown", len(unknown)))
	if err := e.cfg.Ops.SetState(ctx, op.ID, []ops.OpState{ops.OpRunning}, ops.OpAttention, detail, SystemActor); err != nil {
		return err
	}
	e.notify(op.ID)
	return nil
}

// setState calls Ops.SetState and turns a refused transition into a
// usererr naming the current state.
func (e *Engine) setState(ctx context.Context, opID string, from []ops.OpState, to ops.OpState, detail, actor string) error {
	err := e.cfg.Ops.SetState(ctx, opID, from, to, detail, actor)
	if err == nil {
		return nil
	}
	if _, ok := usererr.As(err); ok {
		return err
	}
	op, gerr := e.cfg.Ops.Get(ctx, opID)
	if gerr == nil && !slices.Contains(from, op.State) {
		return usererr.Wrap(err, usererr.Conflict, "op_state_changed",
			"Operation %s is %s, so it cannot become %s.", opID, op.State, to)
	}
	return fmt.Errorf("set op %s %s: %w", opID, to, err)
}

// failedHosts lists the hosts whose run step failed or is unknown, the
// ones the threshold counts.
func failedHosts(steps []StepRecord) []string {
	var out []string
	for _, s := range steps {
		if failure(s) && !slices.Contains(out, s.HostID) {
			out = append(out, s.HostID)
		}
	}
	return out
}

func currentWave(steps []StepRecord) int {
	w := 0
	for _, s := range steps {
		w = max(w, s.Wave)
	}
	return w
}
