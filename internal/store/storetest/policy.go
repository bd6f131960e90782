package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/usererr"
)

var _ = Register("policy", func(t *testing.T, open Opener) {
	ctx := context.Background()
	admin := wire.Principal{Kind: "person", ID: "p-admin", Name: "admin", Roles: []string{"admin"}}

	t.Run("no version stored", func(t *testing.T) {
		db := open(t)
		_, ok, err := db.PolicyStore().LatestPolicy(ctx)
		if err != nil || ok {
			t.Fatalf("LatestPolicy = ok %v, err %v; want nothing stored", ok, err)
		}
		if err := db.PolicyStore().InTx(ctx, func(tx policy.Tx) error {
			v, h, err := tx.LatestPolicyVersion(ctx)
			if err != nil || v != 0 || h != "" {
				t.Errorf("LatestPolicyVersion = %d, %q, %v; want 0, \"\", nil", v, h, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("versions round-trip and the highest wins", func(t *testing.T) {
		db := open(t)
		s := db.PolicyStore()
		at := time.Unix(1700000000, 123456789).UTC()
		for v := 1; v <= 3; v++ {
			p := policy.StoredPolicy{Version: v, Text: strings.Repeat("x", v), Hash: "h" + strings.Repeat("x", v), Author: "person:a", CreatedAt: at}
			if err := s.InTx(ctx, func(tx policy.Tx) error { return tx.InsertPolicyVersion(ctx, p) }); err != nil {
				t.Fatal(err)
			}
		}
		got, ok, err := s.LatestPolicy(ctx)
		if err != nil || !ok {
			t.Fatalf("LatestPolicy: ok %v, err %v", ok, err)
		}
		want := policy.StoredPolicy{Version: 3, Text: "xxx", Hash: "hxxx", Author: "person:a", CreatedAt: at}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LatestPolicy (-want +got):\n%s", diff)
		}
	})

	t.Run("a version is stored once", func(t *testing.T) {
		db := open(t)
		s := db.PolicyStore()
		p := policy.StoredPolicy{Version: 1, Text: "a", Hash: "h", Author: "person:a", CreatedAt: time.Unix(1, 0)}
		if err := s.InTx(ctx, func(tx policy.Tx) error { return tx.InsertPolicyVersion(ctx, p) }); err != nil {
			t.Fatal(err)
		}
		err := s.InTx(ctx, func(tx policy.Tx) error { return tx.InsertPolicyVersion(ctx, p) })
		if !errors.Is(err, store.ErrConflict) || !errors.Is(err, policy.ErrVersionTaken) {
			t.Errorf("second insert of version 1 = %v, want ErrConflict and policy.ErrVersionTaken", err)
		}
	})

	t.Run("concurrent applies get distinct versions or a conflict", func(t *testing.T) {
		db := open(t)
		var svcs []*policy.Service
		for i := 0; i < 4; i++ {
			eng, _ := policy.NewEngine(policy.EngineConfig{})
			svc, err := policy.New(policy.Config{Store: db.PolicyStore(), Engine: eng})
			if err != nil {
				t.Fatal(err)
			}
			svcs = append(svcs, svc)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(svcs))
		for i, svc := range svcs {
			wg.Go(func() {
				_, errs[i] = svc.Apply(ctx, admin, policy.DefaultText+fmt.Sprintf("\n// server %d\n", i))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			if ue, isUser := usererr.As(err); !isUser || ue.Kind != usererr.Conflict {
				t.Errorf("concurrent Apply = %v, want success or usererr.Conflict", err)
			}
		}
		var n, maxV int
		if err := db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(MAX(version), 0) FROM policy_versions`).Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		var audits int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_entries WHERE kind = 'policy.applied'`).Scan(&audits); err != nil {
			t.Fatal(err)
		}
		if ok == 0 || n != ok || maxV != ok || audits != ok {
			t.Errorf("%d applies succeeded; stored %d versions (max %d) and %d audit entries, want all equal and > 0", ok, n, maxV, audits)
		}
	})

	t.Run("apply stores the version with its audit entry and swaps the engine", func(t *testing.T) {
		db := open(t)
		now := time.Unix(1800000000, 0)
		eng, err := policy.NewEngine(policy.EngineConfig{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		svc, err := policy.New(policy.Config{Store: db.PolicyStore(), Engine: eng, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		text := policy.DefaultText + "\n@id(\"viewer.secrets\")\npermit (principal in Role::\"viewer\", action == Action::\"secret.list\", resource);\n"
		v, err := svc.Apply(ctx, admin, text)
		if err != nil || v != 1 {
			t.Fatalf("Apply = %d, %v; want version 1", v, err)
		}
		cur, err := svc.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(policy.Current{Text: text, Version: 1, Hash: policy.Hash(text)}, cur); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_entries WHERE kind = 'policy.applied' AND actor = 'person:p-admin' AND subject = 'policy:1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("policy.applied audit entries = %d, want 1", n)
		}
		viewer := wire.Principal{Kind: "person", ID: "v", Roles: []string{"viewer"}}
		if d := eng.Decide(ctx, policy.Request{Principal: viewer, Action: policy.ActionSecretList, Resource: policy.Resource{Type: "Secret", ID: "db"}}); !d.Allow {
			t.Errorf("after Apply, viewer secret.list = %+v, want allowed by the applied policy", d)
		}

		// A second server starting on the same database loads version 1.
		eng2, _ := policy.NewEngine(policy.EngineConfig{})
		if _, err := policy.New(policy.Config{Store: db.PolicyStore(), Engine: eng2}); err != nil {
			t.Fatal(err)
		}
		if v, h := eng2.Version(); v != 1 || h != policy.Hash(text) {
			t.Errorf("new engine version = %d %s, want 1 %s", v, h, policy.Hash(text))
		}
	})

	t.Run("invalid policy changes nothing", func(t *testing.T) {
		db := open(t)
		eng, _ := policy.NewEngine(policy.EngineConfig{})
		svc, err := policy.New(policy.Config{Store: db.PolicyStore(), Engine: eng})
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{"permit (principal, action, resource)", "@id(\"x\") permit (principal,", "@id(\"only-viewers\") permit (principal in Role::\"viewer\", action == Action::\"whoami\", resource);"} {
			if _, err := svc.Apply(ctx, admin, text); err == nil {
				t.Errorf("Apply(%q) succeeded, want an error", text)
			}
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM policy_versions) + (SELECT COUNT(*) FROM audit_entries)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("rows after refused applies = %d, want 0", n)
		}
	})
})
