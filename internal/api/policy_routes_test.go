package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/policy"
)

// policyMemStore is an in-memory policy.Store for the route tests.
type policyMemStore struct {
	mu       sync.Mutex
	versions []policy.StoredPolicy
	audits   int
}

type policyMemTx struct{ s *policyMemStore }

func (s *policyMemStore) LatestPolicy(context.Context) (policy.StoredPolicy, bool, error) {
	if len(s.versions) == 0 {
		return policy.StoredPolicy{}, false, nil
	}
	return s.versions[len(s.versions)-1], true, nil
}

func (s *policyMemStore) InTx(ctx context.Context, fn func(policy.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, a := len(s.versions), s.audits
	if err := fn(policyMemTx{s}); err != nil {
		s.versions, s.audits = s.versions[:n], a
		return err
	}
	return nil
}

func (t policyMemTx) InsertAuditRecord(context.Context, audit.Record) error { t.s.audits++; return nil }

func (t policyMemTx) LatestPolicyVersion(ctx context.Context) (int, string, error) {
	p, _, _ := t.s.LatestPolicy(ctx)
	return p.Version, p.Hash, nil
}

func (t policyMemTx) InsertPolicyVersion(_ context.Context, p policy.StoredPolicy) error {
	t.s.versions = append(t.s.versions, p)
	return nil
}

// policyAuthn maps the session token to a person with that role.
type policyAuthn struct{ now time.Time }

func (a policyAuthn) Authenticate(_ context.Context, token, jkt string) (wire.Principal, error) {
	switch token {
	case "viewer", "operator", "admin":
		return wire.Principal{Kind: "person", ID: "p-" + token, Name: token, Roles: []string{token}, MFAAt: a.now}, nil
	}
	return wire.Principal{}, errors.New("bad session")
}

type policyProofs struct{}

func (policyProofs) Verify(proof, method, url, token string, now time.Time) (string, error) {
	return "k", nil
}

func policyServer(t *testing.T) (*Server, *policy.Engine, *policyMemStore) {
	t.Helper()
	now := time.Unix(1800000000, 0)
	clock := func() time.Time { return now }
	eng, err := policy.NewEngine(policy.EngineConfig{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	st := &policyMemStore{}
	svc, err := policy.New(policy.Config{Store: st, Engine: eng, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Authenticator: policyAuthn{now}, Proofs: policyProofs{}, Authorizer: PolicyAuthorizer(eng), Now: clock}, PolicyRoutes(svc))
	if err != nil {
		t.Fatal(err)
	}
	return s, eng, st
}

func policyCall(t *testing.T, s *Server, token, method, path string, in, out any) (int, wire.Problem) {
	t.Helper()
	var body string
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	req := httptest.NewRequest(method, "https://api.test"+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", "proof")
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var p wire.Problem
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem body: %v (%s)", err, rec.Body)
		}
	} else if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("answer: %v (%s)", err, rec.Body)
		}
	}
	return rec.Code, p
}

func TestPolicyRoutesAuthorization(t *testing.T) {
	s, _, _ := policyServer(t)
	for _, tt := range []struct {
		token, method, path string
		body                any
		want                int
	}{
		{"", "GET", "/v1/policy", nil, 401},
		{"", "PUT", "/v1/policy", wire.PolicyApplyRequest{Text: policy.DefaultText}, 401},
		{"", "POST", "/v1/policy/test", wire.PolicyTestRequest{}, 401},
		{"viewer", "GET", "/v1/policy", nil, 200},
		{"viewer", "PUT", "/v1/policy", wire.PolicyApplyRequest{Text: policy.DefaultText}, 403},
		{"viewer", "POST", "/v1/policy/test", wire.PolicyTestRequest{Cases: []wire.PolicyTestCase{{Principal: wire.PolicyPrincipal{ID: "x"}, Action: "whoami"}}}, 403},
		{"operator", "PUT", "/v1/policy", wire.PolicyApplyRequest{Text: policy.DefaultText}, 403},
		{"admin", "POST", "/v1/policy/test", wire.PolicyTestRequest{Cases: []wire.PolicyTestCase{{Principal: wire.PolicyPrincipal{ID: "x"}, Action: "whoami"}}}, 200},
	} {
		if got, p := policyCall(t, s, tt.token, tt.method, tt.path, tt.body, nil); got != tt.want {
			t.Errorf("%s %s as %q = %d (%s), want %d", tt.method, tt.path, tt.token, got, p.Detail, tt.want)
		}
	}
}

func TestPolicyRoutesApplyAndTest(t *testing.T) {
	s, eng, st := policyServer(t)
	var cur wire.Policy
	if status, p := policyCall(t, s, "admin", "GET", "/v1/policy", nil, &cur); status != 200 || cur.Version != 0 || cur.Text != policy.DefaultText {
		t.Fatalf("GET = %d %s, version %d", status, p.Detail, cur.Version)
	}

	bad := policy.DefaultText + "\n@id(\"x\")\npermit (principal, action == Action::\"op.explode\", resource);\n"
	if status, p := policyCall(t, s, "admin", "PUT", "/v1/policy", wire.PolicyApplyRequest{Text: bad}, nil); status != 400 || p.Code != "policy_action_unknown" || !strings.Contains(p.Detail, "line") {
		t.Errorf("PUT unknown action = %d %s %q, want 400 policy_action_unknown naming the line", status, p.Code, p.Detail)
	}
	if status, p := policyCall(t, s, "admin", "PUT", "/v1/policy", map[string]any{"text": policy.DefaultText, "force": true}, nil); status != 400 || p.Code != "unknown_field" {
		t.Errorf("PUT with an unknown field = %d %s", status, p.Code)
	}
	if len(st.versions) != 0 || st.audits != 0 {
		t.Fatalf("refused PUTs stored %d versions, %d audit entries", len(st.versions), st.audits)
	}

	candidate := policy.DefaultText + "\n@id(\"viewer.secrets\")\npermit (principal in Role::\"viewer\", action == Action::\"secret.list\", resource);\n"
	cases := []wire.PolicyTestCase{
		{Name: "viewer lists secrets", Principal: wire.PolicyPrincipal{ID: "v", Roles: []string{"viewer"}}, Action: "secret.list", Want: "allow", WantReasons: []string{"viewer.secrets"}},
		{Name: "viewer reads a secret", Principal: wire.PolicyPrincipal{ID: "v", Roles: []string{"viewer"}}, Action: "secret.get", Resource: wire.PolicyResource{Type: "Secret", ID: "db"}, Want: "allow"},
		{Name: "approvals", Principal: wire.PolicyPrincipal{ID: "o", Roles: []string{"operator"}}, Action: "op.run", Resource: wire.PolicyResource{Type: "Runbook", ID: "remove-capacity"},
			Context: map[string]any{"risk": "high", "removes_capacity": true}, WantApprovals: &wire.PolicyApprovals{Count: 1, Roles: []string{"approver"}}},
	}
	var tr wire.PolicyTestResponse
	if status, p := policyCall(t, s, "admin", "POST", "/v1/policy/test", wire.PolicyTestRequest{Text: candidate, Cases: cases}, &tr); status != 200 {
		t.Fatalf("POST test = %d %s", status, p.Detail)
	}
	if tr.Passed != 2 || tr.Failed != 1 || tr.Results[1].Pass || tr.Hash != policy.Hash(candidate) {
		t.Errorf("test response = %+v, want 2 passed and the secret.get case failed", tr)
	}
	if v, _ := eng.Version(); v != 0 || len(st.versions) != 0 {
		t.Errorf("POST test applied the candidate (engine version %d, %d stored)", v, len(st.versions))
	}

	var applied wire.PolicyApplied
	if status, p := policyCall(t, s, "admin", "PUT", "/v1/policy", wire.PolicyApplyRequest{Text: candidate}, &applied); status != 200 {
		t.Fatalf("PUT = %d %s", status, p.Detail)
	}
	if diff := cmp.Diff(wire.PolicyApplied{Version: 1, Hash: policy.Hash(candidate)}, applied); diff != "" {
		t.Errorf("PUT (-want +got):\n%s", diff)
	}
	if st.audits != 1 {
		t.Errorf("audit entries = %d, want 1", st.audits)
	}
	// The new policy is in force for the very next request.
	var got wire.Policy
	policyCall(t, s, "viewer", "GET", "/v1/policy", nil, &got)
	if got.Version != 1 || got.Hash != policy.Hash(candidate) {
		t.Errorf("GET after PUT = version %d %s", got.Version, got.Hash)
	}
}
