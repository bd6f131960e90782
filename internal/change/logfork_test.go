package change_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fakeLog is a refusing audit log: its basis is what the test sets.
type fakeLog struct {
	basis audit.ForkBasis
	forks []string // actor|reason of each fork
}

func (f *fakeLog) Origin() string  { return "example/log" }
func (f *fakeLog) Refusal() string { return f.basis.Refusal }
func (f *fakeLog) ForkBasis(context.Context) (audit.ForkBasis, error) {
	if f.basis.Refusal == "" {
		return audit.ForkBasis{}, usererr.New(usererr.Conflict, "log_not_refusing", "The log is not refusing to sign.")
	}
	return f.basis, nil
}
func (f *fakeLog) ForkIf(_ context.Context, b audit.ForkBasis, actor, reason string) (audit.ForkResult, error) {
	if b.DatabaseSize != f.basis.DatabaseSize || string(b.RememberedNote) != string(f.basis.RememberedNote) {
		return audit.ForkResult{}, usererr.New(usererr.Conflict, "fork_basis_changed", "The basis changed.")
	}
	f.forks = append(f.forks, actor+"|"+reason)
	f.basis.Refusal = ""
	return audit.ForkResult{Index: b.DatabaseSize, Fork: tlog.Fork{Epoch: 2, BaseSize: b.DatabaseSize, PreviousSize: b.Remembered.Size}}, nil
}

// TestLogForkNeedsAnotherAdmin: a fork request is made only by an admin,
// shows what the signer remembers and the database holds, is approved
// only by another admin (an approver's approval is refused even though
// the policy lets approvers approve changes), forks once as its
// requester, and is void when the basis moved on. While the log refuses,
// no other change can be decided.
func TestLogForkNeedsAnotherAdmin(t *testing.T) {
	stores(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := func() time.Time { return start }
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
		lg := &fakeLog{basis: audit.ForkBasis{Refusal: "the database holds 45 entries but this server signed 60",
			RememberedNote: []byte("note-60"), Remembered: tlog.Checkpoint{Size: 60, Hash: make([]byte, 32), Time: start.Add(-time.Hour)},
			RememberedEpoch: 1, DatabaseSize: 45, DatabaseRoot: make([]byte, 32)}}
		svc, err := change.New(change.Config{Store: db.ChangeStore(), Policy: ps, Ops: m, People: fakePeople{}, Forker: lg, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		f := fixture{svc: svc}
		// A runbook request waiting from before the log refused.
		lg.basis.Refusal, lg.basis.DatabaseSize = "", 45
		rb := proposeRunbook(t, f)
		lg.basis.Refusal = "the database holds 45 entries but this server signed 60"

		if _, err := svc.ProposeLogFork(ctx, approver, "r"); !isCode(err, "admin_only") {
			t.Errorf("an approver asking to fork = %v, want admin_only", err)
		}
		v, err := svc.ProposeLogFork(ctx, admin, "restored the backup")
		if err != nil {
			t.Fatal(err)
		}
		d := v.Diff.LogFork
		if v.Kind != change.KindLogFork || d == nil || !strings.Contains(d.Sentence, "The signer remembers 60 entries") ||
			!strings.Contains(d.Sentence, "the database holds 45") || !strings.Contains(d.Sentence, "entries 45 to 59 of the old epoch would not be in it") {
			t.Fatalf("fork request = %+v, diff %+v", v.Request, d)
		}
		if _, err := svc.Approve(ctx, rb.Change.ID, admin2, rb.Change.Hash); !isCode(err, "log_refusing") {
			t.Errorf("approving a runbook while the log refuses = %v, want log_refusing", err)
		}
		if _, err := svc.Approve(ctx, v.ID, approver, v.Hash); !isCode(err, "admin_required") {
			t.Errorf("an approver approving a fork = %v, want admin_required", err)
		}
		if _, err := svc.Approve(ctx, v.ID, admin, v.Hash); !isCode(err, "self_approval") {
			t.Errorf("the requester approving their fork = %v, want self_approval", err)
		}
		if len(lg.forks) != 0 {
			t.Fatalf("forked before another admin approved: %v", lg.forks)
		}
		// A second request over the same basis, then the first is approved.
		v2, err := svc.ProposeLogFork(ctx, admin, "asked twice")
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.Approve(ctx, v.ID, admin2, v.Hash)
		if err != nil || got.State != change.Applied || !strings.Contains(got.Detail, "epoch 2 begins at entry 45") {
			t.Fatalf("another admin approving = %+v, %v", got.Request, err)
		}
		if len(lg.forks) != 1 || !strings.HasPrefix(lg.forks[0], "person:p-admin|restored the backup (change request "+v.ID+", approved by person:p-admin2)") {
			t.Errorf("forks = %q", lg.forks)
		}
		if _, err := svc.Approve(ctx, v2.ID, admin2, v2.Hash); !isCode(err, "change_stale") {
			t.Errorf("approving a fork request made before the fork = %v, want change_stale", err)
		}
		if got, _ := svc.Get(ctx, v2.ID); got.State != change.Void || len(lg.forks) != 1 {
			t.Errorf("the stale request is %s with %d forks; want void and one fork", got.State, len(lg.forks))
		}
	})
}

var admin2 = wire.Principal{Kind: "person", ID: "p-admin2", Name: "admin2", Roles: []string{"admin"}}

func isCode(err error, code string) bool {
	ue, ok := usererr.As(err)
	return ok && ue.Code == code
}
