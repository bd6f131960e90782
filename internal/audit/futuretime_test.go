package audit_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// TestSequencerRefusesAnEntryDatedInTheFuture is the attacker with write
// access to the database who inserts one pending row dated in 2126. Were
// it sequenced, time order would make every genuine entry after it "out
// of order": the log would refuse for a century, blaming the genuine
// rows, and no fork could help. The sequencer refuses the future row
// itself, naming it; once it is deleted, a restarted server goes on.
func TestSequencerRefusesAnEntryDatedInTheFuture(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		state := filepath.Join(t.TempDir(), "state")
		clock := t0
		now := func() time.Time { return clock }
		l := signer(t, db, state, now)
		appendN(t, db, 10, false)
		if _, err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		future := audit.Entry{Kind: "test.event", Version: 1, Actor: "person:mallory", Subject: "thing:future", Time: t0.AddDate(100, 0, 0)}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, future) }); err != nil {
			t.Fatal(err)
		}
		var re *audit.RefusalError
		if _, err := l.Integrate(ctx); !errors.As(err, &re) || !strings.Contains(re.Sentence, "in the future") || !strings.Contains(re.Sentence, "person:mallory") {
			t.Fatalf("Integrate of a row dated 2126 = %v; want a refusal that names the row as dated in the future", err)
		}
		if st, _ := db.AuditStore().TreeState(ctx); st.Size != 10 {
			t.Errorf("tree size = %d, want 10: the future row must not be sequenced", st.Size)
		}

		// The operator deletes the row and restarts; genuine entries follow.
		if _, err := db.Exec(ctx, `DELETE FROM audit_entries WHERE idx IS NULL`); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
		l = signer(t, db, state, now)
		appendAt(t, db, 3, clock)
		if cp, err := l.Sync(ctx); err != nil || cp.Size != 13 {
			t.Fatalf("Sync after deleting the future row = %d, %v; want 13", cp.Size, err)
		}

		// A row a little ahead (a replica whose clock runs 30 s fast) is fine.
		appendAt(t, db, 1, clock.Add(30*time.Second))
		if cp, err := l.Sync(ctx); err != nil || cp.Size != 14 {
			t.Fatalf("Sync of a row 30 s ahead = %d, %v; want 14", cp.Size, err)
		}
		// Just past the bound is refused.
		appendAt(t, db, 1, clock.Add(tlog.DefaultMaxFuture+time.Minute))
		if _, err := l.Integrate(ctx); !errors.As(err, &re) || !strings.Contains(re.Sentence, "2h1m0s in the future") {
			t.Fatalf("Integrate of a row 2h1m ahead = %v", err)
		}
		if _, err := db.Exec(ctx, `DELETE FROM audit_entries WHERE idx IS NULL`); err != nil {
			t.Fatal(err)
		}
		l = signer(t, db, state, now)
		if _, err := l.Verify(ctx, true); err != nil {
			t.Errorf("Verify(full) = %v", err)
		}

		// An older server that did not check sequenced such a row (its
		// clock said 2126 for a moment); full verification names that
		// row, not the genuine ones after it.
		lax, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log",
			Now: func() time.Time { return t0.AddDate(100, 0, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, future) }); err != nil {
			t.Fatal(err)
		}
		if _, err := lax.Integrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Publish(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = l.Verify(ctx, true)
		var ve *tlog.VerifyError
		if !errors.As(err, &ve) || ve.Index != 14 || !strings.Contains(ve.Reason, "after the signed checkpoint that covers it") {
			t.Errorf("Verify(full) of a log holding an entry dated 2126 = %v; want entry 14 named", err)
		}
	})
}

// TestTimeOrderRefusalNamesAClockThatWentBack: a server whose clock ran
// an hour ahead sequenced entries; its clock is corrected. The next entry
// cannot follow them (time order), and the refusal must say why — the
// clock — rather than call the genuine new row an old one copied back in
// and ask the operator to delete it.
func TestTimeOrderRefusalNamesAClockThatWentBack(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	clock := t0.Add(time.Hour)
	l := signer(t, db, filepath.Join(t.TempDir(), "state"), func() time.Time { return clock })
	appendAt(t, db, 3, clock)
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	clock = t0 // NTP steps the clock back
	appendAt(t, db, 1, clock)
	var re *audit.RefusalError
	if _, err := l.Integrate(ctx); !errors.As(err, &re) || !strings.Contains(re.Sentence, "1h0m0s ahead of this server's clock") ||
		!strings.Contains(re.Sentence, "NTP") || strings.Contains(re.Sentence, "copied back") {
		t.Fatalf("Integrate after the clock went back an hour = %v", err)
	}
}
