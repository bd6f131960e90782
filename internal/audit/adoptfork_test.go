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
)

// TestSignerDoesNotAdoptAForkThatHidesWhatItSigned is the attacker with
// the database who brings in a fork made elsewhere with the same log key
// — a staging copy restored from an older backup, refusing there, forked
// there by whoever runs it. Its epoch-2 checkpoint is validly signed and
// the stored tree reproduces it, but its fork entry names a checkpoint of
// 40 entries while this server signed 60. This server must refuse (its
// own admin may fork, recording the 60), not adopt the foreign epoch and
// so drop 20 entries it signed without any record saying so.
func TestSignerDoesNotAdoptAForkThatHidesWhatItSigned(t *testing.T) {
	bothStores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := func() time.Time { return t0 }
		staging := signer(t, db, filepath.Join(t.TempDir(), "staging"), now)
		prod := signer(t, db, filepath.Join(t.TempDir(), "prod"), now)
		appendN(t, db, 40, false)
		if _, err := staging.Sync(ctx); err != nil { // the old backup's signer state
			t.Fatal(err)
		}
		appendN(t, db, 20, false)
		if _, err := prod.Sync(ctx); err != nil { // production signed 60
			t.Fatal(err)
		}
		cutBack(t, db, 30)
		if _, err := staging.Publish(ctx); err == nil {
			t.Fatal("staging signed a cut-back database")
		}
		if _, err := staging.Fork(ctx, "person:p-staging-admin", "staging restore"); err != nil {
			t.Fatal(err)
		}

		_, err := prod.Publish(ctx)
		var re *audit.RefusalError
		if !errors.As(err, &re) || !re.Forkable || !strings.Contains(re.Sentence, "40") || !strings.Contains(re.Sentence, "60") {
			t.Fatalf("production after a foreign fork that hides 20 of its entries: Publish = %v, refusal %q; want a forkable refusal naming 40 and 60", err, prod.Refusal())
		}
		// Production's own admin records the fork of what it signed.
		res, err := prod.Fork(ctx, "person:p-admin", "a staging fork was copied in")
		if err != nil || res.Fork.Epoch != 3 || res.Fork.PreviousSize != 60 {
			t.Fatalf("production's fork = %+v, %v; want epoch 3 naming its 60 entries", res, err)
		}
		if _, err := prod.Verify(ctx, true); err != nil {
			t.Errorf("Verify(full) after production's fork = %v", err)
		}
	})
}
