package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/sso"
	"github.com/interlock-dev/interlock/internal/store"
)

var _ = Register("sso_and_recovery", SSOAndRecoveryCases)

// SSOAndRecoveryCases checks the one-time writes that single sign-on and
// account recovery rest on: a sign-in in flight, a recovery code and a
// reset code each work once, even when two servers try at the same moment.
func SSOAndRecoveryCases(t *testing.T, open Opener) {
	ctx := context.Background()
	t.Run("a sign-in in flight completes once", func(t *testing.T) {
		db := open(t)
		now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
		l := sso.PendingLogin{ID: "sso_1", StateHash: []byte("state-hash-32-bytes-long-enough!"), IssuerName: "corp", JKT: "jkt",
			RedirectURI: "http://127.0.0.1:1/callback", NonceHash: []byte("n"), VerifierSealed: []byte("v"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		st := db.SSOStore()
		if err := st.InTx(ctx, func(tx sso.Tx) error { return tx.InsertSSOLogin(ctx, l) }); err != nil {
			t.Fatal(err)
		}
		err := st.InTx(ctx, func(tx sso.Tx) error { _, err := tx.SSOLoginByStateHash(ctx, []byte("other")); return err })
		if !st.IsNotFound(err) {
			t.Errorf("an unknown state: %v, want not found", err)
		}
		if won := raceOnce(t, 8, func() (bool, error) {
			var ok bool
			err := st.InTx(ctx, func(tx sso.Tx) (err error) { ok, err = tx.UseSSOLogin(ctx, l.ID, now); return err })
			return ok, err
		}); won != 1 {
			t.Errorf("%d of 8 concurrent completions of one sign-in succeeded, want 1", won)
		}
	})
	t.Run("a recovery code works once", func(t *testing.T) {
		db := open(t)
		e := NewIdentityEnv(t, db)
		enr := e.Bootstrap("admin")
		if len(enr.RecoveryCodes) != 10 {
			t.Fatalf("bootstrap gave %d recovery codes", len(enr.RecoveryCodes))
		}
		use := func(tx *store.Tx, hash []byte) (bool, error) {
			return tx.UseRecoveryCode(ctx, enr.PersonID, hash, e.Now())
		}
		hashes := [][]byte{[]byte("h1"), []byte("h2")}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.ReplaceRecoveryCodes(ctx, enr.PersonID, hashes, e.Now()) }); err != nil {
			t.Fatal(err)
		}
		if won := raceOnce(t, 8, func() (bool, error) {
			var ok bool
			err := db.InTx(ctx, func(tx *store.Tx) (err error) { ok, err = use(tx, hashes[0]); return err })
			return ok, err
		}); won != 1 {
			t.Errorf("%d of 8 concurrent uses of one recovery code succeeded, want 1", won)
		}
		var left int
		if err := db.InTx(ctx, func(tx *store.Tx) (err error) { left, err = tx.UnusedRecoveryCodes(ctx, enr.PersonID); return err }); err != nil || left != 1 {
			t.Errorf("unused recovery codes = %d, %v; want 1", left, err)
		}
		var other bool
		if err := db.InTx(ctx, func(tx *store.Tx) (err error) {
			other, err = tx.UseRecoveryCode(ctx, "p_someone_else", hashes[1], e.Now())
			return err
		}); err != nil || other {
			t.Errorf("another person used admin's recovery code: %v, %v", other, err)
		}
	})
}

// raceOnce runs fn n times at once and counts the runs that reported true.
func raceOnce(t *testing.T, n int, fn func() (bool, error)) int {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range n {
		wg.Go(func() {
			ok, err := fn()
			if err != nil {
				t.Errorf("concurrent attempt: %v", err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return won
}
