package audit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
)

const childEnv = "INTERLOCK_AUDIT_DURABILITY_CHILD"

// TestMain lets the test binary act as the child of the durability test:
// a server that appends in a loop and prints each acknowledged entry.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		durabilityChild(spec)
		return
	}
	os.Exit(m.Run())
}

// durabilityChild appends from four writers (two in their own
// transactions, two through the group-commit Appender) while the sequencer
// integrates, and prints "ack N" after each Append returned. It runs until
// it is killed.
func durabilityChild(spec string) {
	dir, base, _ := strings.Cut(spec, ",")
	first, _ := strconv.Atoi(base)
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log", IntegrateEvery: 5 * time.Millisecond, CheckpointEvery: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := l.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	a := audit.NewAppender(db.InTx, audit.AppenderConfig{})
	var mu sync.Mutex
	next := first
	for w := 0; w < 4; w++ {
		go func() {
			for {
				mu.Lock()
				n := next
				next++
				mu.Unlock()
				e := audit.Entry{Kind: "test.durable", Version: 1, Actor: fmt.Sprintf("agent:%d", w), Time: time.Now(), Data: map[string]any{"n": n}}
				var err error
				if w < 2 {
					err = db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) })
				} else {
					err = a.Append(ctx, e)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				fmt.Fprintf(os.Stdout, "ack %d\n", n)
			}
		}()
	}
	select {}
}

func TestDurabilityUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns subprocesses")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	acked := map[int]bool{}
	const trials = 20
	for trial := 0; trial < trials; trial++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", childEnv, dir, trial*10_000_000))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		got := make(chan int, 1<<16)
		go func() {
			defer close(got)
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "ack "); ok {
					if n, err := strconv.Atoi(v); err == nil {
						got <- n
					}
				}
			}
		}()
		// Wait for the first acknowledgement, then kill at a random moment.
		select {
		case n, ok := <-got:
			if !ok {
				cmd.Wait()
				t.Fatalf("trial %d: child exited before appending: %s", trial, stderr.String())
			}
			acked[n] = true
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("trial %d: no acknowledgement within 10 s: %s", trial, stderr.String())
		}
		time.Sleep(time.Duration(20_000+rng.IntN(100_000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for n := range got {
			acked[n] = true
		}
		cmd.Wait()
		if s := stderr.String(); s != "" {
			t.Fatalf("trial %d: child reported: %s", trial, s)
		}
	}

	// Restart: integrate what is pending, verify everything, and find every
	// acknowledged entry.
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log"})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(ctx, true); err != nil {
		t.Fatalf("Verify(full) after %d kills = %v", trials, err)
	}
	found := map[int]bool{}
	for start := uint64(0); start < cp.Size; start += audit.MaxRange {
		es, err := l.Entries(ctx, start, min(cp.Size, start+audit.MaxRange))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			leaf, err := audit.ParseLeaf(e.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			var d struct{ N int }
			if err := json.Unmarshal(leaf.Data, &d); err != nil {
				t.Fatal(err)
			}
			found[d.N] = true
		}
	}
	missing := 0
	for n := range acked {
		if !found[n] {
			missing++
			if missing < 5 {
				t.Errorf("acknowledged entry %d is not in the log after SIGKILL", n)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged entries lost", missing, len(acked))
	}
	t.Logf("%d trials, %d acknowledged entries, log size %d, all present and verified", trials, len(acked), cp.Size)
}
