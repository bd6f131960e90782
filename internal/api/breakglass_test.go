package api

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// newPolicyOpsAPI is newOpsAPI with the default Cedar policy deciding
// (MFA ages read from each principal's MFAAt), on the 2017 fleet with the
// remove-capacity runbook applied.
func newPolicyOpsAPI(t *testing.T, people map[string]wire.Principal) *opsAPI {
	t.Helper()
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	eng, err := policy.NewEngine(policy.EngineConfig{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenSQLite(t)
	m, err := ops.New(ops.Config{Store: db.OpsStore(), Policy: eng, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fakeStarter{}
	s, err := New(Config{Authenticator: tokenAuthn(people), Proofs: fakeProofs{}, Authorizer: PolicyAuthorizer(eng), Now: clock}, OpsRoutes(m, fx))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := wire.Principal{Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}}
	for i := range 20 {
		tok, err := m.CreateJoinToken(ctx, admin, []string{"billing", "index"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := m.EnrollHost(ctx, tok.Reveal(), fmt.Sprintf("host%02d", i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range []ops.Service{
		{Name: "billing", MinHealthy: ops.Threshold{Percent: 50, IsPercent: true}, MaxPerOperation: ops.Threshold{Percent: 10, IsPercent: true}},
		{Name: "index", MinHealthy: ops.Threshold{Percent: 80, IsPercent: true}},
	} {
		if err := m.SetService(ctx, admin, svc); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyRunbook(ctx, admin, src); err != nil {
		t.Fatal(err)
	}
	return &opsAPI{t: t, s: s, db: db, m: m, exec: fx}
}

// TestBreakGlassNeedsPermissionAndFreshMFA: POST /v1/ops with break_glass
// is decided twice: op.run like any run, then op.breakglass, which the
// default policy gives only to admins with MFA proven in the last five
// minutes. A refusal is a 403 and stores no operation; may run is not may
// break glass.
func TestBreakGlassNeedsPermissionAndFreshMFA(t *testing.T) {
	now := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	people := map[string]wire.Principal{
		"op1":         {Kind: "person", ID: "p_op1", Name: "operator1", Roles: []string{"operator"}, MFAAt: now.Add(-time.Minute)},
		"admin":       {Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}, MFAAt: now.Add(-time.Minute)},
		"admin-stale": {Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}, MFAAt: now.Add(-time.Hour)},
		"admin-never": {Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}},
	}
	for _, tt := range []struct {
		name, who  string
		breakGlass bool
		status     int
		code       string // the problem's code, for a refusal
		state      string // the operation's state, when created
	}{
		{name: "operator breaks glass", who: "op1", breakGlass: true, status: http.StatusForbidden, code: "forbidden"},
		{name: "admin with MFA an hour old", who: "admin-stale", breakGlass: true, status: http.StatusForbidden, code: "forbidden"},
		{name: "admin who never proved MFA", who: "admin-never", breakGlass: true, status: http.StatusForbidden, code: "forbidden"},
		// The same people may run it the ordinary way, and a fresh admin
		// may break glass: the refusals above are the break-glass check's.
		{name: "operator runs without breaking glass", who: "op1", status: http.StatusCreated, state: "pending_approval"},
		{name: "admin with fresh MFA breaks glass", who: "admin", breakGlass: true, status: http.StatusCreated, state: "running"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newPolicyOpsAPI(t, people)
			run := wire.RunRequest{Runbook: "remove-capacity", Params: map[string]string{"service": "billing", "count": "2"}, Reason: "INC-1", BreakGlass: tt.breakGlass}
			var got wire.RunResponse
			status, p := a.call(tt.who, "POST", "/v1/ops", run, &got)
			if status != tt.status || p.Code != tt.code {
				t.Fatalf("POST /v1/ops = %d %s (%s), want %d %s", status, p.Code, p.Detail, tt.status, tt.code)
			}
			var stored, alerts int
			if err := a.db.QueryRow(context.Background(), `SELECT (SELECT COUNT(*) FROM ops_operations), (SELECT COUNT(*) FROM audit_entries WHERE kind = 'op.break_glass')`).Scan(&stored, &alerts); err != nil {
				t.Fatal(err)
			}
			if tt.status != http.StatusCreated {
				if stored != 0 || alerts != 0 || len(a.exec.started) != 0 {
					t.Errorf("refused break-glass left %d operations, %d op.break_glass entries, started %v; want none", stored, alerts, a.exec.started)
				}
				return
			}
			if stored != 1 || got.Operation.State != tt.state || got.Operation.BreakGlass != tt.breakGlass {
				t.Errorf("created %d operations, state %s, break glass %v; want 1, %s, %v", stored, got.Operation.State, got.Operation.BreakGlass, tt.state, tt.breakGlass)
			}
			want := 0
			if tt.breakGlass {
				want = 1
			}
			if alerts != want {
				t.Errorf("%d op.break_glass entries, want %d", alerts, want)
			}
		})
	}
}
