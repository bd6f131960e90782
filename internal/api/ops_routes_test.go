package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// tokenAuthn names the caller by the session token itself.
type tokenAuthn map[string]wire.Principal

func (a tokenAuthn) Authenticate(_ context.Context, token, _ string) (wire.Principal, error) {
	p, ok := a[token]
	if !ok {
		return wire.Principal{}, errors.New("bad session")
	}
	return p, nil
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, wire.Principal, string, Resource, map[string]any) (bool, []string, error) {
	return true, nil, nil
}

type fakeStarter struct{ started []string }

func (f *fakeStarter) Start(_ context.Context, id string) error {
	f.started = append(f.started, id)
	return nil
}

type opsAPI struct {
	t    *testing.T
	s    *Server
	db   *store.DB
	m    *ops.Manager
	exec *fakeStarter
}

func (a *opsAPI) call(who, method, path string, in, out any) (int, wire.Problem) {
	a.t.Helper()
	var body string
	switch v := in.(type) {
	case nil:
	case string:
		body = v
	default:
		b, _ := json.Marshal(v)
		body = string(b)
	}
	req := httptest.NewRequest(method, "https://api.test"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "DPoP "+who)
	req.Header.Set("DPoP", "proof-for-"+method)
	rec := httptest.NewRecorder()
	a.s.Handler().ServeHTTP(rec, req)
	var p wire.Problem
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			a.t.Fatalf("%s %s: problem body: %v", method, path, err)
		}
	} else if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			a.t.Fatalf("%s %s: body: %v", method, path, err)
		}
	}
	return rec.Code, p
}

func newOpsAPI(t *testing.T) *opsAPI {
	db := storetest.OpenSQLite(t)
	m, err := ops.New(ops.Config{Store: db.OpsStore()})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fakeStarter{}
	authn := tokenAuthn{
		"admin": {Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}},
		"op1":   {Kind: "person", ID: "p_op1", Name: "operator1", Roles: []string{"operator"}},
		"ap1":   {Kind: "person", ID: "p_ap1", Name: "approver1", Roles: []string{"approver"}},
	}
	s, err := New(Config{Authenticator: authn, Proofs: fakeProofs{}, Authorizer: allowAll{}}, OpsRoutes(m, fx))
	if err != nil {
		t.Fatal(err)
	}
	return &opsAPI{t: t, s: s, db: db, m: m, exec: fx}
}

func TestOpsRoutes2017(t *testing.T) {
	a := newOpsAPI(t)
	ctx := context.Background()
	for i := range 20 {
		var tok wire.JoinToken
		if code, p := a.call("admin", "POST", "/v1/join-tokens", wire.JoinTokenCreateRequest{Services: []string{"billing", "index"}, TTLSeconds: 3600}, &tok); code != http.StatusCreated {
			t.Fatalf("join token: %d %s", code, p.Detail)
		}
		if _, _, _, err := a.m.EnrollHost(ctx, tok.Token, fmt.Sprintf("host%02d", i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	for name, req := range map[string]wire.ServiceSetRequest{
		"billing": {MinHealthy: "50%", MaxPerOperation: "10%"},
		"index":   {MinHealthy: "80%"},
	} {
		if code, p := a.call("admin", "PUT", "/v1/services/"+name, req, nil); code != http.StatusOK {
			t.Fatalf("service set %s: %d %s", name, code, p.Detail)
		}
	}
	src, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rb wire.Runbook
	if code, p := a.call("admin", "POST", "/v1/runbooks", wire.RunbookApplyRequest{YAML: string(src)}, &rb); code != http.StatusOK || rb.Version != 1 {
		t.Fatalf("runbook apply: %d %s (version %d)", code, p.Detail, rb.Version)
	}

	// Bad input: 4xx problem, nothing changes.
	countRows := func() int {
		var n int
		if err := a.db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM ops_operations) + (SELECT COUNT(*) FROM audit_entries)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countRows()
	for _, tt := range []struct {
		name, body, code string
		status           int
	}{
		{name: "unknown field", body: `{"runbook":"remove-capacity","params":{},"reason":"x","force":true}`, code: "unknown_field", status: 400},
		{name: "malformed", body: `{"runbook":`, code: "bad_json", status: 400},
		{name: "out of bounds", body: `{"runbook":"remove-capacity","params":{"service":"billing","count":"5000"},"reason":"x"}`, code: "bad_parameter", status: 400},
		{name: "unknown runbook", body: `{"runbook":"nope","params":{},"reason":"x"}`, code: "unknown_runbook", status: 404},
	} {
		if status, p := a.call("op1", "POST", "/v1/ops", tt.body, nil); status != tt.status || p.Code != tt.code {
			t.Errorf("%s: %d %s (%s), want %d %s", tt.name, status, p.Code, p.Detail, tt.status, tt.code)
		}
	}
	if after := countRows(); after != before {
		t.Errorf("bad input changed %d rows", after-before)
	}

	run := wire.RunRequest{Runbook: "remove-capacity", Params: map[string]string{"service": "billing", "count": "20"}, Reason: "INC-1"}
	status, p := a.call("op1", "POST", "/v1/ops", run, nil)
	if status != http.StatusForbidden || p.Code != "guardrail" {
		t.Fatalf("count=20: %d %s, want 403 guardrail", status, p.Code)
	}
	var details wire.GuardrailRefusal
	b, _ := json.Marshal(p.Details)
	if err := json.Unmarshal(b, &details); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, v := range details.Verdicts {
		if !v.Pass {
			failed = append(failed, v.Rule+"/"+v.Service)
		}
	}
	if diff := cmp.Diff([]string{"capacity_floor/billing", "capacity_floor/index", "blast_radius/billing"}, failed); diff != "" {
		t.Errorf("failing verdicts (-want +got):\n%s", diff)
	}

	run.Params["count"] = "2"
	var dry wire.PlanResult
	if status, p := a.call("op1", "POST", "/v1/plans", run, &dry); status != http.StatusOK || !dry.Allowed || dry.NeedsApprovals != 1 {
		t.Fatalf("dry run: %d %s allowed %v needs %d", status, p.Detail, dry.Allowed, dry.NeedsApprovals)
	}
	if len(dry.Plan.HostNames) != 2 {
		t.Errorf("dry run names %d hosts, want 2", len(dry.Plan.HostNames))
	}
	var created wire.RunResponse
	if status, p := a.call("op1", "POST", "/v1/ops", run, &created); status != http.StatusCreated || created.Operation.State != "pending_approval" {
		t.Fatalf("count=2: %d %s state %q", status, p.Detail, created.Operation.State)
	}
	id := created.Operation.ID
	approve := wire.ApproveRequest{PlanHash: created.Operation.Plan.Hash}
	if status, p := a.call("op1", "POST", "/v1/ops/"+id+"/approvals", approve, nil); status != http.StatusForbidden || !strings.Contains(p.Detail, "requester cannot approve their own operation") {
		t.Errorf("self-approval: %d %q", status, p.Detail)
	}
	var approved wire.ApproveResponse
	if status, p := a.call("ap1", "POST", "/v1/ops/"+id+"/approvals", approve, &approved); status != http.StatusOK {
		t.Fatalf("approve: %d %s", status, p.Detail)
	}
	if !approved.Ready || !approved.Started || approved.Operation.State != "running" || !cmp.Equal(a.exec.started, []string{id}) {
		t.Errorf("after approval: ready %v started %v state %s, executor started %v", approved.Ready, approved.Started, approved.Operation.State, a.exec.started)
	}
	var list wire.OperationList
	if status, _ := a.call("ap1", "GET", "/v1/ops?state=running", nil, &list); status != http.StatusOK || len(list.Operations) != 1 {
		t.Errorf("list running: %d, %d ops", status, len(list.Operations))
	}
	var svcs wire.ServiceList
	a.call("op1", "GET", "/v1/services", nil, &svcs)
	want := []wire.Service{
		{Name: "billing", MinHealthy: "50%", MaxPerOperation: "10%", Total: 20, Healthy: 20, Floor: 10, Held: 2},
		{Name: "index", MinHealthy: "80%", Total: 20, Healthy: 20, Floor: 16, Held: 2},
	}
	if diff := cmp.Diff(want, svcs.Services); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
}
