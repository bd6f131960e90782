// Package exec is Interlock's wave executor: it runs an approved
// operation's plan host by host — the canary wave of one host first, then
// the runbook's waves with bounded concurrency — and records every step.
//
// It owns the step records (one per operation, host and phase) and the
// rules that keep execution safe:
//
//   - Nothing is sent to an agent unless its operation is in state running;
//     the operation is re-read before every wave and every dispatch, and the
//     guardrails are re-checked against live health before every wave
//     (DESIGN.md §4, invariant 3).
//   - A step is recorded as dispatched, durably and with its audit entry,
//     BEFORE it is sent; the store refuses a second record for the same
//     (operation, host, phase), so no host runs a step twice, also across a
//     crash (invariant 4). After a restart, [Engine.Recover] marks in-flight
//     steps unknown and leaves the operation for a person.
//   - Failures (non-zero exit, timeout, unreachable host, unknown) above the
//     plan's threshold, a failed health check or a failing guardrail halt
//     the operation; an optional rollback runs on the halted wave's hosts.
//
// Only internal/app (which wires it) and internal/api (routes) import it.
package exec

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
)

// Phases of a host's work in one operation.
const (
	PhaseRun      = "run"      // the plan's step
	PhaseHealth   = "health"   // the plan's health check, after the wave baked
	PhaseRollback = "rollback" // the plan's rollback, on a halted wave's hosts
)

// Dispatcher sends one step to one host's agent and waits for its result.
// The agent hub implements it.
//
// Dispatch MUST return an error when the host is unreachable or no result
// arrives in time; the executor counts both as a failed step. ctx is
// cancelled when the operation halts: Dispatch MUST honour that only until
// the step is handed to the agent, returning an error wrapping
// context.Canceled to say "not sent" (the step goes back to pending), and
// MUST NOT abandon a step already handed over because of it. A returned
// StepResult is the agent's report (non-zero ExitCode, TimedOut or Error
// are failures too).
type Dispatcher interface {
	Dispatch(ctx context.Context, hostID string, step wire.Step) (wire.StepResult, error)
}

// Guard re-checks an operation's guardrails (capacity floors against live
// health, freezes, …) before a wave. internal/ops implements it.
//
// The executor halts the operation when CheckWave returns an error or any
// verdict with Pass false; the failing verdicts' messages become the
// operation's detail.
//
// CheckResume is asked before a stopped operation resumes, with the plan's
// hosts that have no step yet; a returned error refuses the resume and
// the operation stays as it is.
type Guard interface {
	CheckWave(ctx context.Context, op ops.Operation, wave int) ([]ops.Verdict, error)
	CheckResume(ctx context.Context, op ops.Operation, untouched []string) error
}

// Ops is the part of internal/ops' operation store the executor needs.
type Ops interface {
	// Get returns the operation as it is now in the store (never a cached
	// copy: the executor relies on it to notice a halt from elsewhere).
	Get(ctx context.Context, id string) (ops.Operation, error)
	// SetState moves the operation from one of the states in from to to,
	// with detail as the operation's Detail (a sentence saying why), and
	// appends the matching audit entry (e.g. "op.halted", "op.succeeded",
	// "op.needs_attention", "op.aborted", "op.resumed") with actor as its
	// Actor, in the same transaction. It MUST change nothing and return an
	// error when the current state is not in from (compare-and-set).
	SetState(ctx context.Context, id string, from []ops.OpState, to ops.OpState, detail string, actor string) error
	// ListByState returns every operation currently in state.
	ListByState(ctx context.Context, state ops.OpState) ([]ops.Operation, error)
	// TakeOutOfService takes host out of service for operation opID (and
	// audits it), doing nothing if it is out already. The executor calls it
	// before a capacity-removing step is sent to the host.
	TakeOutOfService(ctx context.Context, opID, hostID string) error
}

// SecretResolver resolves a plan's "secret:PATH" reference to its value at
// dispatch time. internal/kms (through the app) implements it.
type SecretResolver interface {
	Resolve(ctx context.Context, op ops.Operation, ref string) (string, error)
}

// StepRecord is one host's work in one phase of one operation.
type StepRecord struct {
	OpID   string
	HostID string
	Phase  string // PhaseRun, PhaseHealth or PhaseRollback
	Wave   int
	StepID string
	State  ops.StepState
	// ExitCode is the command's exit status; -1 when it has none (not yet
	// finished, unreachable, timed out).
	ExitCode int
	// Output is the agent's capped, redacted output.
	Output string
	// Error says why a step failed without an exit status ("unreachable: …").
	Error        string
	DispatchedAt time.Time
	FinishedAt   time.Time // zero until a result (or a person's mark) is recorded
}

var (
	// ErrStepExists is returned (wrapped) by Tx.InsertExecStep when the
	// operation already has a record for that host and phase.
	ErrStepExists = errors.New("step already recorded for this operation, host and phase")
	// ErrStepState is returned (wrapped) by Tx.UpdateExecStep when the
	// record does not exist or is not in the expected state.
	ErrStepState = errors.New("step is not in the expected state")
)

// Tx is one transaction on the executor's tables. *store.Tx implements it.
type Tx interface {
	audit.Tx
	// InsertExecStep records a new step. It MUST fail with an error
	// wrapping ErrStepExists when (OpID, HostID, Phase) is already recorded.
	InsertExecStep(ctx context.Context, r StepRecord) error
	// UpdateExecStep sets State, ExitCode, Output, Error and FinishedAt
	// (and DispatchedAt unless r's is zero) of the record (r.OpID, r.HostID,
	// r.Phase) if its state is from, and fails with an error wrapping
	// ErrStepState otherwise. This compare-and-set is what lets a pending
	// record be dispatched only once.
	UpdateExecStep(ctx context.Context, r StepRecord, from ops.StepState) error
	// BumpExecVersion increments the operation's change counter (starting
	// at 1) and returns the new value.
	BumpExecVersion(ctx context.Context, opID string) (int64, error)
}

// Store holds the executor's step records. store.(*DB).ExecStore
// implements it.
type Store interface {
	InTx(ctx context.Context, fn func(Tx) error) error
	// ExecSteps returns every record of the operation, ordered by wave,
	// then dispatch time, then host.
	ExecSteps(ctx context.Context, opID string) ([]StepRecord, error)
	// ExecVersion returns the operation's change counter (0 when nothing
	// was recorded yet).
	ExecVersion(ctx context.Context, opID string) (int64, error)
}

// Config configures an Engine. Store, Ops, Guard and Dispatcher are
// required; the rest has defaults.
type Config struct {
	Store      Store
	Ops        Ops
	Guard      Guard
	Dispatcher Dispatcher
	// Secrets resolves the plan's SecretRefs. Nil means a plan that carries
	// secret references fails each step it would send.
	Secrets SecretResolver
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// Grace is how long past a step's own timeout the executor waits for
	// its result before counting it timed out. Zero means 30 s.
	Grace time.Duration
	// DefaultTimeout applies to a command with no TimeoutSeconds. Zero
	// means 5 minutes.
	DefaultTimeout time.Duration
	// PollInterval is how often a running operation is re-read to notice a
	// halt made elsewhere (another server), and how often Wait re-checks.
	// Zero means 500 ms, which keeps the kill switch under a second.
	PollInterval time.Duration
	// MaxOutputBytes caps the output stored per step. Zero means 64 KiB.
	MaxOutputBytes int
	// Runs, when several servers share the database, makes one server at
	// a time run each operation (cluster.go); nil means this one runs all.
	Runs RunClaims
	// RecordLinger is how long a small batch of step records (batch.go)
	// waits for more before it is written. Results come back over a
	// wave's length, a few per millisecond; without a linger each pays for
	// a commit of its own, with one they share it, and a step waits that
	// much longer to be sent or to count. Zero writes at once; the server
	// uses DefaultRecordLinger.
	RecordLinger time.Duration
	// Announce, if set, tells the other servers that an operation changed
	// (they call Changed), so their long-polls answer at once rather than
	// at their next poll.
	Announce func(opID string)
}

// Engine runs approved operations. Create it with New; it is safe for
// concurrent use.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	base context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	runs    map[string]*run
	changed map[string]chan struct{} // closed and replaced on every change of an op
	writer  stepWriter               // batches step records (batch.go)
	closed  bool
	wg      sync.WaitGroup
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an Engine. Call Recover once at server start, before Start.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Ops == nil || cfg.Guard == nil || cfg.Dispatcher == nil {
		return nil, errors.New("exec: Config needs Store, Ops, Guard and Dispatcher")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = 5 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = 64 << 10
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, stop := context.WithCancel(context.Background())
	return &Engine{
		cfg: cfg, log: log, base: base, stop: stop,
		runs:    map[string]*run{},
		changed: map[string]chan struct{}{},
	}, nil
}

// Shutdown stops every run from dispatching anything new and waits until
// in-flight steps have reported (or ctx ends). Operations stay in state
// running; the next server start's Recover hands them to a person.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.stop()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Drain waits, without stopping anything, until no operation is running
// on this engine (every run has finished, halted or noticed a halt and its
// in-flight steps have reported), or ctx ends.
func (e *Engine) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notify wakes everyone waiting for a change of opID.
func (e *Engine) notify(opID string) {
	e.Changed(opID)
	if e.cfg.Announce != nil {
		go e.cfg.Announce(opID)
	}
}

// Changed wakes this engine's long-polls (Wait) on opID at once: another
// server sharing the database changed it.
func (e *Engine) Changed(opID string) {
	e.mu.Lock()
	if ch, ok := e.changed[opID]; ok {
		close(ch)
		delete(e.changed, opID)
	}
	e.mu.Unlock()
}

// forget drops opID's change channel if it is still ch, so long-polls on
// IDs that will never change (unknown, finished) leave nothing behind.
// Another waiter on ch notices changes at its next poll.
func (e *Engine) forget(opID string, ch <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.changed[opID]; ok && (<-chan struct{})(cur) == ch {
		delete(e.changed, opID)
	}
}

// changes returns a channel closed at the next change of opID.
func (e *Engine) changes(opID string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.changed[opID]
	if !ok {
		ch = make(chan struct{})
		e.changed[opID] = ch
	}
	return ch
}

// bump records that something about opID changed (for Wait) outside a
// step transaction, e.g. after a state change made through Ops.
func (e *Engine) bump(ctx context.Context, opID string) {
	ctx = context.WithoutCancel(ctx)
	err := e.cfg.Store.InTx(ctx, func(tx Tx) error {
		_, err := tx.BumpExecVersion(ctx, opID)
		return err
	})
	if err != nil {
		e.log.WarnContext(ctx, "bump op version", slog.String("op", opID), slog.Any("err", err))
	}
	e.notify(opID)
}
