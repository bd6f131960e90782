package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
)

// fakeScanRecorder keeps the reports it was given.
type fakeScanRecorder struct {
	mu      sync.Mutex
	reports []wire.ScanReport
	actors  []string
}

func (f *fakeScanRecorder) RecordScan(_ context.Context, p wire.Principal, r wire.ScanReport) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, r)
	f.actors = append(f.actors, p.Actor())
	return len(r.Findings), nil
}

func scanServer(t *testing.T) (*Server, *fakeScanRecorder) {
	t.Helper()
	now := time.Unix(1800000000, 0)
	eng, err := policy.NewEngine(policy.EngineConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := &fakeScanRecorder{}
	s, err := New(Config{Authenticator: policyAuthn{now}, Proofs: policyProofs{}, Authorizer: PolicyAuthorizer(eng),
		Now: func() time.Time { return now }}, ScanRoutes(rec))
	if err != nil {
		t.Fatal(err)
	}
	return s, rec
}

func goodScanFinding() wire.ScanFinding {
	return wire.ScanFinding{Kind: "secret", RuleID: "github-pat", Severity: "critical", File: "config/app.env", Line: 3,
		Match: "ghp_…x9", Fingerprint: strings.Repeat("ab", 16)}
}

func goodScanReport() wire.ScanReport {
	return wire.ScanReport{Target: ".", Findings: []wire.ScanFinding{goodScanFinding()},
		Summary: wire.ScanSummary{Files: 10, Bytes: 2048, Total: 1}}
}

func TestScanRoutesAuthorization(t *testing.T) {
	for _, tt := range []struct {
		token string
		want  int
	}{{"", 401}, {"viewer", 403}, {"operator", 200}, {"admin", 200}} {
		s, rec := scanServer(t)
		var got wire.ScanReported
		status, p := policyCall(t, s, tt.token, "POST", "/v1/scan/reports", goodScanReport(), &got)
		if status != tt.want {
			t.Errorf("POST /v1/scan/reports as %q = %d (%s), want %d", tt.token, status, p.Detail, tt.want)
		}
		wantReports := 0
		if tt.want == 200 {
			wantReports = 1
			if got.Recorded != 1 {
				t.Errorf("as %q: recorded = %d, want 1", tt.token, got.Recorded)
			}
			if diff := cmp.Diff([]string{"person:p-" + tt.token}, rec.actors); diff != "" {
				t.Errorf("actors (-want +got):\n%s", diff)
			}
		}
		if len(rec.reports) != wantReports {
			t.Errorf("as %q: %d reports recorded, want %d", tt.token, len(rec.reports), wantReports)
		}
	}
}

func TestScanRoutesRefuseBadReports(t *testing.T) {
	with := func(fn func(*wire.ScanReport)) wire.ScanReport {
		r := goodScanReport()
		fn(&r)
		return r
	}
	finding := func(fn func(*wire.ScanFinding)) wire.ScanReport {
		return with(func(r *wire.ScanReport) { fn(&r.Findings[0]) })
	}
	many := make([]wire.ScanFinding, wire.MaxScanReportFindings+1)
	for i := range many {
		many[i] = goodScanFinding()
	}
	for _, tt := range []struct {
		name       string
		body       any
		wantStatus int
		wantCode   string
	}{
		{"not JSON", "{", 400, "bad_json"},
		{"unknown field", map[string]any{"target": ".", "findings": []any{}, "secret": "x"}, 400, "unknown_field"},
		{"finding with an unknown field", map[string]any{"target": ".", "findings": []any{map[string]any{"kind": "secret", "plaintext": "x"}}}, 400, "unknown_field"},
		{"wrong type", map[string]any{"target": ".", "findings": "many"}, 400, "bad_json"},
		{"no target", with(func(r *wire.ScanReport) { r.Target = "" }), 400, "scan_report_no_target"},
		{"target too long", with(func(r *wire.ScanReport) { r.Target = strings.Repeat("d/", 100) }), 413, "scan_report_field_too_long"},
		{"too many findings", with(func(r *wire.ScanReport) { r.Findings = many }), 413, "scan_report_too_many_findings"},
		{"negative count", with(func(r *wire.ScanReport) { r.Summary.Files = -1 }), 400, "scan_report_bad_summary"},
		{"part beyond parts", with(func(r *wire.ScanReport) { r.Summary.Part, r.Summary.Parts = 3, 2 }), 400, "scan_report_bad_summary"},
		{"unknown kind", finding(func(f *wire.ScanFinding) { f.Kind = "rumour" }), 400, "scan_report_bad_finding"},
		{"unknown severity", finding(func(f *wire.ScanFinding) { f.Severity = "dire" }), 400, "scan_report_bad_finding"},
		{"no rule", finding(func(f *wire.ScanFinding) { f.RuleID = "" }), 400, "scan_report_bad_finding"},
		{"negative line", finding(func(f *wire.ScanFinding) { f.Line = -2 }), 400, "scan_report_bad_finding"},
		{"plaintext in place of the fingerprint", finding(func(f *wire.ScanFinding) { f.Fingerprint = "hunter2-is-my-password-honestly!" }), 400, "scan_report_bad_fingerprint"},
		{"short fingerprint", finding(func(f *wire.ScanFinding) { f.Fingerprint = "abcd" }), 400, "scan_report_bad_fingerprint"},
		{"upper-case fingerprint", finding(func(f *wire.ScanFinding) { f.Fingerprint = strings.Repeat("AB", 16) }), 400, "scan_report_bad_fingerprint"},
		{"commit not hex", finding(func(f *wire.ScanFinding) { f.Commit = "main" }), 400, "scan_report_bad_finding"},
		{"match too long", finding(func(f *wire.ScanFinding) { f.Match = strings.Repeat("x", wire.MaxScanMatchBytes+1) }), 413, "scan_report_field_too_long"},
		{"file too long", finding(func(f *wire.ScanFinding) { f.File = strings.Repeat("x", wire.MaxScanFileBytes+1) }), 413, "scan_report_field_too_long"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := scanServer(t)
			var status int
			var p wire.Problem
			if raw, ok := tt.body.(string); ok {
				status, p = rawCall(t, s, "operator", "/v1/scan/reports", raw)
			} else {
				status, p = policyCall(t, s, "operator", "POST", "/v1/scan/reports", tt.body, nil)
			}
			if status != tt.wantStatus || p.Code != tt.wantCode {
				t.Errorf("status %d code %q (%s), want %d %q", status, p.Code, p.Detail, tt.wantStatus, tt.wantCode)
			}
			if p.Detail == "" {
				t.Error("the problem has no detail sentence")
			}
			if len(rec.reports) != 0 {
				t.Errorf("a refused report was recorded: %+v", rec.reports)
			}
		})
	}
}

func TestScanRoutesTakeTheLargestReport(t *testing.T) {
	s, rec := scanServer(t)
	r := goodScanReport()
	long := goodScanFinding()
	long.File = strings.Repeat("f", wire.MaxScanFileBytes)
	long.Match = strings.Repeat("m", wire.MaxScanMatchBytes)
	long.RuleID = strings.Repeat("r", wire.MaxScanRuleBytes)
	long.Commit = strings.Repeat("c", wire.MaxScanCommitBytes)
	r.Target = strings.Repeat("t", wire.MaxScanTargetBytes)
	r.Findings = make([]wire.ScanFinding, wire.MaxScanReportFindings)
	for i := range r.Findings {
		r.Findings[i] = long
	}
	var got wire.ScanReported
	if status, p := policyCall(t, s, "admin", "POST", "/v1/scan/reports", r, &got); status != 200 {
		t.Fatalf("a report at every limit = %d %s %s, want 200 (it must fit the body limit)", status, p.Code, p.Detail)
	}
	if got.Recorded != wire.MaxScanReportFindings || len(rec.reports) != 1 {
		t.Errorf("recorded %d findings in %d reports", got.Recorded, len(rec.reports))
	}
}

// rawCall posts body as is (policyCall marshals its input).
func rawCall(t *testing.T, s *Server, token, path, body string) (int, wire.Problem) {
	t.Helper()
	req := httptest.NewRequest("POST", "https://api.test"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", "proof")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var p wire.Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("problem body: %v (%s)", err, rec.Body)
	}
	return rec.Code, p
}
