package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// QueuedStep is one row of the step queue.
type QueuedStep struct {
	StepID, HostID string
	Origin         string // the server whose executor waits for the result
	Sealed         []byte // the wire.Step, sealed with the root key; nil once done
	State          string // queued, taken or done
	TakenBy        string
	Outcome        string // when done: result, lost or failed
	Result         string // a wire.StepResult (result) or an error sentence
}

// Outcomes of a queued step.
const (
	OutcomeResult = "result" // the agent reported; Result is the wire.StepResult
	OutcomeLost   = "lost"   // handed to the agent, then contact was lost: it may have run
	OutcomeFailed = "failed" // not run or no result in time; Result says why
)

// QueueStore is the step queue. internal/store implements it.
type QueueStore interface {
	EnqueueStep(ctx context.Context, q QueuedStep) error
	// QueuedHosts lists the hosts with a queued (not yet taken) step.
	QueuedHosts(ctx context.Context) ([]string, error)
	// ClaimSteps marks the queued steps of hosts taken by server and
	// returns them; rows another server is claiming are skipped (FOR
	// UPDATE SKIP LOCKED), never taken twice.
	ClaimSteps(ctx context.Context, server string, hosts []string) ([]QueuedStep, error)
	// RequeueStep puts a step server took back in the queue (it could
	// not hand it over: the agent left for another server).
	RequeueStep(ctx context.Context, stepID, server string) error
	// FinishStep records the outcome of a step of hostID unless it has
	// one; it reports whether this call recorded it.
	FinishStep(ctx context.Context, stepID, hostID, outcome, result string) (bool, error)
	// CancelQueued deletes a step nobody took yet; true if it did.
	CancelQueued(ctx context.Context, stepID string) (bool, error)
	StepStatus(ctx context.Context, stepID string) (QueuedStep, error)
	DeleteStep(ctx context.Context, stepID string) error
}

// Local is this server's agent hub.
type Local interface {
	Connected(hostID string) bool
	Dispatch(ctx context.Context, hostID string, step wire.Step) (wire.StepResult, error)
}

// Sealer seals queued steps (they may carry secret values) with the root
// key every server shares.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// QueueConfig configures a [Queue].
type QueueConfig struct {
	Store    QueueStore
	Local    Local
	Sealer   Sealer
	Registry *Registry
	// NotSent tells a Local.Dispatch error that means the step never
	// reached the agent (it may be connected elsewhere now).
	NotSent func(error) bool
	// Grace is how long a step waits in the queue for a server that holds
	// its agent; 0 means 5 s.
	Grace time.Duration
	// Margin is added to a step's timeout before the wait for its result
	// ends; 0 means 10 s.
	Margin time.Duration
	// Poll is how often the queue is read when no notification came; 0
	// means 250 ms.
	Poll time.Duration
	// Wake, if set, delivers a value whenever another server wrote to the
	// queue (PostgreSQL LISTEN/NOTIFY); Notify tells the others.
	Wake   <-chan struct{}
	Notify func(ctx context.Context)
	Log    *slog.Logger
}

// Queue is the executor's Dispatcher when several servers share the
// database: a step for an agent connected here goes straight to the hub;
// any other goes through the step queue to the server that holds the
// agent's connection, whose worker hands it over and writes the result
// back.
type Queue struct {
	cfg QueueConfig
	log *slog.Logger

	mu      sync.Mutex
	waiters map[string]chan struct{} // step ID → woken at each queue change
}

// NewQueue returns a Queue; call Run to work the queue.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 10 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Notify == nil {
		cfg.Notify = func(context.Context) {}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Queue{cfg: cfg, log: cfg.Log, waiters: map[string]chan struct{}{}}
}

func stepAAD(stepID string) []byte { return []byte("cluster/step-queue:" + stepID) }

// lostError is the Dispatch error for a step handed to its agent whose
// server then went away: the step may have run.
type lostError struct{ error }

func (e lostError) Unwrap() error      { return e.error }
func (lostError) OutcomeUnknown() bool { return true }

func newLost(format string, a ...any) error { return lostError{fmt.Errorf(format, a...)} }

// ErrNoServerHasAgent is returned (wrapped) when no server took a queued
// step within the grace: the host's agent is not connected anywhere.
var ErrNoServerHasAgent = errors.New("its agent is not connected to any server")

// Dispatch implements the executor's Dispatcher (see exec.Dispatcher for
// the contract): ctx is honoured until a server took the step.
func (q *Queue) Dispatch(ctx context.Context, hostID string, step wire.Step) (wire.StepResult, error) {
	if q.cfg.Local.Connected(hostID) {
		return q.cfg.Local.Dispatch(ctx, hostID, step)
	}
	body, err := json.Marshal(step)
	if err != nil {
		return wire.StepResult{}, fmt.Errorf("encode step: %w", err)
	}
	sealed, err := q.cfg.Sealer.Seal(body, stepAAD(step.StepID))
	if err != nil {
		return wire.StepResult{}, fmt.Errorf("seal step: %w", err)
	}
	wake := q.waiter(step.StepID)
	defer q.dropWaiter(step.StepID)
	bg := context.WithoutCancel(ctx)
	if err := q.cfg.Store.EnqueueStep(bg, QueuedStep{StepID: step.StepID, HostID: hostID, Origin: q.cfg.Registry.ID(), Sealed: sealed}); err != nil {
		return wire.StepResult{}, err
	}
	defer func() { _ = q.cfg.Store.DeleteStep(bg, step.StepID) }()
	q.cfg.Notify(bg)
	timeout := step.TimeoutSeconds
	if timeout <= 0 {
		timeout = wire.DefaultStepTimeoutSeconds
	}
	grace := time.NewTimer(q.cfg.Grace)
	defer grace.Stop()
	deadline := time.NewTimer(q.cfg.Grace + time.Duration(timeout)*time.Second + q.cfg.Margin)
	defer deadline.Stop()
	poll := time.NewTicker(q.cfg.Poll)
	defer poll.Stop()
	ctxDone := ctx.Done()
	var lastAliveCheck time.Time
	for {
		st, err := q.cfg.Store.StepStatus(bg, step.StepID)
		if err != nil {
			return wire.StepResult{}, err
		}
		switch st.State {
		case "done":
			return finished(hostID, st)
		case "taken":
			ctxDone = nil // handed over: a halt no longer stops it
			if time.Since(lastAliveCheck) > time.Second {
				lastAliveCheck = time.Now()
				alive, err := q.cfg.Registry.Alive(bg, st.TakenBy)
				if err == nil && !alive {
					// Its server died while the agent held the step: the agent
					// may report elsewhere (FinishStep from the results route),
					// or its ledger settles the step later.
					if ok, _ := q.cfg.Store.FinishStep(bg, step.StepID, hostID, OutcomeLost, "the server that held its agent went away"); ok {
						return wire.StepResult{}, newLost("host %s: the server holding its agent (%s) went away while the step ran", hostID, st.TakenBy)
					}
					continue
				}
			}
		}
		select {
		case <-wake:
		case <-poll.C:
		case <-ctxDone:
			if ok, _ := q.cfg.Store.CancelQueued(bg, step.StepID); ok {
				return wire.StepResult{}, ctx.Err()
			}
			ctxDone = nil
		case <-grace.C:
			if ok, _ := q.cfg.Store.CancelQueued(bg, step.StepID); ok {
				return wire.StepResult{}, fmt.Errorf("host %s: %w (not within %s)", hostID, ErrNoServerHasAgent, q.cfg.Grace)
			}
		case <-deadline.C:
			if ok, _ := q.cfg.Store.FinishStep(bg, step.StepID, hostID, OutcomeFailed, "no result in time"); ok {
				return wire.StepResult{}, fmt.Errorf("host %s reported no result in time: %w", hostID, context.DeadlineExceeded)
			}
		}
	}
}

func finished(hostID string, st QueuedStep) (wire.StepResult, error) {
	switch st.Outcome {
	case OutcomeResult:
		var res wire.StepResult
		if err := json.Unmarshal([]byte(st.Result), &res); err != nil {
			return wire.StepResult{}, fmt.Errorf("decode the queued result of %s: %w", st.StepID, err)
		}
		return res, nil
	case OutcomeLost:
		return wire.StepResult{}, newLost("host %s: %s", hostID, st.Result)
	default:
		if st.Result == "no result in time" {
			return wire.StepResult{}, fmt.Errorf("host %s: %s: %w", hostID, st.Result, context.DeadlineExceeded)
		}
		return wire.StepResult{}, fmt.Errorf("host %s: %s", hostID, st.Result)
	}
}

func (q *Queue) waiter(stepID string) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := make(chan struct{}, 1)
	q.waiters[stepID] = ch
	return ch
}

func (q *Queue) dropWaiter(stepID string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.waiters, stepID)
}

// Deliver takes a result an agent reported to this server for a step no
// local dispatch waits for: if the step is in the queue (sent by another
// server, or by this one through another), it records it there for its
// origin and reports true.
func (q *Queue) Deliver(ctx context.Context, hostID string, res wire.StepResult) (bool, error) {
	body, err := json.Marshal(res)
	if err != nil {
		return false, err
	}
	ok, err := q.cfg.Store.FinishStep(ctx, res.StepID, hostID, OutcomeResult, string(body))
	if ok {
		q.cfg.Notify(ctx)
	}
	return ok, err
}

// Run works the queue until ctx ends: it takes the queued steps of agents
// connected to this server and hands them over.
func (q *Queue) Run(ctx context.Context) {
	poll := time.NewTicker(q.cfg.Poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.cfg.Wake:
			q.wakeWaiters()
		case <-poll.C:
		}
		if err := q.claim(ctx); err != nil && ctx.Err() == nil {
			q.log.WarnContext(ctx, "work the step queue", slog.String("error", err.Error()))
		}
	}
}

func (q *Queue) wakeWaiters() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ch := range q.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (q *Queue) claim(ctx context.Context) error {
	hosts, err := q.cfg.Store.QueuedHosts(ctx)
	if err != nil || len(hosts) == 0 {
		return err
	}
	var mine []string
	for _, h := range hosts {
		if q.cfg.Local.Connected(h) {
			mine = append(mine, h)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	steps, err := q.cfg.Store.ClaimSteps(ctx, q.cfg.Registry.ID(), mine)
	if err != nil {
		return err
	}
	for _, s := range steps {
		go q.handOver(ctx, s)
	}
	return nil
}

// handOver sends a claimed step to the local agent and writes the outcome
// back to the queue. It outlives a halt (the step was taken) but not this
// server.
func (q *Queue) handOver(ctx context.Context, s QueuedStep) {
	body, err := q.cfg.Sealer.Open(s.Sealed, stepAAD(s.StepID))
	var step wire.Step
	if err == nil {
		err = json.Unmarshal(body, &step)
	}
	if err == nil && step.StepID != s.StepID {
		err = errors.New("the sealed step does not match its row")
	}
	if err != nil {
		q.finish(ctx, s, OutcomeFailed, "the queued step could not be opened: "+err.Error())
		return
	}
	res, err := q.cfg.Local.Dispatch(ctx, s.HostID, step)
	if ctx.Err() != nil {
		return // this server stops: the origin sees it gone and says lost
	}
	var ou interface{ OutcomeUnknown() bool }
	switch {
	case err == nil:
		b, _ := json.Marshal(res)
		q.finish(ctx, s, OutcomeResult, string(b))
	case errors.As(err, &ou) && ou.OutcomeUnknown():
		q.finish(ctx, s, OutcomeLost, err.Error())
	case q.cfg.NotSent != nil && q.cfg.NotSent(err):
		if rerr := q.cfg.Store.RequeueStep(ctx, s.StepID, q.cfg.Registry.ID()); rerr != nil {
			q.log.WarnContext(ctx, "requeue a step", slog.String("step", s.StepID), slog.String("error", rerr.Error()))
		}
		q.cfg.Notify(ctx)
	default:
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "no result in time"
		}
		q.finish(ctx, s, OutcomeFailed, msg)
	}
}

func (q *Queue) finish(ctx context.Context, s QueuedStep, outcome, result string) {
	if _, err := q.cfg.Store.FinishStep(ctx, s.StepID, s.HostID, outcome, result); err != nil {
		q.log.WarnContext(ctx, "record a queued step's outcome", slog.String("step", s.StepID), slog.String("error", err.Error()))
	}
	q.cfg.Notify(ctx)
}
