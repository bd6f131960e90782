package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
	redactpkg "github.com/interlock-dev/interlock/internal/redact"
)

// stepKey names one record: a host's phase.
type stepKey struct{ host, phase string }

// runState is what one execution knows while it runs an operation.
type runState struct {
	opID string

	mu       sync.Mutex
	steps    map[stepKey]StepRecord
	failures []string        // hosts whose run step or health check failed or is unknown, once each
	failedAt map[string]bool // the hosts in failures: a list scanned per record was O(n²) on a failing fleet
}

func (r *runState) record(s StepRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[stepKey{s.HostID, s.Phase}] = s
	if failure(s) && !r.failedAt[s.HostID] {
		if r.failedAt == nil {
			r.failedAt = map[string]bool{}
		}
		r.failedAt[s.HostID] = true
		r.failures = append(r.failures, s.HostID)
	}
}

// failedCount is len(failed()) without the copy.
func (r *runState) failedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures)
}

// failure reports whether s counts against an operation's failure
// allowance: a run step or a health check that failed or is unknown.
func failure(s StepRecord) bool {
	return (s.Phase == PhaseRun || s.Phase == PhaseHealth) && (s.State == ops.StepFailed || s.State == ops.StepUnknown)
}

func (r *runState) get(host, phase string) (StepRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.steps[stepKey{host, phase}]
	return s, ok
}

func (r *runState) failed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failures...)
}

// failedIn returns the hosts of w whose run step failed or is unknown.
func (r *runState) failedIn(w ops.Wave) []string {
	var out []string
	for _, h := range w.Hosts {
		if s, ok := r.get(h, PhaseRun); ok && (s.State == ops.StepFailed || s.State == ops.StepUnknown) {
			out = append(out, h)
		}
	}
	return out
}

// errStopped means the operation left state running (halted, aborted…)
// or the engine is shutting down: stop quietly, someone else set the state.
var errStopped = errors.New("operation is no longer running")

// execute runs opID's plan until it succeeds, halts or is stopped. It is
// the body of one run goroutine.
func (e *Engine) execute(ctx context.Context, cancel context.CancelFunc, opID string) {
	// Notice a halt made elsewhere (another server, or Ops directly)
	// within PollInterval, so the kill switch holds across replicas.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(e.cfg.PollInterval):
			}
			op, err := e.cfg.Ops.Get(ctx, opID)
			if err == nil && op.State != ops.OpRunning {
				cancel()
				return
			}
		}
	}()

	r := &runState{opID: opID, steps: map[stepKey]StepRecord{}}
	err := e.runPlan(ctx, r)
	switch {
	case err == nil, errors.Is(err, errStopped):
	case ctx.Err() != nil:
		// Stopped by a halt, an abort or Shutdown: whoever stopped it set
		// the state (after Shutdown, Recover will at next start).
		e.log.ErrorContext(ctx, "executor failed while stopping", slog.String("op", opID), slog.Any("err", err))
	default:
		// The executor itself failed (store down…): halt so that a person
		// looks, rather than leave an operation running with no runner.
		e.log.ErrorContext(ctx, "executor failed", slog.String("op", opID), slog.Any("err", err))
		e.haltAuto(ctx, opID, fmt.Sprintf("Halted because the executor failed: %v", err))
	}
}

func (e *Engine) runPlan(ctx context.Context, r *runState) error {
	op, err := e.reread(ctx, r.opID)
	if err != nil {
		return err
	}
	steps, err := e.cfg.Store.ExecSteps(ctx, r.opID)
	if err != nil {
		return fmt.Errorf("load steps: %w", err)
	}
	for _, s := range steps {
		r.record(s)
	}
	plan := op.Plan
	if bad := r.failed(); len(bad) > plan.HaltAfter {
		e.haltAuto(ctx, r.opID, thresholdSentence(0, bad, plan.HaltAfter))
		return nil
	}
	for i, w := range plan.Waves {
		if r.waveDone(w, plan) {
			continue
		}
		op, err := e.reread(ctx, r.opID)
		if err != nil {
			return err
		}
		if err := ops.CheckPlanIntact(op); err != nil || !sameWaves(op.Plan.Waves, plan.Waves) {
			e.haltAuto(ctx, r.opID, fmt.Sprintf("Halted before wave %d: the operation's stored plan no longer matches its hash or the plan it started with; it was changed outside Interlock, so nothing more runs.", w.Number))
			return nil
		}
		verdicts, err := e.cfg.Guard.CheckWave(ctx, op, w.Number)
		if err != nil {
			if ctx.Err() != nil {
				return errStopped
			}
			e.haltAuto(ctx, r.opID, fmt.Sprintf("Halted before wave %d: the guardrails could not be re-checked (%v), so nothing more runs.", w.Number, err))
			return nil
		}
		if msg := failing(verdicts); msg != "" {
			e.haltAuto(ctx, r.opID, fmt.Sprintf("Halted before wave %d: %s", w.Number, msg))
			return nil
		}

		fresh := false // does this wave send anything now (not all done before a restart)?
		for _, h := range w.Hosts {
			if s, ok := r.get(h, PhaseRun); !ok || s.State == ops.StepPending {
				fresh = true
			}
		}
		// The wave's step, with bounded concurrency; stop dispatching as
		// soon as failures pass the threshold.
		if err := e.runPhase(ctx, r, op, w, w.Hosts, PhaseRun, &plan.Step, plan.HaltAfter); err != nil {
			return err
		}
		if lost := r.unknownIn(w, PhaseRun); len(lost) > 0 {
			return e.lostContact(ctx, r.opID, w.Number, PhaseRun, lost)
		}
		if bad := r.failed(); len(bad) > plan.HaltAfter {
			return e.haltWave(ctx, r, w, thresholdSentence(w.Number, bad, plan.HaltAfter))
		}
		// The canary exists to stop the rest on its failure, whatever the
		// threshold allows later waves; a person who resumes has seen it.
		if i == 0 && fresh {
			if bad := r.failedIn(w); len(bad) > 0 {
				return e.haltWave(ctx, r, w, fmt.Sprintf("Halted after the canary (wave 1): its step failed on %s, so no other host is touched.", ops.HostList(bad)))
			}
		}

		last := i == len(plan.Waves)-1
		if plan.HealthCheck == nil {
			// Bake before the next wave's guardrail check reads live health.
			if fresh && !last && plan.BakeSeconds > 0 {
				if err := bake(ctx, plan.BakeSeconds); err != nil {
					return err
				}
			}
			continue
		}
		var check []string // hosts whose step succeeded and whose health is not yet checked
		for _, h := range w.Hosts {
			if s, ok := r.get(h, PhaseRun); ok && s.State == ops.StepSucceeded {
				if hs, ok := r.get(h, PhaseHealth); !ok || hs.State == ops.StepPending {
					check = append(check, h)
				}
			}
		}
		if len(check) > 0 && plan.BakeSeconds > 0 {
			if err := bake(ctx, plan.BakeSeconds); err != nil {
				return err
			}
		}
		if err := e.runPhase(ctx, r, op, w, check, PhaseHealth, plan.HealthCheck, -1); err != nil {
			return err
		}
		if lost := r.unknownIn(w, PhaseHealth); len(lost) > 0 {
			return e.lostContact(ctx, r.opID, w.Number, PhaseHealth, lost)
		}
		var sick []string // of the hosts checked now (a person who resumed has seen earlier failures)
		for _, h := range check {
			if s, ok := r.get(h, PhaseHealth); !ok || s.State != ops.StepSucceeded {
				sick = append(sick, h)
			}
		}
		if len(sick) > 0 {
			return e.haltWave(ctx, r, w, fmt.Sprintf("Halted after wave %d: the health check failed on %d host(s): %s.", w.Number, len(sick), ops.HostList(sick)))
		}
	}
	if _, err := e.reread(ctx, r.opID); err != nil {
		return err
	}
	detail := fmt.Sprintf("All %d waves finished.", len(plan.Waves))
	if bad := r.failed(); len(bad) > 0 {
		detail = fmt.Sprintf("All %d waves finished; %d host(s) failed, within the %d allowed: %s.", len(plan.Waves), len(bad), plan.HaltAfter, ops.HostList(bad))
	}
	if err := e.cfg.Ops.SetState(ctx, r.opID, []ops.OpState{ops.OpRunning}, ops.OpSucceeded, detail, SystemActor); err != nil {
		return fmt.Errorf("mark succeeded: %w", err)
	}
	e.bump(ctx, r.opID)
	return nil
}

// sameWaves reports whether a and b hold the same hosts in the same waves.
func sameWaves(a, b []ops.Wave) bool {
	return slices.EqualFunc(a, b, func(x, y ops.Wave) bool { return x.Number == y.Number && slices.Equal(x.Hosts, y.Hosts) })
}

// bake waits for a wave's changes to settle, or until the run stops.
func bake(ctx context.Context, seconds int) error {
	select {
	case <-ctx.Done():
		return errStopped
	case <-time.After(time.Duration(seconds) * time.Second):
		return nil
	}
}

// waveDone reports whether every host of w has its step recorded and, if
// the plan has a health check, every host whose step succeeded has its
// health record too.
func (r *runState) waveDone(w ops.Wave, plan ops.Plan) bool {
	for _, h := range w.Hosts {
		s, ok := r.get(h, PhaseRun)
		if !ok || s.State == ops.StepPending {
			return false
		}
		if plan.HealthCheck != nil && s.State == ops.StepSucceeded {
			if hs, ok := r.get(h, PhaseHealth); !ok || hs.State == ops.StepPending {
				return false
			}
		}
	}
	return true
}

// runPhase dispatches cmd as phase to every host in hosts that has no
// record of that phase yet, at most plan.Concurrency at once. When haltAfter
// ≥ 0 it stops starting new hosts once failures exceed it. It returns
// errStopped if the operation stopped running meanwhile.
func (e *Engine) runPhase(ctx context.Context, r *runState, op ops.Operation, w ops.Wave, hosts []string, phase string, cmd *ops.Command, haltAfter int) error {
	conc := max(op.Plan.Concurrency, 1)
	waveCtx, stopWave := context.WithCancel(ctx)
	defer stopWave()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var stopped error
	var once sync.Once
	stop := func(err error) { once.Do(func() { stopped = err; stopWave() }) }
	for _, h := range hosts {
		if s, ok := r.get(h, phase); ok && s.State != ops.StepPending {
			continue // never twice: any record but pending means it may have run
		}
		select {
		case sem <- struct{}{}:
		case <-waveCtx.Done():
		}
		if waveCtx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := e.dispatchOne(waveCtx, r, op, w.Number, h, phase, cmd)
			if err != nil {
				stop(err)
				return
			}
			if s.State == "" {
				return
			}
			if haltAfter >= 0 && r.failedCount() > haltAfter {
				stop(nil)
			}
		}()
	}
	wg.Wait()
	if stopped != nil {
		return stopped
	}
	if ctx.Err() != nil {
		return errStopped
	}
	return nil
}

// dispatchOne records the step as dispatched (committed, with its audit
// entry), sends it, and records the result. It returns the final record,
// a zero record if nothing was sent, or errStopped / a store error.
// planned is the operation as read at the start of the wave.
func (e *Engine) dispatchOne(ctx context.Context, r *runState, planned ops.Operation, wave int, host, phase string, cmd *ops.Command) (StepRecord, error) {
	if ctx.Err() != nil {
		return StepRecord{}, errStopped
	}
	// Invariant 3: re-read the operation before every dispatch. The step
	// writer does it for every batch of records, just before they commit
	// (batch.go); a host that leaves service first is re-read here, before
	// it leaves.
	op, err := planned, error(nil)
	if _, batched := e.cfg.Ops.(opStateReader); !batched || planned.ID != r.opID || planned.Plan.RemovesCapacity {
		if op, err = e.recheck(ctx, r.opID, planned); err != nil {
			return StepRecord{}, err
		}
	}
	step, secrets, serr := e.buildStep(ctx, op, host, phase, cmd)
	now := e.cfg.Now()
	rec := StepRecord{OpID: op.ID, HostID: host, Phase: phase, Wave: wave, StepID: step.StepID,
		State: ops.StepDispatched, ExitCode: -1, DispatchedAt: now}
	if serr != nil {
		// Nothing can be sent; record the failure without contacting the agent.
		rec.State, rec.Error, rec.FinishedAt = ops.StepFailed, serr.Error(), now
	}
	if serr == nil && phase == PhaseRun && op.Plan.RemovesCapacity {
		// The host leaves service before its step can leave, so that an
		// operation halted or aborted midway does not hand drained hosts
		// back to the floors as capacity; a person returns them.
		if err := e.cfg.Ops.TakeOutOfService(context.WithoutCancel(ctx), op.ID, host); err != nil {
			return StepRecord{}, fmt.Errorf("take %s out of service before its step: %w", host, err)
		}
	}
	// Invariant 4: the record commits BEFORE the step leaves; the store
	// refuses a second record for this op, host and phase, and a pending
	// record (never sent) moves to dispatched only once.
	prev, had := r.get(host, phase)
	var from ops.StepState // "": a new record
	if had && prev.State == ops.StepPending {
		from = prev.State
	}
	err = e.writeStep(context.WithoutCancel(ctx), rec, from) // a halt must not tear a half-written record
	// Recorded, but the operation stopped (or its state could not be read
	// again) before the record committed: not sent (below), and the wave
	// stops — with errStopped, or with the read's error, which halts.
	var stoppedAfter error
	if errors.Is(err, errStoppedAfterRecord) {
		stoppedAfter = errStopped
		if err != errStoppedAfterRecord { // wrapped: the state could not be read again
			stoppedAfter = fmt.Errorf("record dispatch of %s to %s: %w", phase, host, err)
		}
		err = nil
	}
	if errors.Is(err, ErrStepExists) || errors.Is(err, ErrStepState) {
		e.log.WarnContext(ctx, "step already recorded; not dispatching again", slog.String("op", op.ID), slog.String("host", host), slog.String("phase", phase))
		return StepRecord{}, nil
	}
	if err != nil {
		return StepRecord{}, fmt.Errorf("record dispatch of %s to %s: %w", phase, host, err)
	}
	if rec.State == ops.StepFailed {
		r.record(rec)
		return rec, nil
	}
	if ctx.Err() != nil || stoppedAfter != nil {
		// Halted between the record and the send: nothing was sent, so the
		// record goes back to pending and a resume may send it.
		rec.State, rec.Error, rec.FinishedAt = ops.StepPending, "not sent: the operation stopped first", time.Time{}
		if err := e.finish(ctx, r, rec, "op.step_not_sent"); err != nil {
			return StepRecord{}, err
		}
		return StepRecord{}, stoppedAfter
	}

	// In-flight steps finish or time out even after a halt; only new
	// dispatches stop.
	timeout := time.Duration(cmd.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = e.cfg.DefaultTimeout
	}
	// ctx ends on a halt: the Dispatcher honours it only until the step is
	// handed to the agent (see Dispatcher), so a halt stops a step that is
	// still waiting for its host, and never loses one already sent.
	dctx, cancel := context.WithTimeout(ctx, timeout+e.cfg.Grace)
	res, derr := e.cfg.Dispatcher.Dispatch(dctx, host, step)
	cancel()
	rec.FinishedAt = e.cfg.Now()
	if errors.Is(derr, context.Canceled) && ctx.Err() != nil {
		rec.State, rec.Error, rec.FinishedAt = ops.StepPending, "not sent: the operation stopped first", time.Time{}
		return StepRecord{}, e.finish(ctx, r, rec, "op.step_not_sent")
	}
	kind := "op.step_result"
	switch {
	case derr != nil && isOutcomeUnknown(derr):
		// Handed to the agent, then contact was lost: it may have run.
		// Not a failure the executor saw, and not retried; the agent's
		// ledger settles it when the agent returns (SettleFromAgent).
		rec.State, rec.Error, kind = ops.StepUnknown, "lost contact: "+derr.Error(), "op.step_unknown"
	case derr != nil && errors.Is(derr, context.DeadlineExceeded):
		rec.State, rec.Error = ops.StepFailed, fmt.Sprintf("timed out: no result within %s", timeout+e.cfg.Grace)
	case derr != nil:
		rec.State, rec.Error = ops.StepFailed, unreachablePrefix+derr.Error()
	default:
		rec.ExitCode, rec.Output = res.ExitCode, redact(res.Output, secrets, e.cfg.MaxOutputBytes)
		switch {
		case res.TimedOut:
			rec.State, rec.Error = ops.StepFailed, fmt.Sprintf("timed out after %d s on the host", cmd.TimeoutSeconds)
		case res.Error != "":
			rec.State, rec.Error = ops.StepFailed, redact(res.Error, secrets, 4096)
		case res.ExitCode != 0:
			rec.State = ops.StepFailed
		default:
			rec.State = ops.StepSucceeded
		}
	}
	return rec, e.finish(ctx, r, rec, kind)
}

// unreachablePrefix starts the error of a step that never reached its host.
const unreachablePrefix = "unreachable: "

// finish records a dispatched step's outcome with its audit entry.
func (e *Engine) finish(ctx context.Context, r *runState, rec StepRecord, kind string) error {
	if kind == "" {
		kind = "op.step_result"
	}
	ctx = context.WithoutCancel(ctx)
	at := rec.FinishedAt
	if at.IsZero() {
		at = e.cfg.Now()
	}
	if kind == "op.step_result" {
		// The common case: batched with other hosts' results (batch.go).
		if err := e.writeStep(ctx, rec, ops.StepDispatched); err != nil {
			return fmt.Errorf("record result of %s on %s: %w", rec.Phase, rec.HostID, err)
		}
		r.record(rec)
		return nil
	}
	data := map[string]any{"host": rec.HostID, "phase": rec.Phase, "wave": rec.Wave, "step_id": rec.StepID,
		"state": string(rec.State), "exit_code": rec.ExitCode, "error": rec.Error}
	if kind == "op.step_unknown" {
		// The layout Recover writes for this kind (version 1); why is in
		// the step record.
		data = map[string]any{"host": rec.HostID, "phase": rec.Phase, "wave": rec.Wave, "step_id": rec.StepID}
	}
	err := e.inStepTx(ctx, func(tx Tx) error {
		if err := tx.UpdateExecStep(ctx, rec, ops.StepDispatched); err != nil {
			return err
		}
		if _, err := tx.BumpExecVersion(ctx, rec.OpID); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: SystemActor,
			Subject: "op:" + rec.OpID, Time: at, Data: data})
	})
	if err != nil {
		return fmt.Errorf("record result of %s on %s: %w", rec.Phase, rec.HostID, err)
	}
	r.record(rec)
	e.notify(rec.OpID)
	return nil
}

// groupedStore is a Store whose small transactions may share a commit
// with others made at the same time (store.DB.InTxGrouped).
type groupedStore interface {
	InTxGrouped(ctx context.Context, fn func(Tx) error) error
}

// inStepTx runs one step's record (its dispatch or its result, with the
// audit entry) in a transaction that may share its commit with other
// hosts' records: a wave on N hosts then waits for far fewer than 2N
// commits. Each record still commits before the step is sent, or before
// its result counts.
func (e *Engine) inStepTx(ctx context.Context, fn func(Tx) error) error {
	if g, ok := e.cfg.Store.(groupedStore); ok {
		return g.InTxGrouped(ctx, fn)
	}
	return e.cfg.Store.InTx(ctx, fn)
}

// opStateReader is an Ops that reads an operation's state without its
// plan (ops.Manager.State).
type opStateReader interface {
	State(ctx context.Context, id string) (ops.OpState, error)
}

// recheck is reread for a dispatch: it reads the operation's state from
// the store and, when it is still running, returns planned — the
// operation read at the start of the wave, whose plan and parameters
// cannot change once approved — instead of loading the whole plan again,
// which on N hosts made a wave cost O(N²).
func (e *Engine) recheck(ctx context.Context, opID string, planned ops.Operation) (ops.Operation, error) {
	sr, ok := e.cfg.Ops.(opStateReader)
	if !ok || planned.ID != opID {
		return e.reread(ctx, opID)
	}
	st, err := sr.State(ctx, opID)
	if err != nil {
		if ctx.Err() != nil {
			return planned, errStopped
		}
		return planned, fmt.Errorf("load op %s: %w", opID, err)
	}
	if st != ops.OpRunning {
		return planned, errStopped
	}
	planned.State = st
	return planned, nil
}

// reread loads the operation and returns errStopped unless it is running.
func (e *Engine) reread(ctx context.Context, opID string) (ops.Operation, error) {
	op, err := e.cfg.Ops.Get(ctx, opID)
	if err != nil {
		if ctx.Err() != nil {
			return op, errStopped
		}
		return op, fmt.Errorf("load op %s: %w", opID, err)
	}
	if op.State != ops.OpRunning {
		return op, errStopped
	}
	return op, nil
}

// haltWave runs the plan's rollback on the wave's hosts that were sent
// their step (while the op is still running, so invariant 3's check is the
// same for every dispatch), then halts with detail.
func (e *Engine) haltWave(ctx context.Context, r *runState, w ops.Wave, detail string) error {
	op, err := e.reread(ctx, r.opID)
	if err != nil {
		return err
	}
	if rb := op.Plan.Rollback; rb != nil {
		var hosts []string
		for _, h := range w.Hosts {
			// Not to a host whose step never reached it (unreachable) or
			// whose agent cannot be reached (unknown).
			if s, ok := r.get(h, PhaseRun); ok && s.State != ops.StepPending && s.State != ops.StepUnknown &&
				!strings.HasPrefix(s.Error, unreachablePrefix) {
				hosts = append(hosts, h)
			}
		}
		if err := e.runPhase(ctx, r, op, w, hosts, PhaseRollback, rb, -1); err != nil {
			if errors.Is(err, errStopped) {
				return err
			}
			detail += fmt.Sprintf(" The rollback could not be completed: %v.", err)
		} else {
			var bad []string
			for _, h := range hosts {
				if s, ok := r.get(h, PhaseRollback); ok && s.State != ops.StepSucceeded {
					bad = append(bad, h)
				}
			}
			if len(bad) == 0 {
				detail += fmt.Sprintf(" Rolled back %d host(s).", len(hosts))
			} else {
				detail += fmt.Sprintf(" Rollback failed on %d of %d host(s): %s.", len(bad), len(hosts), ops.HostList(bad))
			}
		}
	}
	e.haltAuto(ctx, r.opID, detail)
	return nil
}

// haltAuto halts the operation on the executor's own decision.
func (e *Engine) haltAuto(ctx context.Context, opID, detail string) {
	ctx = context.WithoutCancel(ctx)
	if err := e.cfg.Ops.SetState(ctx, opID, []ops.OpState{ops.OpRunning}, ops.OpHalted, detail, SystemActor); err != nil {
		e.log.ErrorContext(ctx, "halt op", slog.String("op", opID), slog.Any("err", err))
	}
	e.log.WarnContext(ctx, "op halted", slog.String("op", opID), slog.String("detail", detail))
	e.bump(ctx, opID)
}

// buildStep turns a command into the wire step for one host. The plan's
// argv and script text go out exactly as approved; parameters travel in
// the environment (ops.Command.Env), and each secret the command reads is
// resolved now and put in its environment variable (ops.Command.SecretEnv).
//
// Secrets go in the environment, not argv or stdin: argv is readable by
// every user of the host (ps, /proc/PID/cmdline) and is what error
// messages quote; stdin carries one value and belongs to the script; a
// process's environment is readable only by its own user and root, holds
// any number of named values, and every program and shell can read it.
// buildStep returns the resolved values so output can be redacted of them
// (and their encodings) again on this side.
func (e *Engine) buildStep(ctx context.Context, op ops.Operation, host, phase string, cmd *ops.Command) (wire.Step, []string, error) {
	s := wire.Step{StepID: StepID(op.ID, host, phase), OpID: op.ID, Phase: phase,
		Argv: append([]string(nil), cmd.Argv...), Shell: cmd.Shell,
		TimeoutSeconds: cmd.TimeoutSeconds, MaxOutputBytes: cmd.MaxOutputBytes}
	for _, a := range s.Argv {
		if strings.Contains(a, "{{secret:") {
			// A plan made before secrets moved to the environment.
			return s, nil, errors.New("this plan puts a secret on the command line, which Interlock no longer sends; abort the operation and run it again for a plan that passes it in the environment")
		}
	}
	if len(cmd.Env)+len(cmd.SecretEnv) > 0 {
		s.Env = make(map[string]string, len(cmd.Env)+len(cmd.SecretEnv))
	}
	maps.Copy(s.Env, cmd.Env)
	var values []string
	for _, name := range slices.Sorted(maps.Keys(cmd.SecretEnv)) {
		ref := cmd.SecretEnv[name]
		if !slices.Contains(op.Plan.SecretRefs, ref) {
			return s, nil, fmt.Errorf("the step reads %s, which its plan does not list among the secrets it reads", ref)
		}
		if e.cfg.Secrets == nil {
			return s, nil, fmt.Errorf("the step needs %s but this server has no secret store", ref)
		}
		v, err := e.cfg.Secrets.Resolve(ctx, op, ref)
		if err != nil {
			return s, nil, fmt.Errorf("could not resolve %s: %v", ref, err)
		}
		s.Env[name] = v
		values = append(values, v)
	}
	s.Redact = values
	return s, values, nil
}

// StepID is the ID of a host's phase in an operation: the same inputs
// always give the same ID, so an agent can refuse a step it already ran.
func StepID(opID, hostID, phase string) string {
	h := sha256.Sum256([]byte(opID + "\x00" + hostID + "\x00" + phase))
	return "stp_" + hex.EncodeToString(h[:16])
}

// redact removes secret values and their encodings from s (again: the
// agent already did, but the server does not trust it to) and caps it at
// n bytes.
func redact(s string, secrets []string, n int) string {
	s = redactpkg.String(s, secrets)
	if len(s) > n {
		s = s[:n]
	}
	return s
}

func failing(vs []ops.Verdict) string {
	var msgs []string
	for _, v := range vs {
		if !v.Pass {
			msgs = append(msgs, v.Message)
		}
	}
	return strings.Join(msgs, " ")
}

func thresholdSentence(wave int, bad []string, haltAfter int) string {
	where := "Halted"
	if wave > 0 {
		where = fmt.Sprintf("Halted in wave %d", wave)
	}
	return fmt.Sprintf("%s: %d host(s) failed or were unreachable (%s), more than the %d this plan allows.",
		where, len(bad), ops.HostList(bad), haltAfter)
}
