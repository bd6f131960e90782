package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/passkey"
)

var _ = Register("passkey", func(t *testing.T, open Opener) {
	ctx := context.Background()
	at := time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)
	setUp := func(t *testing.T) passkey.Store {
		db := open(t)
		for _, id := range []string{"p-alice", "p-bob"} {
			p := identity.Person{ID: id, Username: id[2:], Roles: []string{"approver"}, Status: identity.StatusActive,
				PasswordSealed: []byte("x"), TOTPSealed: []byte("y"), CreatedAt: at}
			if err := db.IdentityStore().InTx(ctx, func(tx identity.Tx) error { return tx.InsertPerson(ctx, p) }); err != nil {
				t.Fatal(err)
			}
		}
		return db.PasskeyStore()
	}
	pk := func(id, person string) passkey.Passkey {
		return passkey.Passkey{ID: id, PersonID: person, Name: "key " + id, Credential: []byte(`{"id":"` + id + `"}`), CreatedAt: at}
	}

	t.Run("insert with its audit entry, read back, list by person", func(t *testing.T) {
		s := setUp(t)
		a, b := pk("cred-a", "p-alice"), pk("cred-b", "p-bob")
		if err := s.InTx(ctx, func(tx passkey.Tx) error {
			if err := tx.InsertPasskey(ctx, a); err != nil {
				return err
			}
			if err := tx.InsertPasskey(ctx, b); err != nil {
				return err
			}
			return audit.Append(ctx, tx, audit.Entry{Kind: "passkey.registered", Version: 1, Actor: "person:p-alice", Subject: "passkey:cred-a", Time: at})
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Passkey(ctx, "cred-a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("Passkey (-want +got):\n%s", diff)
		}
		list, err := s.Passkeys(ctx, "p-alice")
		if err != nil || len(list) != 1 || list[0].ID != "cred-a" {
			t.Errorf("Passkeys(p-alice) = %+v, %v", list, err)
		}
		if _, err := s.Passkey(ctx, "cred-none"); !errors.Is(err, passkey.ErrNotFound) {
			t.Errorf("Passkey(unknown) = %v, want passkey.ErrNotFound", err)
		}
	})

	t.Run("a duplicate credential id is refused and changes nothing", func(t *testing.T) {
		s := setUp(t)
		if err := s.InTx(ctx, func(tx passkey.Tx) error { return tx.InsertPasskey(ctx, pk("cred-a", "p-alice")) }); err != nil {
			t.Fatal(err)
		}
		if err := s.InTx(ctx, func(tx passkey.Tx) error { return tx.InsertPasskey(ctx, pk("cred-a", "p-bob")) }); err == nil {
			t.Fatal("the same credential id was registered twice")
		}
		if got, _ := s.Passkey(ctx, "cred-a"); got.PersonID != "p-alice" {
			t.Errorf("cred-a now belongs to %s", got.PersonID)
		}
	})

	t.Run("a person deletes only their own; use updates the counter record", func(t *testing.T) {
		s := setUp(t)
		if err := s.InTx(ctx, func(tx passkey.Tx) error { return tx.InsertPasskey(ctx, pk("cred-a", "p-alice")) }); err != nil {
			t.Fatal(err)
		}
		var ok bool
		if err := s.InTx(ctx, func(tx passkey.Tx) (err error) { ok, err = tx.DeletePasskey(ctx, "p-bob", "cred-a"); return err }); err != nil || ok {
			t.Fatalf("bob deleting alice's passkey = %v, %v", ok, err)
		}
		if err := s.InTx(ctx, func(tx passkey.Tx) error {
			return tx.UpdatePasskeyUse(ctx, "cred-a", []byte(`{"id":"cred-a","n":2}`), at.Add(time.Hour))
		}); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Passkey(ctx, "cred-a")
		if string(got.Credential) != `{"id":"cred-a","n":2}` || !got.LastUsed.Equal(at.Add(time.Hour)) {
			t.Errorf("after use: %s, %v", got.Credential, got.LastUsed)
		}
		if err := s.InTx(ctx, func(tx passkey.Tx) (err error) { ok, err = tx.DeletePasskey(ctx, "p-alice", "cred-a"); return err }); err != nil || !ok {
			t.Fatalf("alice deleting her passkey = %v, %v", ok, err)
		}
		if list, _ := s.Passkeys(ctx, "p-alice"); len(list) != 0 {
			t.Errorf("after delete: %+v", list)
		}
	})

	t.Run("a failed transaction leaves no passkey", func(t *testing.T) {
		s := setUp(t)
		boom := errors.New("boom")
		if err := s.InTx(ctx, func(tx passkey.Tx) error {
			if err := tx.InsertPasskey(ctx, pk("cred-x", "p-alice")); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := s.Passkey(ctx, "cred-x"); !errors.Is(err, passkey.ErrNotFound) {
			t.Errorf("a rolled-back passkey is stored: %v", err)
		}
	})
})
