package audit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// bothStores runs fn on SQLite and on PostgreSQL (skipped without
// INTERLOCK_TEST_POSTGRES_URL).
func bothStores(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, storetest.OpenSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.OpenPostgres(t)) })
}

// signer is one start of the server's log over db, with its state file.
func signer(t *testing.T, db *store.DB, stateFile string, now func() time.Time) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log",
		Now: now, BatchSize: 100, Memory: audit.FileMemory{Path: stateFile}})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// cutBack is the attacker with write access to the database and the
// server stopped: it deletes every entry from keep on and every pending
// one, and re-makes tiles, actor chains, tree state and checkpoints so
// that the shorter log is consistent in itself.
func cutBack(t *testing.T, db *store.DB, keep uint64) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`DELETE FROM audit_entries WHERE idx IS NULL OR idx >= $1`,
		`DELETE FROM audit_checkpoints WHERE size > $1`,
	} {
		if _, err := db.Exec(ctx, q, int64(keep)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{`DELETE FROM audit_cosignatures`, `DELETE FROM audit_tiles`, `DELETE FROM audit_actors`} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s := db.AuditStore()
	var es []audit.StoredEntry
	for start := uint64(0); start < keep; start += 500 {
		page, err := s.Entries(ctx, start, min(keep, start+500))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, page...)
	}
	r, _ := tlog.NewRange(0, nil)
	var set tlog.TileSet
	actors := map[string]audit.ActorState{}
	for _, e := range es {
		leaf, err := e.Leaf()
		if err != nil {
			t.Fatal(err)
		}
		h := tlog.LeafHash(leaf)
		if err := r.Append(h, set.Visit); err != nil {
			t.Fatal(err)
		}
		actors[e.Actor] = audit.ActorState{Seq: e.ActorSeq, LastHash: h}
	}
	tiles, data, err := set.Tiles(keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sequence(ctx, func(tx audit.SeqTx) error {
		if err := tx.PutTiles(ctx, tiles, data); err != nil {
			return err
		}
		if err := tx.PutActorStates(ctx, actors); err != nil {
			return err
		}
		return tx.PutTreeState(ctx, audit.TreeState{Size: r.Size(), Root: r.Root(), Frontier: tlog.EncodeFrontier(r.Frontier())})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSignerRefusesACutBackDatabaseUntilAFork is the confirmed attack:
// the log is cut back to 120 of 300 entries and made consistent; the
// restarted signer refuses to sign it, integrates nothing, shows readers
// the checkpoint it signed, and a fork then starts epoch 2 that full
// verification accepts and reports.
func TestSignerRefusesACutBackDatabaseUntilAFork(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		state := filepath.Join(t.TempDir(), "log-signer.checkpoint")
		clock := t0
		now := func() time.Time { return clock }
		l := signer(t, db, state, now)
		appendN(t, db, 100, false)
		if _, err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		appendN(t, db, 200, false)
		signed, err := l.Sync(ctx)
		if err != nil || signed.Size != 300 {
			t.Fatalf("Sync = %d, %v", signed.Size, err)
		}

		cutBack(t, db, 120)
		clock = clock.Add(time.Hour)
		l = signer(t, db, state, now) // restart
		if err := l.Start(ctx); err != nil {
			t.Fatalf("Start of a refusing log = %v, want nil (it starts refusing)", err)
		}
		defer l.Stop(ctx)
		want := "the database holds 120 entries but this server signed a checkpoint of 300 at "
		if got := l.Refusal(); !strings.Contains(got, want) || !strings.Contains(got, "interlock log fork --reason") {
			t.Fatalf("Refusal() = %q, want it to contain %q and name the fork command", got, want)
		}
		if cp, err := l.Checkpoint(ctx); err != nil || cp.Checkpoint.Size != 300 {
			t.Errorf("Checkpoint() while refusing = %d, %v; want the remembered 300", cp.Checkpoint.Size, err)
		}
		// Sign-ins while the log refuses are recorded, and wait.
		appendAt(t, db, 5, clock)
		var re *audit.RefusalError
		if _, err := l.Integrate(ctx); !errors.As(err, &re) {
			t.Errorf("Integrate while refusing = %v, want a RefusalError", err)
		}
		if _, err := l.Publish(ctx); !errors.As(err, &re) {
			t.Errorf("Publish while refusing = %v, want a RefusalError", err)
		}
		if st, _ := db.AuditStore().TreeState(ctx); st.Size != 120 {
			t.Errorf("tree size while refusing = %d, want 120 (nothing integrated)", st.Size)
		}

		clock = clock.Add(30 * time.Minute) // the admin forks half an hour later
		res, err := l.Fork(ctx, "person:p-admin", "restored after the disk failure of 3 Dec")
		if err != nil {
			t.Fatalf("Fork: %v", err)
		}
		if res.Index != 120 || res.Fork.Epoch != 2 || res.Fork.PreviousSize != 300 || res.Checkpoint.Epoch != 2 || res.Checkpoint.EpochStart != 120 {
			t.Errorf("Fork = %+v", res)
		}
		if got := l.Refusal(); got != "" {
			t.Errorf("Refusal() after the fork = %q, want none", got)
		}
		if _, err := l.Fork(ctx, "person:p-admin", "again"); !isUserErr(err, "log_not_refusing") {
			t.Errorf("a second Fork = %v, want log_not_refusing", err)
		}
		cp, err := l.Sync(ctx) // the 5 pending entries follow the fork entry
		if err != nil || cp.Size != 126 || cp.Epoch != 2 || cp.EpochStart != 120 {
			t.Fatalf("Sync after the fork = %+v, %v; want 126 entries in epoch 2 from 120", cp, err)
		}
		if !strings.Contains(string(cp.Marshal()), "\nepoch 2 120\n") {
			t.Errorf("checkpoint body lacks the epoch line:\n%s", cp.Marshal())
		}
		rep, err := l.Verify(ctx, true)
		if err != nil || len(rep.Forks) != 1 || rep.Forks[0].Index != 120 || rep.Forks[0].Fork.PreviousSize != 300 {
			t.Fatalf("Verify(full) after the fork = %+v, %v", rep, err)
		}

		// An old row copied back in after the fork, dated before the
		// checkpoint the signer had signed, is not sequenced.
		appendAt(t, db, 1, t0.Add(-10*time.Minute))
		if _, err := l.Integrate(ctx); !errors.As(err, &re) || !strings.Contains(re.Sentence, "1h10m0s before entry 125") {
			t.Errorf("Integrate of an old row after the fork = %v", err)
		}
		if _, err := db.Exec(ctx, `DELETE FROM audit_entries WHERE idx IS NULL`); err != nil {
			t.Fatal(err)
		}

		// The signer remembers the new epoch across a restart.
		l2 := signer(t, db, state, now)
		if _, err := l2.Sync(ctx); err != nil || l2.Refusal() != "" {
			t.Errorf("restart after the fork: Sync = %v, refusal %q", err, l2.Refusal())
		}
	})
}

// TestSignerRefusesARewrittenTreeOfTheSameSize: same size, other root.
func TestSignerRefusesARewrittenTreeOfTheSameSize(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		state := filepath.Join(t.TempDir(), "state")
		l := signer(t, db, state, func() time.Time { return t0 })
		appendN(t, db, 50, false)
		if _, err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		cutBack(t, db, 40)
		appendN(t, db, 10, false) // the attacker's own 10 entries
		// An attacker's sequencer without the signer's memory integrates them.
		other, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log", Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Integrate(ctx); err != nil {
			t.Fatal(err)
		}
		l = signer(t, db, state, func() time.Time { return t0 })
		if _, err := l.Publish(ctx); err == nil || !strings.Contains(l.Refusal(), "the database holds 50 entries with root") {
			t.Errorf("Publish over a rewritten tree of the same size = %v, refusal %q", err, l.Refusal())
		}
	})
}

// TestSequencerRefusesAnEntryOutOfTimeOrder: a row dated two hours before
// the newest entry (an old row copied back in) is not sequenced, and a
// log that an older server did sequence that way fails full verification
// naming the entry.
func TestSequencerRefusesAnEntryOutOfTimeOrder(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := signer(t, db, filepath.Join(t.TempDir(), "state"), func() time.Time { return t0 })
		appendN(t, db, 10, false)
		if _, err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		old := audit.Entry{Kind: "test.event", Version: 1, Actor: "person:0", Subject: "thing:old", Time: t0.Add(-2 * time.Hour)}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, old) }); err != nil {
			t.Fatal(err)
		}
		var re *audit.RefusalError
		if _, err := l.Integrate(ctx); !errors.As(err, &re) || !strings.Contains(re.Sentence, "2h0m0s before entry 9") || !strings.Contains(re.Sentence, "allowed skew 1m0s") {
			t.Fatalf("Integrate of a row out of time order = %v", err)
		}
		if _, err := l.Fork(ctx, "person:p-admin", "x"); !isUserErr(err, "fork_would_not_help") {
			t.Errorf("Fork over a time-order refusal = %v, want fork_would_not_help", err)
		}

		// An older server that did not check (a skew of a day) sequenced it.
		lax, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log",
			Now: func() time.Time { return t0 }, TimeSkew: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lax.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = lax.Verify(ctx, true)
		var ve *tlog.VerifyError
		if !errors.As(err, &ve) || ve.Index != 10 || !strings.Contains(ve.Reason, "before entry 9") || !strings.Contains(ve.Reason, "out of order") {
			t.Errorf("Verify(full) = %v; want entry 10 named as out of time order", err)
		}
	})
}

// TestSequencerRefusesAForkEntryItDidNotWrite: a log.forked row put into
// the table by hand is not sequenced (it would make the log look forked).
func TestSequencerRefusesAForkEntryItDidNotWrite(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	l := signer(t, db, filepath.Join(t.TempDir(), "state"), func() time.Time { return t0 })
	fake := audit.Entry{Kind: tlog.KindForked, Version: 1, Actor: "person:mallory", Subject: "log", Time: t0, Data: map[string]any{"epoch": 2}}
	if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, fake) }); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Integrate(ctx); err == nil || !strings.Contains(l.Refusal(), "did not write") {
		t.Errorf("Integrate of a hand-made fork entry = %v, refusal %q", err, l.Refusal())
	}
}

func TestFileMemoryReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	m := audit.FileMemory{Path: filepath.Join(dir, "state")}
	if b, err := m.Load(); err != nil || b != nil {
		t.Fatalf("Load of nothing = %q, %v", b, err)
	}
	for _, s := range []string{"one\n", "two\n"} {
		if err := m.Save([]byte(s)); err != nil {
			t.Fatal(err)
		}
		if b, err := m.Load(); err != nil || string(b) != s {
			t.Errorf("Load = %q, %v; want %q", b, err, s)
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("the directory holds %d files, want only the state (no temp files left)", len(es))
	}
}

func appendAt(t *testing.T, db *store.DB, n int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		e := audit.Entry{Kind: "test.signin", Version: 1, Actor: "person:p-admin", Subject: "session", Time: at.Add(time.Duration(i))}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
	}
}

func isUserErr(err error, code string) bool {
	ue, ok := usererr.As(err)
	return ok && ue.Code == code
}

// TestReplicaAdoptsAForkRecordedByAnother: two servers share one
// database, each with its own state file. After one forks, the other's
// memory (the old epoch) is superseded by the signed checkpoint of the
// new epoch, so it signs on instead of refusing.
func TestReplicaAdoptsAForkRecordedByAnother(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := func() time.Time { return t0 }
		a := signer(t, db, filepath.Join(t.TempDir(), "a"), now)
		b := signer(t, db, filepath.Join(t.TempDir(), "b"), now)
		appendN(t, db, 60, false)
		if _, err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Publish(ctx); err != nil { // b remembers 60 too
			t.Fatal(err)
		}
		cutBack(t, db, 40)
		if _, err := a.Publish(ctx); err == nil {
			t.Fatal("a signed a cut-back database")
		}
		if _, err := a.Fork(ctx, "person:p-admin", "restore"); err != nil {
			t.Fatal(err)
		}
		cp, err := b.Publish(ctx)
		if err != nil || cp.Epoch != 2 || cp.EpochStart != 40 || b.Refusal() != "" {
			t.Errorf("the other replica after the fork: %+v, %v, refusal %q; want it to sign epoch 2", cp, err, b.Refusal())
		}
	})
}

// TestSignerStateThatDoesNotVerifyIsRefused: a state file not signed by
// the log key in the database (the key or the file was replaced) makes
// the log refuse instead of trusting the database.
func TestSignerStateThatDoesNotVerifyIsRefused(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	state := filepath.Join(t.TempDir(), "state")
	l := signer(t, db, state, func() time.Time { return t0 })
	appendN(t, db, 5, false)
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(state)
	if err := os.WriteFile(state, []byte(strings.Replace(string(b), "\n5\n", "\n4\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	l = signer(t, db, state, func() time.Time { return t0 })
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Stop(ctx)
	if !strings.Contains(l.Refusal(), "does not verify with the log key in the database") {
		t.Errorf("Refusal() = %q", l.Refusal())
	}
}
