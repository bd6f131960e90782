package store_test

import (
	"context"
	"testing"

	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestRoleGrantBackfill: persons made before migration 310 get role grants
// from it — the bootstrap admin's from "bootstrap", an invited person's
// from their inviter at the invitation's time — so that an upgrade does
// not leave every approver "unrecorded" (refused) or, worse, unchecked.
func TestRoleGrantBackfill(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) store.Config
	}{
		{"sqlite", func(t *testing.T) store.Config { return store.Config{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) store.Config { return store.Config{DSN: storetest.PostgresDSN(t)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := tc.cfg(t)
			db, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			e := storetest.NewIdentityEnv(t, db)
			_, admin := e.Login(e.Bootstrap("admin"), storetest.NewIdentityDevice(t))
			approver := e.Invite(admin, "approver1", identity.RoleApprover).PersonID
			// Go back to before migration 310.
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(ctx, `DROP TABLE role_grants`); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE name LIKE '%310_role_grants.sql'`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if db, err = store.Open(ctx, cfg); err != nil {
				t.Fatalf("migrate again: %v", err)
			}
			defer db.Close()
			r := db.IdentityStore()
			for _, want := range []identity.RoleGrant{
				{PersonID: admin.ID, Role: identity.RoleAdmin, GrantedBy: identity.GrantedByBootstrap},
				{PersonID: approver, Role: identity.RoleApprover, GrantedBy: "person:" + admin.ID},
			} {
				gs, err := r.RoleGrantsOfPerson(ctx, want.PersonID)
				if err != nil {
					t.Fatal(err)
				}
				if len(gs) != 1 || gs[0].Role != want.Role || gs[0].GrantedBy != want.GrantedBy || gs[0].GrantedAt.IsZero() || !gs[0].RevokedAt.IsZero() {
					t.Errorf("backfilled grants of %s = %+v, want one %s grant by %s", want.PersonID, gs, want.Role, want.GrantedBy)
				}
			}
		})
	}
}
