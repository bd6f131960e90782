package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// fakePolicyAPI records calls and answers from canned values.
type fakePolicyAPI struct {
	calls []string
	in    []any
	test  wire.PolicyTestResponse
}

func (f *fakePolicyAPI) Do(_ context.Context, method, path string, in, out any) error {
	f.calls = append(f.calls, method+" "+path)
	f.in = append(f.in, in)
	var v any
	switch path {
	case "/v1/policy":
		if method == "GET" {
			v = wire.Policy{Text: "@id(\"a\")\npermit (principal, action, resource);", Version: 3, Hash: "sha256:abc"}
		} else {
			v = wire.PolicyApplied{Version: 4, Hash: "sha256:def"}
		}
	case "/v1/policy/test":
		v = f.test
	}
	b, _ := json.Marshal(v)
	return json.Unmarshal(b, out)
}

func runPolicyCLI(t *testing.T, f *fakePolicyAPI, args ...string) (int, string, string) {
	t.Helper()
	old := policyClient
	policyClient = func(*env) (policyDoer, error) { return f, nil }
	t.Cleanup(func() { policyClient = old })
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestPolicyGet(t *testing.T) {
	f := &fakePolicyAPI{}
	code, out, errOut := runPolicyCLI(t, f, "policy", "get")
	if code != 0 || out != "@id(\"a\")\npermit (principal, action, resource);\n" || !strings.Contains(errOut, "version 3, sha256:abc") {
		t.Errorf("policy get = %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestPolicyApply(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.cedar")
	if err := os.WriteFile(file, []byte("@id(\"x\") permit (principal, action, resource);"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakePolicyAPI{}
	code, out, errOut := runPolicyCLI(t, f, "policy", "apply", "-f", file)
	if code != 0 || !strings.Contains(out, "Policy version 4 is in force") {
		t.Fatalf("policy apply = %d, %q, %q", code, out, errOut)
	}
	if diff := cmp.Diff([]any{wire.PolicyApplyRequest{Text: "@id(\"x\") permit (principal, action, resource);"}}, f.in); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if code, _, _ := runPolicyCLI(t, &fakePolicyAPI{}, "policy", "apply"); code == 0 {
		t.Error("policy apply without -f succeeded")
	}
}

func TestPolicyTest(t *testing.T) {
	dir := t.TempDir()
	cases := filepath.Join(dir, "cases.yaml")
	if err := os.WriteFile(cases, []byte(`
- name: viewers cannot run
  principal: {id: vic, roles: [viewer]}
  action: op.run
  resource: {type: Runbook, id: remove-capacity}
  context: {risk: high, mfa_age_s: 30}
  want: deny
  want_approvals: {count: 1, roles: [approver]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakePolicyAPI{test: wire.PolicyTestResponse{Hash: "sha256:abc", Passed: 0, Failed: 1, Results: []wire.PolicyTestResult{
		{Name: "viewers cannot run", Allow: true, Reasons: []string{"oops"}, Pass: false, Failures: []string{"want deny, got allow"}},
	}}}
	code, out, errOut := runPolicyCLI(t, f, "policy", "test", "--cases", cases)
	if code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "want deny, got allow") || !strings.Contains(errOut, "1 of 1 policy test cases failed") {
		t.Errorf("policy test = %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := wire.PolicyTestRequest{Cases: []wire.PolicyTestCase{{
		Name: "viewers cannot run", Principal: wire.PolicyPrincipal{ID: "vic", Roles: []string{"viewer"}}, Action: "op.run",
		Resource: wire.PolicyResource{Type: "Runbook", ID: "remove-capacity"}, Context: map[string]any{"risk": "high", "mfa_age_s": float64(30)},
		Want: "deny", WantApprovals: &wire.PolicyApprovals{Count: 1, Roles: []string{"approver"}},
	}}}
	if diff := cmp.Diff([]any{want}, f.in); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	if err := os.WriteFile(cases, []byte("- name: typo\n  principal: {id: v}\n  action: whoami\n  wnat: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runPolicyCLI(t, &fakePolicyAPI{}, "policy", "test", "--cases", cases); code == 0 || !strings.Contains(errOut, "wnat") {
		t.Errorf("policy test with a misspelt field = %d, %q; want a refusal naming it", code, errOut)
	}
}
