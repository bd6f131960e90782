package audit_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/store"
)

// basisFields are the parts of a ForkBasis that ForkIf compares.
type basisFields struct {
	size       uint64
	root, note []byte
}

// TestForkIfForksOnlyTheBasisThatWasApproved: a fork bound to what the
// signer remembered and what the database held refuses, and forks
// nothing, when either differs; with the exact basis it forks.
func TestForkIfForksOnlyTheBasisThatWasApproved(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		state := filepath.Join(t.TempDir(), "log-signer.checkpoint")
		now := func() time.Time { return t0 }
		l := signer(t, db, state, now)
		appendN(t, db, 60, false)
		if _, err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.ForkBasis(ctx); !isUserErr(err, "log_not_refusing") {
			t.Errorf("ForkBasis of a log that signs = %v, want log_not_refusing", err)
		}
		cutBack(t, db, 45)
		l = signer(t, db, state, now)
		if err := l.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer l.Stop(ctx)
		b, err := l.ForkBasis(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := db.AuditStore().TreeState(ctx)
		if b.Remembered.Size != 60 || b.RememberedEpoch != 1 || b.DatabaseSize != 45 || !bytes.Equal(b.DatabaseRoot, st.Root) || b.Refusal == "" {
			t.Fatalf("ForkBasis = size %d epoch %d, database %d %s", b.Remembered.Size, b.RememberedEpoch, b.DatabaseSize, hex.EncodeToString(b.DatabaseRoot))
		}
		for name, mutate := range map[string]func(*struct {
			size       uint64
			root, note []byte
		}){
			"another database size": func(x *struct {
				size       uint64
				root, note []byte
			}) {
				x.size--
			},
			"another database root": func(x *struct {
				size       uint64
				root, note []byte
			}) {
				x.root = bytes.Repeat([]byte{7}, 32)
			},
			"another remembered checkpoint": func(x *struct {
				size       uint64
				root, note []byte
			}) {
				x.note = append([]byte("x"), x.note...)
			},
		} {
			x := struct {
				size       uint64
				root, note []byte
			}{b.DatabaseSize, b.DatabaseRoot, b.RememberedNote}
			mutate(&x)
			other := b
			other.DatabaseSize, other.DatabaseRoot, other.RememberedNote = x.size, x.root, x.note
			if _, err := l.ForkIf(ctx, other, "person:p-a", "r"); !isUserErr(err, "fork_basis_changed") {
				t.Errorf("%s: ForkIf = %v, want fork_basis_changed", name, err)
			}
			if l.Refusal() == "" {
				t.Fatalf("%s: the log stopped refusing after a refused ForkIf", name)
			}
		}
		res, err := l.ForkIf(ctx, b, "person:p-a", "restored the backup")
		if err != nil || res.Index != 45 || res.Fork.Epoch != 2 || l.Refusal() != "" {
			t.Fatalf("ForkIf with the exact basis = %+v, %v; refusal %q", res, err, l.Refusal())
		}
	})
}
