package exec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Settling steps from agents' ledgers.
//
// A step is unknown when the server lost track of it while it ran: the
// server restarted (Recover), or the agent's connection ended after the
// step was handed over (a Dispatcher error with OutcomeUnknown). The agent
// remembers every step it ran and how it ended (internal/agent's ledger)
// and reports results no server took at each connect; the hub hands such
// a late result to SettleFromAgent, which records it — once — as the
// step's outcome, with an "op.step_settled" audit entry naming its source.
// When nothing of an operation that needs attention is unknown any more,
// it continues by itself if no host failed, and is halted for a person
// otherwise (see continueSettled).

// SourceAgentLedger names where a settled outcome came from, in its audit entry.
const SourceAgentLedger = "agent ledger"

// StepFinder finds a step record by its step ID. store's exec store
// implements it; without it SettleFromAgent refuses every late result.
type StepFinder interface {
	ExecStepByStepID(ctx context.Context, stepID string) (StepRecord, bool, error)
}

// outcomeUnknown is implemented by Dispatcher errors that mean the step
// was handed to the agent and then contact was lost: it may have run.
type outcomeUnknown interface{ OutcomeUnknown() bool }

func isOutcomeUnknown(err error) bool {
	var ou outcomeUnknown
	return errors.As(err, &ou) && ou.OutcomeUnknown()
}

// RetryLaterError says a late result came for a step whose dispatch is
// still being recorded: the agent should send it again in a moment.
type RetryLaterError struct{ StepID string }

func (e RetryLaterError) Error() string {
	return fmt.Sprintf("step %s is still being recorded as dispatched; send its result again in a moment", e.StepID)
}

// RetryLater marks the error for the hub, which answers 503 with Retry-After.
func (RetryLaterError) RetryLater() bool { return true }

// SettleFromAgent records a result host's agent reported for a step no
// dispatch was waiting for. It is accepted only for a step of that host:
// an unknown step is settled from it; a step that already has an outcome
// keeps it (the report is a replay; nil is returned, nothing changes); a
// step still marked dispatched gets a RetryLaterError; anything else is a
// usererr the agent stops retrying on.
func (e *Engine) SettleFromAgent(ctx context.Context, hostID string, res wire.StepResult) error {
	finder, ok := e.cfg.Store.(StepFinder)
	if !ok {
		return errNoSuchStep(res.StepID)
	}
	rec, found, err := finder.ExecStepByStepID(ctx, res.StepID)
	if err != nil {
		return err
	}
	if !found || rec.HostID != hostID {
		return errNoSuchStep(res.StepID)
	}
	switch rec.State {
	case ops.StepDispatched:
		return RetryLaterError{StepID: res.StepID}
	case ops.StepUnknown:
	case ops.StepPending:
		return errNoSuchStep(res.StepID)
	default:
		return nil // settled already: never twice
	}
	op, err := e.cfg.Ops.Get(ctx, rec.OpID)
	if err != nil {
		return fmt.Errorf("load op %s: %w", rec.OpID, err)
	}
	var secrets []string
	if cmd := phaseCommand(op.Plan, rec.Phase); cmd != nil {
		// The values the agent was sent, to redact its output again here.
		if _, values, err := e.buildStep(ctx, op, hostID, rec.Phase, cmd); err == nil {
			secrets = values
		}
	}
	settled := rec
	settled.FinishedAt = e.cfg.Now()
	settled.ExitCode, settled.Output, settled.Error = res.ExitCode, redact(res.Output, secrets, e.cfg.MaxOutputBytes), ""
	switch {
	case res.TimedOut:
		settled.State, settled.Error = ops.StepFailed, "timed out on the host"
	case res.Error != "":
		settled.State, settled.Error = ops.StepFailed, redact(res.Error, secrets, 4096)
	case res.ExitCode != 0:
		settled.State = ops.StepFailed
	default:
		settled.State = ops.StepSucceeded
	}
	err = e.cfg.Store.InTx(ctx, func(tx Tx) error {
		if err := tx.UpdateExecStep(ctx, settled, ops.StepUnknown); err != nil {
			return err
		}
		if _, err := tx.BumpExecVersion(ctx, rec.OpID); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "op.step_settled", Version: 1, Actor: SystemActor,
			Subject: "op:" + rec.OpID, Time: settled.FinishedAt,
			Data: map[string]any{"host": hostID, "phase": rec.Phase, "wave": rec.Wave, "step_id": rec.StepID,
				"state": string(settled.State), "exit_code": settled.ExitCode, "error": settled.Error,
				"source": SourceAgentLedger}})
	})
	if errors.Is(err, ErrStepState) {
		return nil // settled (or marked by a person) meanwhile: the first outcome stands
	}
	if err != nil {
		return fmt.Errorf("settle step %s of op %s: %w", rec.StepID, rec.OpID, err)
	}
	e.log.InfoContext(ctx, "step settled from the agent's ledger", slog.String("op", rec.OpID), slog.String("host", hostID),
		slog.String("phase", rec.Phase), slog.String("state", string(settled.State)))
	e.notify(rec.OpID)
	if e.running(rec.OpID) == nil {
		e.continueSettled(ctx, rec.OpID)
	}
	return nil
}

func errNoSuchStep(stepID string) error {
	return usererr.New(usererr.Conflict, "unknown_step", "No dispatch to this host is waiting for step %q, and it is not a step of this host whose outcome is unknown; the result was dropped.", stepID)
}

func phaseCommand(p ops.Plan, phase string) *ops.Command {
	switch phase {
	case PhaseRun:
		return &p.Step
	case PhaseHealth:
		return p.HealthCheck
	case PhaseRollback:
		return p.Rollback
	}
	return nil
}

// continueSettled decides what happens to an operation that needs
// attention once none of its steps is unknown: with no failed host it
// continues (as the system, after the guardrails' resume check); with any
// failed host it is halted, so that a person reads the failures before
// anything else runs — also when the plan would allow them, because the
// executor did not see them happen (a canary's failure, for one, must stop
// the rest). Nothing is rolled back here.
func (e *Engine) continueSettled(ctx context.Context, opID string) {
	ctx = context.WithoutCancel(ctx)
	op, err := e.cfg.Ops.Get(ctx, opID)
	if err != nil || op.State != ops.OpAttention {
		return
	}
	steps, err := e.cfg.Store.ExecSteps(ctx, opID)
	if err != nil {
		e.log.ErrorContext(ctx, "load steps to continue a settled op", slog.String("op", opID), slog.Any("err", err))
		return
	}
	var failed []string
	for _, s := range steps {
		if s.State == ops.StepUnknown {
			return // someone's outcome is still unknown: a person, or its agent, settles it
		}
		if s.State == ops.StepFailed && (s.Phase == PhaseRun || s.Phase == PhaseHealth) {
			failed = append(failed, fmt.Sprintf("%s (%s: %s)", s.HostID, s.Phase, failureText(s)))
		}
	}
	if len(failed) > 0 {
		detail := fmt.Sprintf("Halted: every step whose outcome was unknown is settled from its agent's ledger, and %d host(s) failed: %s. Nothing was rolled back; check them, then resume or abort.",
			len(failed), ops.HostList(failed))
		if err := e.cfg.Ops.SetState(ctx, opID, []ops.OpState{ops.OpAttention}, ops.OpHalted, detail, SystemActor); err != nil {
			e.log.WarnContext(ctx, "halt a settled op", slog.String("op", opID), slog.Any("err", err))
		}
		e.bump(ctx, opID)
		return
	}
	if err := e.cfg.Guard.CheckResume(ctx, op, untouchedHosts(op.Plan, steps)); err != nil {
		e.log.WarnContext(ctx, "a settled op stays for a person: the guardrails refuse to resume it", slog.String("op", opID), slog.Any("err", err))
		detail := "Every step whose outcome was unknown is settled from its agent's ledger and all succeeded, but the guardrails refuse to continue: " +
			err.Error() + " Check the hosts, then resume or abort."
		if err := e.cfg.Ops.SetState(ctx, opID, []ops.OpState{ops.OpAttention}, ops.OpAttention, detail, SystemActor); err != nil {
			e.log.WarnContext(ctx, "explain why a settled op stays for a person", slog.String("op", opID), slog.Any("err", err))
		}
		e.bump(ctx, opID)
		return
	}
	if err := e.cfg.Ops.SetState(ctx, opID, []ops.OpState{ops.OpAttention}, ops.OpRunning,
		"Resumed by the system: every step whose outcome was unknown was settled from its agent's ledger, and all succeeded.", SystemActor); err != nil {
		return // another server (or a person) moved it first
	}
	if err := e.launch(ctx, opID); err != nil {
		e.log.ErrorContext(ctx, "continue a settled op", slog.String("op", opID), slog.Any("err", err))
	}
}

func failureText(s StepRecord) string {
	if s.Error != "" {
		return s.Error
	}
	return fmt.Sprintf("exit %d", s.ExitCode)
}

// unknownIn returns the hosts of w whose phase step is unknown.
func (r *runState) unknownIn(w ops.Wave, phase string) []string {
	var out []string
	for _, h := range w.Hosts {
		if s, ok := r.get(h, phase); ok && s.State == ops.StepUnknown {
			out = append(out, h)
		}
	}
	return out
}

// lostContact moves a running operation to needs_attention because the
// agents of hosts vanished while their phase step ran. Nothing is sent to
// them — no rollback either: they cannot be reached, and what ran is not
// known. Their agents settle the steps when they return.
func (e *Engine) lostContact(ctx context.Context, opID string, wave int, phase string, hosts []string) error {
	what := "step"
	if phase == PhaseHealth {
		what = "health check"
	}
	detail := fmt.Sprintf("Needs attention in wave %d: contact with the agent of %s was lost while its %s ran, so its outcome is unknown. Nothing was rolled back and nothing more is sent. The operation continues by itself when the agents return and report from their ledgers; or check the hosts, mark them (interlock ops mark), then resume or abort.",
		wave, ops.HostList(hosts), what)
	if err := e.cfg.Ops.SetState(context.WithoutCancel(ctx), opID, []ops.OpState{ops.OpRunning}, ops.OpAttention, detail, SystemActor); err != nil {
		if ctx.Err() != nil {
			return errStopped
		}
		return fmt.Errorf("mark op %s needs attention: %w", opID, err)
	}
	e.log.WarnContext(ctx, "op needs attention: lost contact with agents mid-step", slog.String("op", opID), slog.Any("hosts", hosts))
	e.bump(ctx, opID)
	return errStopped
}
