package wire

// Scan routes (internal/api/scan_routes.go):
//
//	POST /v1/scan/reports   ScanReport → ScanReported   action scan.report
//
// `interlock scan --report` sends the findings of a scan; the server records
// one "scan.finding" audit entry per finding and one "scan.reported"
// summary, in one transaction. A report carries no secret: Match is the
// scanner's redacted evidence and Fingerprint a one-way hash. A scan with
// more than MaxScanReportFindings findings is sent as several reports
// (Summary.Part of Summary.Parts).

// Limits on a ScanReport. With these, any valid report fits the API's
// 1 MiB body limit.
const (
	MaxScanReportFindings = 500
	MaxScanTargetBytes    = 180
	MaxScanFileBytes      = 1024
	MaxScanRuleBytes      = 100
	MaxScanMatchBytes     = 200
	MaxScanCommitBytes    = 64
	ScanFingerprintHexLen = 32 // 128 bits, hex (scan.Fingerprint)
)

// ScanReport is the body of POST /v1/scan/reports.
type ScanReport struct {
	// Target is what was scanned, as the user named it ("." or a path).
	Target   string        `json:"target"`
	Findings []ScanFinding `json:"findings"`
	Summary  ScanSummary   `json:"summary"`
}

// ScanFinding is one finding, already redacted by the scanner.
type ScanFinding struct {
	Kind     string `json:"kind"`     // secret, default-credential, misconfiguration, vulnerable-dependency
	RuleID   string `json:"rule_id"`  // e.g. "github-pat"
	Severity string `json:"severity"` // info, low, medium, high, critical
	File     string `json:"file"`
	Line     int    `json:"line"` // 1-based; 0 when unknown
	Commit   string `json:"commit,omitempty"`
	// Match is the redacted evidence ("ghp_…Qx"), never the secret.
	Match string `json:"match"`
	// Fingerprint is the scanner's one-way hash of the secret or construct:
	// 32 lower-case hex characters.
	Fingerprint string `json:"fingerprint"`
}

// ScanSummary describes the whole scan the findings come from.
type ScanSummary struct {
	Files      int64 `json:"files"`      // files scanned
	Bytes      int64 `json:"bytes"`      // bytes scanned
	Skipped    int   `json:"skipped"`    // files skipped (size, errors, time budget)
	Suppressed int   `json:"suppressed"` // findings suppressed (inline, baseline, ignore file)
	Total      int   `json:"total"`      // findings in the whole scan, over all parts
	Part       int   `json:"part"`       // 1-based part of a scan sent as several reports; 0 = 1
	Parts      int   `json:"parts"`      // number of parts; 0 = 1
}

// ScanReported confirms a report.
type ScanReported struct {
	// Recorded is the number of audit entries written for findings.
	Recorded int `json:"recorded"`
}
