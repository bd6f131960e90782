package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ScanRecorder turns a scan report into audit entries. internal/app
// implements it. RecordScan MUST record all of the report or nothing, and
// returns the number of findings recorded.
type ScanRecorder interface {
	RecordScan(ctx context.Context, p wire.Principal, r wire.ScanReport) (int, error)
}

// ScanRoutes serves `interlock scan --report` (see
// internal/api/wire/scan.go).
func ScanRoutes(rec ScanRecorder) []Route {
	return []Route{{Pattern: "POST /v1/scan/reports", Action: policy.ActionScanReport, Handle: func(c *Call) error {
		var in wire.ScanReport
		if err := c.Decode(&in); err != nil {
			return err
		}
		if err := validScanReport(in); err != nil {
			return err
		}
		n, err := rec.RecordScan(c.Context(), c.Principal, in)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, wire.ScanReported{Recorded: n})
	}}}
}

var (
	scanKinds      = map[string]bool{"secret": true, "default-credential": true, "misconfiguration": true, "vulnerable-dependency": true}
	scanSeverities = map[string]bool{"info": true, "low": true, "medium": true, "high": true, "critical": true}
)

// validScanReport checks the limits of wire.ScanReport and that nothing in
// it can be a secret in plaintext where a hash belongs.
func validScanReport(r wire.ScanReport) error {
	if n := len(r.Findings); n > wire.MaxScanReportFindings {
		return usererr.New(usererr.TooLarge, "scan_report_too_many_findings",
			"the report has %d findings; a report takes at most %d, so send the rest in further reports", n, wire.MaxScanReportFindings)
	}
	if err := scanText("target", r.Target, wire.MaxScanTargetBytes); err != nil {
		return err
	}
	if r.Target == "" {
		return usererr.New(usererr.Invalid, "scan_report_no_target", "the report does not say what was scanned; set \"target\" (for example \".\")")
	}
	s := r.Summary
	if s.Files < 0 || s.Bytes < 0 || s.Skipped < 0 || s.Suppressed < 0 || s.Total < 0 || s.Part < 0 || s.Parts < 0 || s.Part > max(s.Parts, 1) {
		return usererr.New(usererr.Invalid, "scan_report_bad_summary", "the report's summary has a negative count or a part beyond its number of parts")
	}
	for i, f := range r.Findings {
		if !scanKinds[f.Kind] {
			return usererr.New(usererr.Invalid, "scan_report_bad_finding", "finding %d has kind %q; want secret, default-credential, misconfiguration or vulnerable-dependency", i+1, f.Kind)
		}
		if !scanSeverities[f.Severity] {
			return usererr.New(usererr.Invalid, "scan_report_bad_finding", "finding %d has severity %q; want info, low, medium, high or critical", i+1, f.Severity)
		}
		if f.RuleID == "" {
			return usererr.New(usererr.Invalid, "scan_report_bad_finding", "finding %d has no rule_id", i+1)
		}
		if f.Line < 0 {
			return usererr.New(usererr.Invalid, "scan_report_bad_finding", "finding %d has a negative line number", i+1)
		}
		if !isLowerHex(f.Fingerprint) || len(f.Fingerprint) != wire.ScanFingerprintHexLen {
			return usererr.New(usererr.Invalid, "scan_report_bad_fingerprint",
				"finding %d: the fingerprint must be the scanner's hash, %d lower-case hex characters", i+1, wire.ScanFingerprintHexLen)
		}
		if f.Commit != "" && !isLowerHex(f.Commit) {
			return usererr.New(usererr.Invalid, "scan_report_bad_finding", "finding %d: commit must be a hex commit ID", i+1)
		}
		for _, fl := range []struct {
			name, v string
			max     int
		}{{"rule_id", f.RuleID, wire.MaxScanRuleBytes}, {"file", f.File, wire.MaxScanFileBytes},
			{"match", f.Match, wire.MaxScanMatchBytes}, {"commit", f.Commit, wire.MaxScanCommitBytes}} {
			if err := scanText("finding "+strconv.Itoa(i+1)+" "+fl.name, fl.v, fl.max); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanText checks a field's length (encoding/json has already replaced any
// invalid UTF-8).
func scanText(name, v string, limit int) error {
	if len(v) > limit {
		return usererr.New(usererr.TooLarge, "scan_report_field_too_long", "%s is %d bytes long; the limit is %d", name, len(v), limit)
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
