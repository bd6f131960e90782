package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
)

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
})
