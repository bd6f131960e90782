package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeLeases is a LeaseStore in memory with the database's rules; cut
// makes a holder's requests fail, as a network partition would.
type fakeLeases struct {
	mu     sync.Mutex
	holder string
	token  int64
	expiry time.Time
	cut    map[string]bool
}

func (f *fakeLeases) AcquireLease(_ context.Context, _, holder string, ttl time.Duration) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut[holder] {
		return 0, false, errors.New("connection refused")
	}
	now := time.Now()
	switch {
	case f.holder == holder && now.Before(f.expiry):
	case f.holder == "" || !now.Before(f.expiry) || f.holder == holder:
		f.holder, f.token = holder, f.token+1
	default:
		return 0, false, nil
	}
	f.expiry = now.Add(ttl)
	return f.token, true, nil
}

func (f *fakeLeases) ReleaseLease(_ context.Context, _, holder string, token int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holder == holder && f.token == token {
		f.expiry = time.Time{}
	}
	return nil
}

func (f *fakeLeases) partition(holder string, cut bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut[holder] = cut
}

// span is one run of a job: who ran it, with which token, from when to when.
type span struct {
	holder     string
	token      int64
	start, end time.Time
}

type spans struct {
	mu  sync.Mutex
	all []span
}

func (s *spans) job(holder string) Job {
	return Job{Name: "sequencer", Run: func(ctx context.Context, token int64) {
		start := time.Now()
		<-ctx.Done()
		s.mu.Lock()
		s.all = append(s.all, span{holder, token, start, time.Now()})
		s.mu.Unlock()
	}}
}

// TestLeaseLostStopsTheWorkBeforeAnotherTakesIt: a holder cut off from
// the database stops its job within one lease period, and the other
// server starts the job only after that, with a greater fencing token —
// the two never run it at once.
func TestLeaseLostStopsTheWorkBeforeAnotherTakesIt(t *testing.T) {
	const ttl = time.Second
	store := &fakeLeases{cut: map[string]bool{}}
	var runs spans
	ctx, cancel := context.WithCancel(context.Background())
	a := NewLeases(LeaseConfig{Store: store, Holder: "a", TTL: ttl}, runs.job("a"))
	b := NewLeases(LeaseConfig{Store: store, Holder: "b", TTL: ttl}, runs.job("b"))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Run(ctx) }()
	waitUntil(t, func() bool { _, ok := a.Token("sequencer"); return ok })
	wg.Add(1)
	go func() { defer wg.Done(); b.Run(ctx) }()
	time.Sleep(2 * ttl)
	if _, ok := b.Token("sequencer"); ok {
		t.Fatal("b holds the lease while a renews it")
	}

	cutAt := time.Now()
	store.partition("a", true)
	waitUntil(t, func() bool { _, ok := b.Token("sequencer"); return ok })
	cancel()
	wg.Wait()

	runs.mu.Lock()
	defer runs.mu.Unlock()
	var ra, rb *span
	for i := range runs.all {
		switch runs.all[i].holder {
		case "a":
			ra = &runs.all[i]
		case "b":
			rb = &runs.all[i]
		}
	}
	if ra == nil || rb == nil {
		t.Fatalf("runs %+v: want one of a and one of b", runs.all)
	}
	if d := ra.end.Sub(cutAt); d > ttl {
		t.Errorf("a stopped %s after it lost the database, more than the lease period %s", d, ttl)
	}
	if !ra.end.Before(rb.start) {
		t.Errorf("a ran until %s, after b started at %s: two holders at once", ra.end.Format(time.StampMicro), rb.start.Format(time.StampMicro))
	}
	if rb.token <= ra.token {
		t.Errorf("b's token %d is not greater than a's %d", rb.token, ra.token)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
