package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/interlock-dev/interlock/internal/ops"
)

var opsT0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func opsTx(t *testing.T, s ops.Store, fn func(ops.Tx) error) {
	t.Helper()
	if err := s.InTx(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

var _ = Register("ops", func(t *testing.T, open Opener) {
	ctx := context.Background()
	equate := cmpopts.EquateEmpty()

	t.Run("hosts round trip, heartbeat and in-service", func(t *testing.T) {
		s := open(t).OpsStore()
		h := ops.Host{ID: "host_b", Name: "b1", Services: []string{"billing", "index"}, Labels: map[string]string{"zone": "a"}, InService: true, Healthy: true, LastSeen: opsT0}
		h2 := ops.Host{ID: "host_a", Name: "a1", Services: []string{"web"}}
		opsTx(t, s, func(tx ops.Tx) error {
			if err := tx.InsertHost(ctx, h, opsT0); err != nil {
				return err
			}
			return tx.InsertHost(ctx, h2, opsT0)
		})
		got, err := s.OpsHosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ops.Host{h2, h}, got, equate); diff != "" {
			t.Errorf("OpsHosts, sorted by name (-want +got):\n%s", diff)
		}
		later := opsT0.Add(3 * time.Second)
		opsTx(t, s, func(tx ops.Tx) error {
			if err := tx.SetHostHeartbeat(ctx, "host_b", false, later); err != nil {
				return err
			}
			return tx.SetHostInService(ctx, "host_b", false)
		})
		one, err := s.OpsHost(ctx, "host_b")
		if err != nil {
			t.Fatal(err)
		}
		h.Healthy, h.InService, h.LastSeen = false, false, later
		if diff := cmp.Diff(h, one, equate); diff != "" {
			t.Errorf("after heartbeat (-want +got):\n%s", diff)
		}
		if _, err := s.OpsHost(ctx, "nope"); !errors.Is(err, ops.ErrNotFound) {
			t.Errorf("OpsHost(nope) = %v, want ops.ErrNotFound", err)
		}
		err = s.InTx(ctx, func(tx ops.Tx) error { return tx.SetHostHeartbeat(ctx, "nope", true, later) })
		if !errors.Is(err, ops.ErrNotFound) {
			t.Errorf("heartbeat of unknown host = %v, want ops.ErrNotFound", err)
		}
		opsTx(t, s, func(tx ops.Tx) error { return tx.RevokeHost(ctx, "host_b", later) })
		if one, err := s.OpsHost(ctx, "host_b"); err != nil || !one.RevokedAt.Equal(later) {
			t.Errorf("after RevokeHost: %+v, %v; want revoked at %s", one, err, later)
		}
		for _, id := range []string{"host_b", "nope"} {
			err := s.InTx(ctx, func(tx ops.Tx) error { return tx.RevokeHost(ctx, id, later) })
			if !errors.Is(err, ops.ErrNotFound) {
				t.Errorf("RevokeHost(%s) again or unknown = %v, want ops.ErrNotFound", id, err)
			}
		}
	})

	t.Run("join tokens are claimed once and only before expiry", func(t *testing.T) {
		s := open(t).OpsStore()
		jt := ops.JoinToken{ID: "jt_1", Hash: []byte("0123456789abcdef0123456789abcdef"), Services: []string{"web"}, Labels: map[string]string{"zone": "b"},
			CreatedBy: "person:p1", CreatedAt: opsT0, ExpiresAt: opsT0.Add(time.Hour)}
		old := ops.JoinToken{ID: "jt_2", Hash: []byte("ffffffffffffffffffffffffffffffff"), Services: []string{"web"}, CreatedBy: "person:p1", CreatedAt: opsT0, ExpiresAt: opsT0.Add(time.Minute)}
		opsTx(t, s, func(tx ops.Tx) error {
			if err := tx.InsertJoinToken(ctx, jt); err != nil {
				return err
			}
			return tx.InsertJoinToken(ctx, old)
		})
		var got ops.JoinToken
		opsTx(t, s, func(tx ops.Tx) error {
			var err error
			got, err = tx.ClaimJoinToken(ctx, jt.Hash, "host_x", "key-x", opsT0.Add(time.Minute))
			return err
		})
		want := jt
		want.UsedAt, want.HostID, want.KeySHA256 = opsT0.Add(time.Minute), "host_x", "key-x"
		if diff := cmp.Diff(want, got, equate); diff != "" {
			t.Errorf("claimed token (-want +got):\n%s", diff)
		}
		opsTx(t, s, func(tx ops.Tx) error {
			spent, err := tx.SpentJoinToken(ctx, jt.Hash, "key-x", opsT0.Add(2*time.Minute))
			if err != nil {
				return err
			}
			if diff := cmp.Diff(want, spent, equate); diff != "" {
				t.Errorf("spent token (-want +got):\n%s", diff)
			}
			return nil
		})
		for name, tc := range map[string]struct {
			hash []byte
			key  string
			at   time.Time
		}{
			"another key":  {jt.Hash, "key-y", opsT0.Add(2 * time.Minute)},
			"no key":       {jt.Hash, "", opsT0.Add(2 * time.Minute)},
			"after expiry": {jt.Hash, "key-x", opsT0.Add(time.Hour)},
			"never used":   {old.Hash, "", opsT0},
			"unknown":      {[]byte("nope"), "key-x", opsT0},
		} {
			err := s.InTx(ctx, func(tx ops.Tx) error {
				_, err := tx.SpentJoinToken(ctx, tc.hash, tc.key, tc.at)
				return err
			})
			if !errors.Is(err, ops.ErrNotFound) {
				t.Errorf("%s: SpentJoinToken = %v, want ops.ErrNotFound", name, err)
			}
		}
		for name, tc := range map[string]struct {
			hash []byte
			at   time.Time
		}{
			"second use": {jt.Hash, opsT0.Add(2 * time.Minute)},
			"expired":    {old.Hash, opsT0.Add(time.Minute)},
			"unknown":    {[]byte("nope"), opsT0},
		} {
			err := s.InTx(ctx, func(tx ops.Tx) error {
				_, err := tx.ClaimJoinToken(ctx, tc.hash, "host_y", "key-y", tc.at)
				return err
			})
			if !errors.Is(err, ops.ErrNotFound) {
				t.Errorf("%s: ClaimJoinToken = %v, want ops.ErrNotFound", name, err)
			}
		}
	})

	t.Run("services put, replace and ensure", func(t *testing.T) {
		s := open(t).OpsStore()
		web := ops.Service{Name: "web", MinHealthy: ops.Threshold{Percent: 50, IsPercent: true}, MaxPerOperation: ops.Threshold{Count: 2},
			Freezes: []ops.Window{{Start: opsT0, End: opsT0.Add(time.Hour), Reason: "sale"}}}
		opsTx(t, s, func(tx ops.Tx) error {
			if err := tx.PutService(ctx, ops.Service{Name: "web"}, opsT0); err != nil {
				return err
			}
			if err := tx.PutService(ctx, web, opsT0); err != nil {
				return err
			}
			return tx.EnsureServices(ctx, []string{"web", "db"}, opsT0)
		})
		got, err := s.OpsServices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ops.Service{{Name: "db"}, web}, got, equate); diff != "" {
			t.Errorf("OpsServices (-want +got):\n%s", diff)
		}
	})

	t.Run("runbook versions", func(t *testing.T) {
		s := open(t).OpsStore()
		v := func(name string, n int) ops.RunbookVersion {
			return ops.RunbookVersion{Name: name, Version: n, Source: []byte(name + " v" + string(rune('0'+n))), AppliedBy: "person:p1", AppliedAt: opsT0.Add(time.Duration(n) * time.Second)}
		}
		opsTx(t, s, func(tx ops.Tx) error {
			for _, rv := range []ops.RunbookVersion{v("drain", 1), v("drain", 2), v("restart", 1)} {
				if err := tx.InsertRunbookVersion(ctx, rv); err != nil {
					return err
				}
			}
			return nil
		})
		err := s.InTx(ctx, func(tx ops.Tx) error { return tx.InsertRunbookVersion(ctx, v("drain", 2)) })
		if !errors.Is(err, ops.ErrConflict) {
			t.Errorf("duplicate version = %v, want ops.ErrConflict", err)
		}
		latest, err := s.OpsRunbook(ctx, "drain", 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(v("drain", 2), latest, equate); diff != "" {
			t.Errorf("latest (-want +got):\n%s", diff)
		}
		first, err := s.OpsRunbook(ctx, "drain", 1)
		if err != nil || first.Version != 1 {
			t.Errorf("drain v1 = %d, %v", first.Version, err)
		}
		if _, err := s.OpsRunbook(ctx, "nope", 0); !errors.Is(err, ops.ErrNotFound) {
			t.Errorf("unknown runbook = %v, want ops.ErrNotFound", err)
		}
		all, err := s.OpsRunbooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ops.RunbookVersion{v("drain", 2), v("restart", 1)}, all, equate); diff != "" {
			t.Errorf("OpsRunbooks (-want +got):\n%s", diff)
		}
	})

	t.Run("operations insert, update and filter", func(t *testing.T) {
		db := open(t)
		s := db.OpsStore()
		mk := func(id, runbook string, state ops.OpState, at int) ops.Operation {
			p := ops.Plan{Runbook: runbook, Service: "web", RunbookVersion: 1, Params: map[string]string{"count": "2"},
				Waves: []ops.Wave{{Number: 1, Hosts: []string{"h1"}}}, Step: ops.Command{Argv: []string{"echo", "hi"}, TimeoutSeconds: 5, MaxOutputBytes: 10},
				Services: []string{"web"}, RemovesCapacity: true}
			p.Hash = ops.HashPlan(p)
			return ops.Operation{ID: id, Plan: p, State: state, RequesterID: "p1", Reason: "INC-1", Needed: 1, NeededRoles: []string{"approver"},
				CreatedAt: opsT0.Add(time.Duration(at) * time.Second), UpdatedAt: opsT0.Add(time.Duration(at) * time.Second)}
		}
		a, b, c := mk("op_a", "drain", ops.OpPending, 1), mk("op_b", "drain", ops.OpSucceeded, 2), mk("op_c", "restart", ops.OpPending, 3)
		opsTx(t, s, func(tx ops.Tx) error {
			if err := tx.LockOps(ctx); err != nil {
				return err
			}
			for _, op := range []ops.Operation{a, b, c} {
				if err := tx.InsertOperation(ctx, op); err != nil {
					return err
				}
			}
			return nil
		})
		a.State, a.CurrentWave, a.Detail, a.UpdatedAt = ops.OpReady, 0, "approved", opsT0.Add(time.Minute)
		a.Approvals = []ops.Approval{{PersonID: "p2", Name: "ann", Role: "approver", PlanHash: a.Plan.Hash, At: opsT0.Add(time.Minute), ExpiresAt: opsT0.Add(time.Hour)}}
		opsTx(t, s, func(tx ops.Tx) error { return tx.UpdateOperation(ctx, a) })
		got, err := s.OpsOperation(ctx, "op_a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got, equate); diff != "" {
			t.Errorf("op after update (-want +got):\n%s", diff)
		}
		if ops.HashPlan(got.Plan) != got.Plan.Hash {
			t.Error("the stored plan no longer hashes to its hash")
		}
		for _, tt := range []struct {
			name string
			f    ops.OperationFilter
			want []string
		}{
			{name: "all, newest first", want: []string{"op_c", "op_b", "op_a"}},
			{name: "by runbook", f: ops.OperationFilter{Runbook: "drain"}, want: []string{"op_b", "op_a"}},
			{name: "by states", f: ops.OperationFilter{States: []ops.OpState{ops.OpReady, ops.OpSucceeded}}, want: []string{"op_b", "op_a"}},
			{name: "by runbook and state", f: ops.OperationFilter{Runbook: "restart", States: []ops.OpState{ops.OpPending}}, want: []string{"op_c"}},
			{name: "limit", f: ops.OperationFilter{Limit: 1}, want: []string{"op_c"}},
		} {
			list, err := s.OpsOperations(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, op := range list {
				ids = append(ids, op.ID)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
		err = s.InTx(ctx, func(tx ops.Tx) error { return tx.UpdateOperation(ctx, mk("op_nope", "x", ops.OpReady, 0)) })
		if !errors.Is(err, ops.ErrNotFound) {
			t.Errorf("update of unknown op = %v, want ops.ErrNotFound", err)
		}
		err = s.InTx(ctx, func(tx ops.Tx) error { return tx.InsertOperation(ctx, c) })
		if !errors.Is(err, ops.ErrConflict) {
			t.Errorf("duplicate op = %v, want ops.ErrConflict", err)
		}
		// A rolled-back transaction leaves nothing behind.
		boom := errors.New("boom")
		err = s.InTx(ctx, func(tx ops.Tx) error {
			if err := tx.InsertOperation(ctx, mk("op_d", "x", ops.OpPending, 9)); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		if _, err := s.OpsOperation(ctx, "op_d"); !errors.Is(err, ops.ErrNotFound) {
			t.Errorf("rolled-back op = %v, want ops.ErrNotFound", err)
		}
	})
})
