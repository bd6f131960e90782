package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store"
)

// Fleet scale: what lets a server answer agents from memory (migration
// 490 and later).
var _ = Register("fleet scale", func(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("every revocation and pinned certificate moves the identity generation", func(t *testing.T) {
		s := open(t).OpsStore()
		gen, ok := s.(interface {
			OpsIdentityGeneration(context.Context) (int64, error)
		})
		if !ok {
			t.Fatal("the ops store does not count identity changes")
		}
		read := func() int64 {
			t.Helper()
			g, err := gen.OpsIdentityGeneration(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		type pinner interface {
			PutHostCertificate(ctx context.Context, c ops.HostCertificate, replaces string) error
		}
		g0 := read()
		opsTx(t, s, func(tx ops.Tx) error {
			return tx.InsertHost(ctx, ops.Host{ID: "host_a", Name: "a1", Services: []string{"web"}}, opsT0)
		})
		if g := read(); g != g0 {
			t.Fatalf("enrolling a host without a certificate moved the generation %d → %d", g0, g)
		}
		cert := ops.HostCertificate{HostID: "host_a", Fingerprint: "f0", PEM: "p0", NotAfter: opsT0.AddDate(0, 3, 0), IssuedAt: opsT0}
		opsTx(t, s, func(tx ops.Tx) error { return tx.(pinner).PutHostCertificate(ctx, cert, "") })
		if g := read(); g != g0 {
			// No cache can hold anything about a host's first certificate
			// (hostcert.go); moving the counter would flush every
			// server's cache once a second while a fleet enrolls.
			t.Fatalf("pinning a new host's first certificate moved the generation %d → %d", g0, g)
		}
		// Pinning again (an agent enrolling again with its token) does.
		cert.Fingerprint, cert.PEM = "f1", "p1"
		opsTx(t, s, func(tx ops.Tx) error { return tx.(pinner).PutHostCertificate(ctx, cert, "") })
		g1 := read()
		if g1 <= g0 {
			t.Fatalf("pinning a certificate over another left the generation at %d (was %d)", g1, g0)
		}
		if c, err := s.(interface {
			OpsHostCertificate(context.Context, string) (ops.HostCertificate, error)
		}).OpsHostCertificate(ctx, "host_a"); err != nil || c.Fingerprint != "f1" {
			t.Fatalf("after pinning again the host's certificate is %q (%v), want f1", c.Fingerprint, err)
		}
		renewed := cert
		renewed.Fingerprint, renewed.Previous = "f2", "f1"
		opsTx(t, s, func(tx ops.Tx) error { return tx.(pinner).PutHostCertificate(ctx, renewed, "f1") })
		g2 := read()
		if g2 <= g1 {
			t.Fatalf("a renewal left the generation at %d (was %d)", g2, g1)
		}
		// A renewal that loses the race changes nothing, the counter included.
		if err := s.InTx(ctx, func(tx ops.Tx) error { return tx.(pinner).PutHostCertificate(ctx, renewed, "f1") }); err == nil {
			t.Fatal("a renewal of a certificate that is no longer pinned succeeded")
		}
		if g := read(); g != g2 {
			t.Fatalf("a refused renewal moved the generation %d → %d", g2, g)
		}
		opsTx(t, s, func(tx ops.Tx) error { return tx.RevokeHost(ctx, "host_a", opsT0.Add(time.Minute)) })
		if g := read(); g <= g2 {
			t.Fatalf("a revocation left the generation at %d (was %d)", g, g2)
		}
	})

	t.Run("batched heartbeats skip revoked hosts and never move last_seen back", func(t *testing.T) {
		s := open(t).OpsStore()
		w, ok := s.(interface {
			TouchHostsSeen(ctx context.Context, ids []string, healthy bool, at time.Time) error
		})
		if !ok {
			t.Fatal("the ops store cannot write heartbeats in batches")
		}
		opsTx(t, s, func(tx ops.Tx) error {
			for _, id := range []string{"host_a", "host_b", "host_c"} {
				if err := tx.InsertHost(ctx, ops.Host{ID: id, Name: id, Services: []string{"web"}, Healthy: true, LastSeen: opsT0}, opsT0); err != nil {
					return err
				}
			}
			if err := tx.RevokeHost(ctx, "host_b", opsT0); err != nil {
				return err
			}
			return tx.SetHostHeartbeat(ctx, "host_c", true, opsT0.Add(time.Hour))
		})
		at := opsT0.Add(time.Minute)
		if err := w.TouchHostsSeen(ctx, []string{"host_a", "host_b", "host_c"}, false, at); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]struct {
			seen    time.Time
			healthy bool
		}{"host_a": {at, false}, "host_b": {opsT0, true}, "host_c": {opsT0.Add(time.Hour), true}} {
			h, err := s.OpsHost(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !h.LastSeen.Equal(want.seen) || h.Healthy != want.healthy {
				t.Errorf("%s: last seen %v healthy %v, want %v %v", id, h.LastSeen, h.Healthy, want.seen, want.healthy)
			}
		}
	})

	t.Run("grouped transactions: each caller gets its own outcome", func(t *testing.T) {
		db := open(t)
		if _, err := db.Exec(ctx, `CREATE TABLE group_test (n BIGINT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.InTxGrouped(ctx, func(tx *store.Tx) error {
					if _, err := tx.Exec(ctx, `INSERT INTO group_test (n) VALUES ($1)`, i); err != nil {
						return err
					}
					if i%3 == 0 {
						return errors.New("refused")
					}
					if i%7 == 0 { // a statement that fails inside the shared transaction
						_, err := tx.Exec(ctx, `INSERT INTO group_test (n) VALUES ($1)`, i)
						return err
					}
					return nil
				})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			want := i%3 != 0 && i%7 != 0
			if (err == nil) != want {
				t.Errorf("call %d: error %v, want success %v", i, err, want)
			}
			var c int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM group_test WHERE n = $1`, i).Scan(&c); err != nil {
				t.Fatal(err)
			}
			if (c == 1) != want {
				t.Errorf("call %d: %d rows, want committed %v", i, c, want)
			}
		}
	})
})
