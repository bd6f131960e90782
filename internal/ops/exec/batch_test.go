package exec_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestWaveRecordsAreBatched runs one step on 1,500 hosts at once, some of
// them failing with long errors: the records share a few audit entries
// instead of two per host, every entry stays far below the entry limit,
// and every host's dispatch and result are in the log exactly once, with
// the digest of the output stored for it.
func TestWaveRecordsAreBatched(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) { testWaveRecordsAreBatched(t, open(t)) })
	}
}

func testWaveRecordsAreBatched(t *testing.T, db *store.DB) {
	const n = 1500
	hosts := make([]string, n)
	d := newDispatcher()
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%04d", i)
		o := outcome{output: "ok from " + hosts[i]}
		switch i % 100 {
		case 7:
			o = outcome{exit: 3, output: strings.Repeat("<&>", 1000)}
		case 8: // an error that escapes to six bytes a character in JSON
			o = outcome{err: errors.New(strings.Repeat("<&>", 1300))}
		}
		d.set(hosts[i]+"/run", o)
	}
	p := plan(hosts[:1], hosts[1:])
	p.Concurrency, p.HaltAfter = n, n
	r := newRig(t, db, newFakeOps(operation(p)), d)
	start(t, r)
	if got := r.finish(t); got.State != ops.OpSucceeded {
		t.Fatalf("state %s (%s), want succeeded", got.State, got.Detail)
	}

	steps, err := r.stor.ExecSteps(context.Background(), "op1")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]exec.StepRecord{}
	for _, s := range steps {
		stored[s.HostID] = s
	}
	rows, err := db.Query(context.Background(), `SELECT kind, data FROM audit_entries WHERE kind IN ('op.steps_dispatched', 'op.step_results')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	entries := 0
	dispatched, results := map[string]int{}, map[string]int{}
	for rows.Next() {
		var kind string
		var data []byte
		if err := rows.Scan(&kind, &data); err != nil {
			t.Fatal(err)
		}
		entries++
		if len(data) > 48<<10 {
			t.Errorf("a %s entry holds %d bytes of data; batches must stay well under the 64 KiB entry limit", kind, len(data))
		}
		logged, err := exec.LoggedSteps(kind, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range logged {
			rec, ok := stored[s.Host]
			if !ok || s.StepID != rec.StepID || s.Phase != exec.PhaseRun {
				t.Fatalf("logged %+v does not match the stored record %+v", s, rec)
			}
			if !s.Result {
				dispatched[s.Host]++
				continue
			}
			results[s.Host]++
			sum := sha256.Sum256([]byte(rec.Output))
			if s.OutputSHA256 != hex.EncodeToString(sum[:]) || s.State != string(rec.State) || s.ExitCode != rec.ExitCode {
				t.Errorf("logged result %+v does not match the stored record (state %s, exit %d)", s, rec.State, rec.ExitCode)
			}
		}
	}
	for _, h := range hosts {
		if dispatched[h] != 1 || results[h] != 1 {
			t.Errorf("host %s: %d dispatches and %d results in the log, want 1 and 1", h, dispatched[h], results[h])
		}
	}
	if entries > n/4 {
		t.Errorf("%d audit entries for %d hosts' dispatches and results: not batched", entries, n)
	}
	t.Logf("%d hosts: %d step entries", n, entries)
}

// stateOps is fakeOps that can read an operation's state alone, as
// ops.Manager can: the executor then re-reads the state once per batch of
// records rather than the whole operation per host.
type stateOps struct{ *fakeOps }

func (s stateOps) State(ctx context.Context, id string) (ops.OpState, error) {
	op, err := s.Get(ctx, id)
	return op.State, err
}

// TestBatchRereadsTheStateBeforeEveryDispatch: an operation halted while
// its first host's step runs sends nothing more, even before the
// executor's own poll notices the halt: the record of the next dispatch
// re-reads the state before it commits.
func TestBatchRereadsTheStateBeforeEveryDispatch(t *testing.T) {
	release := make(chan struct{})
	d := newDispatcher().set("h1/run", outcome{release: release})
	p := plan([]string{"h1", "h2", "h3"})
	p.Concurrency = 1
	o := newFakeOps(operation(p))
	r := &rig{poll: time.Hour, db: storetest.OpenSQLite(t), ops: o, g: &fakeGuard{fail: map[int]string{}}, d: d}
	r.stor = r.db.ExecStore()
	eng, err := exec.New(exec.Config{Store: r.stor, Ops: stateOps{o}, Guard: r.g, Dispatcher: d, Now: func() time.Time { return t0 }, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.Shutdown(ctx)
	})
	r.eng = eng
	d.sent = make(chan string, 3)
	start(t, r)
	if got := <-d.sent; got != "h1/run" {
		t.Fatalf("first dispatch %s, want h1/run", got)
	}
	o.force("op1", ops.OpHalted) // a halt made elsewhere, not through this engine
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"h1/run"}, d.called()); diff != "" {
		t.Errorf("dispatches after the halt (-want +got):\n%s", diff)
	}
}
