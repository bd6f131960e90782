package change_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fakePeople is change.People for tests that grant no roles.
type fakePeople struct{}

func (fakePeople) Invite(context.Context, wire.Principal, string, string) (identity.InvitationCode, error) {
	return identity.InvitationCode{}, nil
}
func (fakePeople) DisableUser(context.Context, wire.Principal, string) error { return nil }
func (fakePeople) ListUsers(context.Context) ([]identity.User, error)        { return nil, nil }

// refuseAll is change.IndependentApprover refusing everyone,
// as identity does for a sock puppet.
type refuseAll struct{}

func (refuseAll) CheckIndependentApprover(context.Context, string, string, time.Time) error {
	return usererr.New(usererr.Forbidden, "sock_puppet", "The requester invited you, so you cannot approve their change.")
}

type fixture struct {
	svc   *change.Service
	clock *atomic.Int64 // seconds added to the start time
}

var start = time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, db *store.DB, independent change.IndependentApprover) fixture {
	t.Helper()
	var skew atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(skew.Load()) * time.Second) }
	engine, err := policy.NewEngine(policy.EngineConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.New(policy.Config{Store: db.PolicyStore(), Engine: engine, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ops.New(ops.Config{Store: db.OpsStore(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := change.New(change.Config{Store: db.ChangeStore(), Policy: ps, Ops: m, People: fakePeople{}, Independent: independent, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{svc: svc, clock: &skew}
}

var (
	admin    = wire.Principal{Kind: "person", ID: "p-admin", Name: "admin", Roles: []string{"admin"}}
	approver = wire.Principal{Kind: "person", ID: "p-approver", Name: "approver1", Roles: []string{"approver"}}
)

func stores(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, storetest.OpenSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, storetest.OpenPostgres(t)) })
}

func proposeRunbook(t *testing.T, f fixture) change.Outcome {
	t.Helper()
	src, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.ProposeRunbook(context.Background(), admin, src)
	if err != nil {
		t.Fatalf("ProposeRunbook: %v", err)
	}
	if out.Change == nil {
		t.Fatal("a new runbook applied at once")
	}
	return out
}

// A request expires 24 h after it was made: approving it then is refused
// and it lists as expired; a minute earlier it would have applied.
func TestExpiry(t *testing.T) {
	stores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, nil)
		out := proposeRunbook(t, f)
		if got := out.Change.ExpiresAt.Sub(out.Change.CreatedAt); got != change.DefaultTTL {
			t.Fatalf("request open for %v, want %v", got, change.DefaultTTL)
		}
		f.clock.Store(int64(change.DefaultTTL / time.Second))
		_, err := f.svc.Approve(ctx, out.Change.ID, approver, out.Change.Hash)
		if ue, ok := usererr.As(err); !ok || ue.Code != "change_expired" {
			t.Fatalf("Approve after 24 h = %v, want change_expired", err)
		}
		list, err := f.svc.List(ctx, change.Filter{States: []change.State{change.Expired}})
		if err != nil || len(list) != 1 || list[0].ID != out.Change.ID {
			t.Fatalf("List(expired) = %+v, %v", list, err)
		}
		if _, err := f.svc.Approve(ctx, out.Change.ID, approver, out.Change.Hash); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("second Approve of an expired request = %v", err)
		}

		f.clock.Store(0)
		fresh := proposeRunbook(t, f)
		f.clock.Store(int64(change.DefaultTTL/time.Second) - 60)
		v, err := f.svc.Approve(ctx, fresh.Change.ID, approver, fresh.Change.Hash)
		if err != nil || v.State != change.Applied {
			t.Fatalf("Approve a minute before expiry = %+v, %v", v.State, err)
		}
	})
}

// The independence check (identity's sock-puppet rule) refuses with its own sentence.
func TestIndependentApproverRefuses(t *testing.T) {
	stores(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, refuseAll{})
		out := proposeRunbook(t, f)
		_, err := f.svc.Approve(context.Background(), out.Change.ID, approver, out.Change.Hash)
		if ue, ok := usererr.As(err); !ok || ue.Code != "approver_not_independent" || !strings.Contains(ue.Msg, "invited you") {
			t.Fatalf("Approve by a sock puppet = %v", err)
		}
		got, err := f.svc.Get(context.Background(), out.Change.ID)
		if err != nil || got.State != change.Pending {
			t.Fatalf("after a refused approval the request is %s (%v), want pending", got.State, err)
		}
	})
}
