package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/scancli"
)

var _ = register(func(e *env) *cobra.Command {
	return scancli.CommandWith(scancli.Options{Report: e.reportScan})
})

// scanExitCode maps the scanner's exit codes (0 clean, 1 findings at or
// above --fail-on, 2 incomplete or failed) through to the process.
func scanExitCode(err error) (int, bool) {
	var se *scancli.ExitError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}

// reportScan sends a scan's findings to the profile's server
// (`interlock scan --report`), in parts of at most
// wire.MaxScanReportFindings. The findings are already redacted: Match is
// the scanner's redacted evidence and Fingerprint a hash.
func (e *env) reportScan(ctx context.Context, r scancli.Result, stderr io.Writer) error {
	c, p, err := e.client()
	if err != nil {
		return err
	}
	target := clip(r.Target, wire.MaxScanTargetBytes)
	findings := make([]wire.ScanFinding, len(r.Findings))
	for i, f := range r.Findings {
		findings[i] = wire.ScanFinding{Kind: string(f.Kind), RuleID: f.RuleID, Severity: f.Severity.String(),
			File: clip(f.File, wire.MaxScanFileBytes), Line: f.Line, Commit: f.Commit,
			Match: clip(f.Match, wire.MaxScanMatchBytes), Fingerprint: f.Fingerprint}
	}
	suppressed := 0
	for _, n := range r.Summary.Suppressed {
		suppressed += n
	}
	parts := max(1, (len(findings)+wire.MaxScanReportFindings-1)/wire.MaxScanReportFindings)
	recorded := 0
	for part := range parts {
		batch := findings[part*wire.MaxScanReportFindings : min(len(findings), (part+1)*wire.MaxScanReportFindings)]
		rep := wire.ScanReport{Target: target, Findings: batch, Summary: wire.ScanSummary{
			Files: r.Summary.Stats.Files, Bytes: r.Summary.Stats.Bytes, Skipped: len(r.Summary.Stats.Skipped),
			Suppressed: suppressed, Total: len(findings), Part: part + 1, Parts: parts}}
		var resp wire.ScanReported
		if err := c.Do(ctx, "POST", "/v1/scan/reports", rep, &resp); err != nil {
			if recorded > 0 {
				return fmt.Errorf("%w (%d of %d findings were recorded before this)", err, recorded, len(findings))
			}
			return err
		}
		recorded += resp.Recorded
	}
	fmt.Fprintf(stderr, "reported %d findings to %s\n", recorded, p.Server)
	return nil
}

// clip shortens s to at most n bytes, on a UTF-8 boundary, keeping its end
// (a path's file name).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n + len("…")
	for i < len(s) && s[i]&0xC0 == 0x80 {
		i++
	}
	return "…" + s[i:]
}
