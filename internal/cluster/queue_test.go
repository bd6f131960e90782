package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// fakeQueue is a QueueStore in memory with the database's rules.
type fakeQueue struct {
	mu   sync.Mutex
	rows map[string]*QueuedStep
}

func newFakeQueue() *fakeQueue { return &fakeQueue{rows: map[string]*QueuedStep{}} }

func (f *fakeQueue) EnqueueStep(_ context.Context, q QueuedStep) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.rows[q.StepID]; ok {
		return errors.New("exists")
	}
	q.State = "queued"
	f.rows[q.StepID] = &q
	return nil
}

func (f *fakeQueue) QueuedHosts(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.rows {
		if r.State == "queued" {
			out = append(out, r.HostID)
		}
	}
	return out, nil
}

func (f *fakeQueue) ClaimSteps(_ context.Context, server string, hosts []string) ([]QueuedStep, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []QueuedStep
	for _, r := range f.rows {
		for _, h := range hosts {
			if r.State == "queued" && r.HostID == h {
				r.State, r.TakenBy = "taken", server
				out = append(out, *r)
			}
		}
	}
	return out, nil
}

func (f *fakeQueue) RequeueStep(_ context.Context, stepID, server string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.rows[stepID]; r != nil && r.State == "taken" && r.TakenBy == server {
		r.State, r.TakenBy = "queued", ""
	}
	return nil
}

func (f *fakeQueue) FinishStep(_ context.Context, stepID, hostID, outcome, result string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rows[stepID]
	if r == nil || r.HostID != hostID || r.State == "done" {
		return false, nil
	}
	r.State, r.Outcome, r.Result, r.Sealed = "done", outcome, result, nil
	return true, nil
}

func (f *fakeQueue) CancelQueued(_ context.Context, stepID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.rows[stepID]; r != nil && r.State == "queued" {
		delete(f.rows, stepID)
		return true, nil
	}
	return false, nil
}

func (f *fakeQueue) StepStatus(_ context.Context, stepID string) (QueuedStep, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.rows[stepID]; r != nil {
		return *r, nil
	}
	return QueuedStep{}, errors.New("not found")
}

func (f *fakeQueue) DeleteStep(_ context.Context, stepID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rows, stepID)
	return nil
}

func (f *fakeQueue) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rows)
}

// fakeServers is a RegistryStore in memory.
type fakeServers struct {
	mu   sync.Mutex
	live map[string]Server
}

func (f *fakeServers) PutServer(_ context.Context, s Server) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live[s.ID] = s
	return nil
}

func (f *fakeServers) Servers(context.Context, time.Duration) ([]Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Server
	for _, s := range f.live {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeServers) DeleteServer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, id)
	return nil
}

// fakeHub is one server's agent connections: hosts it holds, and what a
// dispatch to them answers.
type fakeHub struct {
	hosts map[string]bool
	run   func(ctx context.Context, host string, step wire.Step) (wire.StepResult, error)
	sent  sync.Map // step ID → true once handed over
}

func (h *fakeHub) Connected(host string) bool { return h.hosts[host] }

func (h *fakeHub) Dispatch(ctx context.Context, host string, step wire.Step) (wire.StepResult, error) {
	h.sent.Store(step.StepID, true)
	return h.run(ctx, host, step)
}

type plainSealer struct{}

func (plainSealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append([]byte{}, aad...), p...), nil
}
func (plainSealer) Open(s, aad []byte) ([]byte, error) {
	if len(s) < len(aad) || string(s[:len(aad)]) != string(aad) {
		return nil, errors.New("wrong aad")
	}
	return s[len(aad):], nil
}

type lost struct{ error }

func (lost) OutcomeUnknown() bool { return true }

// twoServers builds an origin (holding no agent) and a server holding
// host-1, sharing one queue; the second works the queue until the test ends.
func twoServers(t *testing.T, run func(ctx context.Context, host string, step wire.Step) (wire.StepResult, error)) (origin *Queue, store *fakeQueue, servers *fakeServers, holder *fakeHub) {
	t.Helper()
	store, servers = newFakeQueue(), &fakeServers{live: map[string]Server{}}
	regA, regB := NewRegistry(servers, "a", "https://a", time.Second, nil), NewRegistry(servers, "b", "https://b", time.Second, nil)
	for _, r := range []*Registry{regA, regB} {
		if err := r.Announce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	holder = &fakeHub{hosts: map[string]bool{"host-1": true}, run: run}
	cfg := QueueConfig{Store: store, Sealer: plainSealer{}, Grace: 300 * time.Millisecond, Margin: time.Second, Poll: 10 * time.Millisecond}
	a, b := cfg, cfg
	a.Local, a.Registry = &fakeHub{hosts: map[string]bool{}}, regA
	b.Local, b.Registry = holder, regB
	origin = NewQueue(a)
	worker := NewQueue(b)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go worker.Run(ctx)
	return origin, store, servers, holder
}

func TestQueueCarriesAStepToTheServerHoldingTheAgent(t *testing.T) {
	origin, store, _, _ := twoServers(t, func(_ context.Context, host string, step wire.Step) (wire.StepResult, error) {
		return wire.StepResult{StepID: step.StepID, ExitCode: 7, Output: "ran on " + host}, nil
	})
	res, err := origin.Dispatch(context.Background(), "host-1", wire.Step{StepID: "s1", TimeoutSeconds: 5, Env: map[string]string{"PARAM_PASSWORD": "s3cr3t"}})
	if err != nil || res.ExitCode != 7 || res.Output != "ran on host-1" {
		t.Fatalf("result %+v, %v", res, err)
	}
	if n := store.count(); n != 0 {
		t.Errorf("%d rows left in the queue after the result was taken", n)
	}
}

func TestQueueHaltBeforeAnyServerTookTheStepSendsNothing(t *testing.T) {
	origin, store, _, holder := twoServers(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // halted before it could be taken
	_, err := origin.Dispatch(ctx, "host-2", wire.Step{StepID: "s2", TimeoutSeconds: 5})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dispatch after a halt: %v, want context.Canceled (not sent)", err)
	}
	if _, sent := holder.sent.Load("s2"); sent || store.count() != 0 {
		t.Fatalf("a halted step was sent or left queued")
	}
}

func TestQueueNoServerHoldsTheAgent(t *testing.T) {
	origin, store, _, _ := twoServers(t, nil)
	_, err := origin.Dispatch(context.Background(), "host-9", wire.Step{StepID: "s9", TimeoutSeconds: 5})
	if !errors.Is(err, ErrNoServerHasAgent) {
		t.Fatalf("Dispatch to a host nobody holds: %v, want ErrNoServerHasAgent", err)
	}
	var ou interface{ OutcomeUnknown() bool }
	if errors.As(err, &ou) {
		t.Fatal("a step never sent was called unknown")
	}
	if store.count() != 0 {
		t.Fatal("the step stayed queued")
	}
}

func TestQueueTakerDiesMidStepIsUnknown(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	origin, _, servers, _ := twoServers(t, func(ctx context.Context, _ string, _ wire.Step) (wire.StepResult, error) {
		once.Do(func() { close(started) })
		<-ctx.Done() // runs until its server is gone
		return wire.StepResult{}, ctx.Err()
	})
	go func() { <-started; _ = servers.DeleteServer(context.Background(), "b") }() // b dies after the hand-over
	_, err := origin.Dispatch(context.Background(), "host-1", wire.Step{StepID: "s3", TimeoutSeconds: 30})
	var ou interface{ OutcomeUnknown() bool }
	if !errors.As(err, &ou) || !ou.OutcomeUnknown() {
		t.Fatalf("Dispatch whose taker died: %v, want an outcome-unknown error", err)
	}
}

func TestQueueLateResultFromAnotherServerCompletesTheStep(t *testing.T) {
	reported := make(chan struct{})
	origin, store, _, _ := twoServers(t, func(_ context.Context, host string, step wire.Step) (wire.StepResult, error) {
		// The agent's stream ended after the hand-over; it reported elsewhere
		// before this server gave up waiting for it.
		<-reported
		return wire.StepResult{}, lost{fmt.Errorf("host %s: stream ended", host)}
	})
	// A third server gets the agent's report first.
	third := NewQueue(QueueConfig{Store: store, Local: &fakeHub{}, Sealer: plainSealer{}})
	done := make(chan error, 1)
	var res wire.StepResult
	go func() {
		var err error
		res, err = origin.Dispatch(context.Background(), "host-1", wire.Step{StepID: "s4", TimeoutSeconds: 5})
		done <- err
	}()
	for {
		st, err := store.StepStatus(context.Background(), "s4")
		if err == nil && st.State == "taken" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if ok, err := third.Deliver(context.Background(), "host-2", wire.StepResult{StepID: "s4"}); ok || err != nil {
		t.Fatalf("another host's report completed the step: %v %v", ok, err)
	}
	if ok, err := third.Deliver(context.Background(), "host-1", wire.StepResult{StepID: "s4", ExitCode: 0, Output: "ok"}); err != nil || !ok {
		t.Fatalf("the agent's report to a third server was not taken: %v %v", ok, err)
	}
	close(reported) // the taker's "lost" comes second and changes nothing
	if err := <-done; err != nil || res.Output != "ok" {
		t.Fatalf("Dispatch: %+v, %v", res, err)
	}
}
