package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/change"
)

var _ = Register("change", func(t *testing.T, open Opener) {
	ctx := context.Background()
	at := time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)
	req := func(id string, created time.Time) change.Request {
		return change.Request{ID: id, Kind: change.KindServices, Target: "billing", Content: `[{"name":"billing"}]`, Base: `[]`,
			Hash: change.ContentHash(change.KindServices, "billing", `[{"name":"billing"}]`, `[]`), Summary: "lowers a floor",
			RequesterID: "p-admin", RequesterName: "admin", State: change.Pending, CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}
	}

	t.Run("insert, read back, list newest first", func(t *testing.T) {
		db := open(t)
		s := db.ChangeStore()
		a, b := req("cr_a", at), req("cr_b", at.Add(time.Minute))
		if err := s.InTx(ctx, func(tx change.Tx) error {
			if err := tx.InsertChangeRequest(ctx, a); err != nil {
				return err
			}
			return tx.InsertChangeRequest(ctx, b)
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ChangeRequest(ctx, "cr_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got); diff != "" {
			t.Errorf("ChangeRequest (-want +got):\n%s", diff)
		}
		list, err := s.ChangeRequests(ctx, change.Filter{States: []change.State{change.Pending}})
		if err != nil || len(list) != 2 || list[0].ID != "cr_b" {
			t.Fatalf("ChangeRequests = %+v, %v; want cr_b then cr_a", list, err)
		}
		if _, err := s.ChangeRequest(ctx, "cr_none"); !errors.Is(err, change.ErrNotFound) {
			t.Errorf("ChangeRequest(unknown) = %v, want change.ErrNotFound", err)
		}
	})

	t.Run("a decision moves a request out of the state it was read in, once", func(t *testing.T) {
		db := open(t)
		s := db.ChangeStore()
		r := req("cr_c", at)
		if err := s.InTx(ctx, func(tx change.Tx) error { return tx.InsertChangeRequest(ctx, r) }); err != nil {
			t.Fatal(err)
		}
		r.State, r.DecidedBy, r.DecidedAt, r.Detail = change.Applied, "person:p-approver", at.Add(time.Hour), "ok"
		for i, want := range []bool{true, false} { // a second approver racing the first loses
			var ok bool
			if err := s.InTx(ctx, func(tx change.Tx) error {
				var err error
				ok, err = tx.UpdateChangeRequest(ctx, r, change.Pending)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if ok != want {
				t.Errorf("update %d from pending = %t, want %t", i+1, ok, want)
			}
		}
		got, err := s.ChangeRequest(ctx, "cr_c")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}
	})
})
