package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// auditSealer "seals" by prefixing the aad (tests only).
type auditSealer struct{}

func (auditSealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append(append([]byte(nil), aad...), 0), p...), nil
}

func (auditSealer) Open(s, aad []byte) ([]byte, error) {
	pre := append(append([]byte(nil), aad...), 0)
	if !bytes.HasPrefix(s, pre) {
		return nil, errors.New("wrong aad")
	}
	return s[len(pre):], nil
}

var auditT0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func newAuditLog(t *testing.T, db *store.DB) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: auditSealer{}, Origin: "interlock.test/log",
		Now: func() time.Time { return auditT0 }, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func appendAudit(t *testing.T, db *store.DB, from, n int) {
	t.Helper()
	ctx := context.Background()
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		for i := from; i < from+n; i++ {
			e := audit.Entry{Kind: "test.event", Version: 1, Actor: fmt.Sprintf("person:%d", i%4), Subject: fmt.Sprintf("thing:%d", i),
				Time: auditT0.Add(time.Duration(i)), Data: map[string]any{"i": i}, Personal: map[string]string{"ip": fmt.Sprintf("192.0.2.%d", i%200)}}
			if err := audit.Append(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// tamper runs SQL statements that an insider with database access might.
func tamper(t *testing.T, db *store.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(context.Background(), s); err != nil {
			t.Fatalf("tamper %q: %v", s, err)
		}
	}
}

func flipByte(t *testing.T, db *store.DB, column string, idx int) {
	t.Helper()
	ctx := context.Background()
	var b []byte
	if err := db.QueryRow(ctx, `SELECT `+column+` FROM audit_entries WHERE idx = $1`, idx).Scan(&b); err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 1
	if _, err := db.Exec(ctx, `UPDATE audit_entries SET `+column+` = $1 WHERE idx = $2`, b, idx); err != nil {
		t.Fatal(err)
	}
}

var _ = Register("audit", func(t *testing.T, open Opener) {
	t.Run("append commits with the transaction", func(t *testing.T) {
		db := open(t)
		ctx := context.Background()
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: "system", Time: time.Unix(1, 0)}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
		rollback := errors.New("roll back")
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := audit.Append(ctx, tx, e); err != nil {
				return err
			}
			return rollback
		}); !errors.Is(err, rollback) {
			t.Fatalf("InTx = %v, want the function's error", err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_entries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("audit entries = %d, want 1 (the rolled-back one must not persist)", n)
		}
	})

	t.Run("idempotency key keeps the transaction usable", func(t *testing.T) {
		db := open(t)
		ctx := context.Background()
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: "system", Time: auditT0, IdempotencyKey: "k1"}
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := audit.Append(ctx, tx, e); err != nil {
				return err
			}
			if err := audit.Append(ctx, tx, e); !errors.Is(err, audit.ErrDuplicate) {
				return fmt.Errorf("second Append = %v, want ErrDuplicate", err)
			}
			e.IdempotencyKey = "k2"
			return audit.Append(ctx, tx, e)
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := db.AuditStore().PendingCount(ctx); n != 2 {
			t.Errorf("pending = %d, want 2", n)
		}
	})

	t.Run("sequencer, proofs and full verification", func(t *testing.T) {
		db := open(t)
		ctx := context.Background()
		l := newAuditLog(t, db)
		appendAudit(t, db, 0, 300)
		cp1, err := l.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		appendAudit(t, db, 300, 30)
		cp2, err := l.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp2.Size != 330 {
			t.Fatalf("size = %d, want 330", cp2.Size)
		}
		p, err := l.ConsistencyProof(ctx, cp1.Size, cp2.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckExtension(&cp1, cp2, p); err != nil {
			t.Error(err)
		}
		es, err := l.Entries(ctx, 255, 258)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			p, err := l.InclusionProof(ctx, e.Index, cp2.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.VerifyInclusion(e.Index, cp2.Size, tlog.LeafHash(e.Leaf), p, cp2.Hash); err != nil {
				t.Errorf("entry %d: %v", e.Index, err)
			}
		}
		tile, err := l.Tile(ctx, tlog.Tile{Level: 0, Index: 1, Width: 330 - 256})
		if err != nil || len(tile) != (330-256)*32 {
			t.Errorf("partial tile: %d bytes, %v", len(tile), err)
		}
		if _, err := l.Verify(ctx, true); err != nil {
			t.Fatalf("Verify(full) of an untouched log = %v", err)
		}
	})

	t.Run("concurrent appenders and sequencer", func(t *testing.T) {
		db := open(t)
		ctx := context.Background()
		l := newAuditLog(t, db)
		a := audit.NewAppender(db.InTx, audit.AppenderConfig{})
		defer a.Close()
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					if err := a.Append(ctx, audit.Entry{Kind: "test.event", Version: 1, Actor: fmt.Sprintf("agent:%d", w), Time: auditT0, Data: map[string]any{"i": i}}); err != nil {
						t.Error(err)
						return
					}
					if i%10 == 0 {
						if _, err := l.Integrate(ctx); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		cp, err := l.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != 400 {
			t.Errorf("size = %d, want 400", cp.Size)
		}
		if _, err := l.Verify(ctx, true); err != nil {
			t.Errorf("Verify(full) = %v", err)
		}
	})

	// Tampering with any stored entry or with the tree state is caught, and
	// verification names the first bad index.
	for _, tt := range []struct {
		name      string
		tamper    func(t *testing.T, db *store.DB)
		wantIndex uint64
	}{
		{"one byte of an entry's data", func(t *testing.T, db *store.DB) { flipByte(t, db, "data", 77) }, 77},
		{"one byte of an entry's commitments", func(t *testing.T, db *store.DB) { flipByte(t, db, "commitments", 12) }, 12},
		{"an entry's kind", func(t *testing.T, db *store.DB) {
			tamper(t, db, `UPDATE audit_entries SET kind = 'test.evenT' WHERE idx = 150`)
		}, 150},
		{"an entry's time", func(t *testing.T, db *store.DB) {
			tamper(t, db, `UPDATE audit_entries SET at_unix_nano = at_unix_nano + 1 WHERE idx = 3`)
		}, 3},
		{"delete the last 5", func(t *testing.T, db *store.DB) { tamper(t, db, `DELETE FROM audit_entries WHERE idx >= 195`) }, 195},
		{"delete one in the middle", func(t *testing.T, db *store.DB) { tamper(t, db, `DELETE FROM audit_entries WHERE idx = 100`) }, 100},
		{"reorder two", func(t *testing.T, db *store.DB) {
			tamper(t, db, `UPDATE audit_entries SET idx = -1 WHERE idx = 40`,
				`UPDATE audit_entries SET idx = 40 WHERE idx = 90`,
				`UPDATE audit_entries SET idx = 90 WHERE idx = -1`)
		}, 40},
		{"personal data deleted without redaction", func(t *testing.T, db *store.DB) {
			tamper(t, db, `UPDATE audit_entries SET personal = NULL, salts = NULL WHERE idx = 66`)
		}, 66},
		{"swap two hashes in the tree state", func(t *testing.T, db *store.DB) {
			ctx := context.Background()
			var h []byte
			if err := db.QueryRow(ctx, `SELECT hashes FROM audit_tiles WHERE level = 0 AND idx = 0`).Scan(&h); err != nil {
				t.Fatal(err)
			}
			a, b := append([]byte(nil), h[20*32:21*32]...), append([]byte(nil), h[30*32:31*32]...)
			copy(h[20*32:], b)
			copy(h[30*32:], a)
			if _, err := db.Exec(ctx, `UPDATE audit_tiles SET hashes = $1 WHERE level = 0 AND idx = 0`, h); err != nil {
				t.Fatal(err)
			}
		}, 20},
		{"rewrite entries and tree together", func(t *testing.T, db *store.DB) {
			// An insider rewrites entry 130 and recomputes the whole tree:
			// the tiles agree with the entries, the signed checkpoints don't.
			flipByte(t, db, "data", 130)
			tamper(t, db, `DELETE FROM audit_tiles`, `DELETE FROM audit_tree`, `DELETE FROM audit_actors`,
				`UPDATE audit_entries SET idx = NULL, actor_seq = NULL, actor_prev = NULL`)
			ctx := context.Background()
			// A second log instance (same key) re-integrates everything but
			// publishes nothing new.
			l := newAuditLog(t, db)
			// Hide the checkpoints while re-integrating, then restore them.
			tamper(t, db, `CREATE TABLE hidden_cps AS SELECT * FROM audit_checkpoints`, `DELETE FROM audit_checkpoints`)
			if _, err := l.Integrate(ctx); err != nil {
				t.Fatal(err)
			}
			tamper(t, db, `INSERT INTO audit_checkpoints SELECT * FROM hidden_cps`, `DROP TABLE hidden_cps`)
		}, 128}, // only the signed checkpoints (sizes 128, 200) are trusted: the range 128–199 is named
	} {
		t.Run("tamper: "+tt.name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			l := newAuditLog(t, db)
			appendAudit(t, db, 0, 128)
			if _, err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			appendAudit(t, db, 128, 72)
			if _, err := l.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Verify(ctx, true); err != nil {
				t.Fatalf("Verify before tampering = %v", err)
			}
			tt.tamper(t, db)
			_, err := l.Verify(ctx, true)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify(full) after tampering = %v, want a VerifyError", err)
			}
			if ve.Index != tt.wantIndex {
				t.Errorf("Verify(full) names entry %d (%s), want %d", ve.Index, ve.Reason, tt.wantIndex)
			}
		})
	}

	t.Run("tamper: tree frontier is refused by the sequencer and by verify", func(t *testing.T) {
		db := open(t)
		ctx := context.Background()
		l := newAuditLog(t, db)
		appendAudit(t, db, 0, 100)
		if _, err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		// Swap in the tree state of a different, shorter history.
		other := open(t)
		lo := newAuditLog(t, other)
		appendAudit(t, other, 500, 100)
		if _, err := lo.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		st, _ := other.AuditStore().TreeState(ctx)
		if _, err := db.Exec(ctx, `UPDATE audit_tree SET root = $1, frontier = $2`, st.Root, st.Frontier); err != nil {
			t.Fatal(err)
		}
		appendAudit(t, db, 100, 1)
		var tse *audit.TreeStateError
		if _, err := l.Integrate(ctx); !errors.As(err, &tse) {
			t.Errorf("Integrate on a swapped tree state = %v, want TreeStateError", err)
		}
		if _, err := l.Publish(ctx); !errors.As(err, &tse) {
			t.Errorf("Publish on a swapped tree state = %v, want TreeStateError", err)
		}
	})
})
