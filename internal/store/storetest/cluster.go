package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/cluster"
	"github.com/interlock-dev/interlock/internal/store"
)

var _ = Register("cluster", func(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("LeaseHasOneHolderAndItsTokenGrowsOnTakeover", func(t *testing.T) {
		cs := open(t).ClusterStore()
		tokA, ok, err := cs.AcquireLease(ctx, "sequencer", "a", 200*time.Millisecond)
		if err != nil || !ok {
			t.Fatalf("a acquires a free lease: ok=%v err=%v", ok, err)
		}
		if _, ok, err := cs.AcquireLease(ctx, "sequencer", "b", time.Second); err != nil || ok {
			t.Fatalf("b took a live lease of a: ok=%v err=%v", ok, err)
		}
		again, ok, err := cs.AcquireLease(ctx, "sequencer", "a", 200*time.Millisecond)
		if err != nil || !ok || again != tokA {
			t.Fatalf("a renews: token %d → %d ok=%v err=%v; want the same token", tokA, again, ok, err)
		}
		time.Sleep(300 * time.Millisecond)
		tokB, ok, err := cs.AcquireLease(ctx, "sequencer", "b", time.Second)
		if err != nil || !ok || tokB <= tokA {
			t.Fatalf("b takes the expired lease: token %d (a had %d) ok=%v err=%v; want a greater token", tokB, tokA, ok, err)
		}
		if _, ok, _ := cs.AcquireLease(ctx, "sequencer", "a", time.Second); ok {
			t.Fatal("a took the lease back while b holds it")
		}
		if err := cs.ReleaseLease(ctx, "sequencer", "b", tokB); err != nil {
			t.Fatal(err)
		}
		tokA2, ok, err := cs.AcquireLease(ctx, "sequencer", "a", time.Second)
		if err != nil || !ok || tokA2 <= tokB {
			t.Fatalf("a after b released: token %d (b had %d) ok=%v err=%v", tokA2, tokB, ok, err)
		}
	})

	t.Run("FencedWriteOfTheOldHolderFails", func(t *testing.T) {
		db := open(t)
		cs := db.ClusterStore()
		tokA, _, _ := cs.AcquireLease(ctx, "sequencer", "a", 100*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		tokB, ok, _ := cs.AcquireLease(ctx, "sequencer", "b", time.Second)
		if !ok {
			t.Fatal("b could not take the expired lease")
		}
		// a, paused past its lease, tries to write with its old token.
		err := db.InTx(ctx, func(tx *store.Tx) error { return tx.CheckLease(ctx, "sequencer", tokA) })
		if !errors.Is(err, cluster.ErrFenced) {
			t.Fatalf("old holder's write: %v, want ErrFenced", err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.CheckLease(ctx, "sequencer", tokB) }); err != nil {
			t.Fatalf("current holder's write: %v", err)
		}
	})

	t.Run("ConcurrentAcquireHasOneWinner", func(t *testing.T) {
		cs := open(t).ClusterStore()
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for _, h := range []string{"a", "b", "c", "d"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := cs.AcquireLease(ctx, "recovery", h, time.Minute)
				if err != nil {
					t.Errorf("%s: %v", h, err)
				}
				if ok {
					mu.Lock()
					winners++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if winners != 1 {
			t.Fatalf("%d servers hold the lease at once, want 1", winners)
		}
	})

	t.Run("RunClaimPassesOnlyFromADeadServer", func(t *testing.T) {
		cs := open(t).ClusterStore()
		now := time.Now()
		for _, id := range []string{"a", "b"} {
			if err := cs.PutServer(ctx, cluster.Server{ID: id, URL: "https://" + id, Started: now}); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := cs.ClaimRun(ctx, "op_1", "a", time.Second); err != nil || !ok {
			t.Fatalf("a claims: %v %v", ok, err)
		}
		if ok, _ := cs.ClaimRun(ctx, "op_1", "b", time.Second); ok {
			t.Fatal("b claimed the run of a live server")
		}
		if err := cs.DeleteServer(ctx, "a"); err != nil { // a is gone
			t.Fatal(err)
		}
		if ok, err := cs.ClaimRun(ctx, "op_1", "b", time.Second); err != nil || !ok {
			t.Fatalf("b claims the run of a dead server: %v %v", ok, err)
		}
		if h, _ := cs.RunHolder(ctx, "op_1"); h != "b" {
			t.Fatalf("holder %q, want b", h)
		}
	})

	t.Run("QueuedStepIsTakenOnceAndFinishedOnce", func(t *testing.T) {
		cs := open(t).ClusterStore()
		if err := cs.EnqueueStep(ctx, cluster.QueuedStep{StepID: "s1", HostID: "h1", Origin: "a", Sealed: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		taken := 0
		for _, srv := range []string{"b", "c", "d"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := cs.ClaimSteps(ctx, srv, []string{"h1"})
				if err != nil {
					t.Errorf("%s: %v", srv, err)
				}
				mu.Lock()
				taken += len(got)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if taken != 1 {
			t.Fatalf("the step was taken %d times, want once", taken)
		}
		if ok, _ := cs.CancelQueued(ctx, "s1"); ok {
			t.Fatal("a taken step was cancelled as if never sent")
		}
		if ok, err := cs.FinishStep(ctx, "s1", "h2", cluster.OutcomeResult, "{}"); err != nil || ok {
			t.Fatalf("another host's result finished the step: %v %v", ok, err)
		}
		if ok, err := cs.FinishStep(ctx, "s1", "h1", cluster.OutcomeResult, "{}"); err != nil || !ok {
			t.Fatalf("finish: %v %v", ok, err)
		}
		if ok, _ := cs.FinishStep(ctx, "s1", "h1", cluster.OutcomeLost, "late"); ok {
			t.Fatal("a second outcome replaced the first")
		}
		st, err := cs.StepStatus(ctx, "s1")
		if err != nil || st.State != "done" || st.Outcome != cluster.OutcomeResult {
			t.Fatalf("status %+v %v", st, err)
		}
	})

	t.Run("SequencerThatLostItsLeaseCannotSign", func(t *testing.T) {
		db := open(t)
		cs := db.ClusterStore()
		tokA, _, _ := cs.AcquireLease(ctx, "sequencer", "a", 100*time.Millisecond)
		newLog := func(token int64) *audit.Log {
			l, err := audit.New(audit.Config{Store: db.FencedAuditStore(func() (string, int64, bool) { return "sequencer", token, true }),
				Sealer: auditSealer{}, Origin: "interlock.test/log", Now: func() time.Time { return auditT0 }})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		a := newLog(tokA)
		if _, err := a.Sync(ctx); err != nil {
			t.Fatalf("the holder signs: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
		tokB, ok, _ := cs.AcquireLease(ctx, "sequencer", "b", time.Minute)
		if !ok {
			t.Fatal("b could not take the expired lease")
		}
		appendAudit(t, db, 0, 1)
		if _, err := a.Sync(ctx); !errors.Is(err, cluster.ErrFenced) {
			t.Fatalf("the old holder integrated or signed after the takeover: %v, want ErrFenced", err)
		}
		b := newLog(tokB)
		cp, err := b.Sync(ctx)
		if err != nil || cp.Size != 1 {
			t.Fatalf("the new holder signs: size %d, %v; want 1", cp.Size, err)
		}
	})
})
