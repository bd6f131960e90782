// Package scan finds the residue of human error in files: leaked secrets,
// vendor default credentials, misconfigurations and vulnerable dependencies.
//
// This package owns the shared vocabulary — [Finding], [Severity], [Kind] —
// and the [Scanner], which walks a target (a directory opened under an
// [os.Root], standard input, an archive or a git history) with bounded
// concurrency and hands each readable text file to a list of [Detector]s.
// The detectors live in sub-packages (secrets, defcreds, misconfig, deps);
// output formats live in scan/report and suppression in scan/suppress.
//
// It is imported by internal/scancli (the `interlock scan` command) and may
// be imported by the agent for output redaction; it imports no other
// interlock package.
package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Kind is the family a finding belongs to.
type Kind string

// The kinds of finding.
const (
	KindSecret        Kind = "secret"
	KindDefaultCred   Kind = "default-credential"
	KindMisconfig     Kind = "misconfiguration"
	KindVulnerableDep Kind = "vulnerable-dependency"
	// KindCardData is a payment card number (PAN) in a data export: PCI
	// DSS requirement 3 forbids storing it readable.
	KindCardData Kind = "card-data"
)

// Severity orders findings; the zero value is [SeverityInfo].
type Severity int

// Severities from least to most severe.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity parses a severity name, case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of %s)", s, strings.Join(severityNames[:], ", "))
}

// MarshalText implements [encoding.TextMarshaler].
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Finding is one problem found in one place. All four kinds share it.
//
// A Finding MUST NOT carry a secret in plaintext: Match is redacted by
// [Redact] and Fingerprint is a one-way hash of the secret (see
// [Fingerprint]), so findings can be printed, stored and sent anywhere.
type Finding struct {
	Kind     Kind     `json:"kind"`
	RuleID   string   `json:"rule_id"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`   // 1-based; 0 when unknown
	Column   int      `json:"column"` // 1-based byte column; 0 when unknown

	// Set when the file came from git history.
	Commit string    `json:"commit,omitempty"`
	Author string    `json:"author,omitempty"`
	Date   time.Time `json:"date,omitzero"`

	// Match is the redacted evidence, e.g. "ghp_…Qx9" or `PermitRootLogin yes`.
	Match string `json:"match"`
	// Fingerprint identifies the secret (or the offending construct) itself,
	// independent of file and line; suppression files are keyed by it.
	Fingerprint string `json:"fingerprint"`
	Message     string `json:"message"`
	Fix         string `json:"fix,omitempty"`
}

// Location renders file:line[:column].
func (f Finding) Location() string {
	switch {
	case f.Line == 0:
		return f.File
	case f.Column == 0:
		return fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	return fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Column)
}

// Fingerprint returns a stable, one-way identifier for secret: the first
// 128 bits of SHA-256 over a domain-separated encoding, hex encoded. The same
// secret always has the same fingerprint, wherever it appears.
func Fingerprint(secret string) string {
	h := sha256.Sum256([]byte("interlock-scan-fingerprint-v1\x00" + secret))
	return hex.EncodeToString(h[:16])
}

// Redact returns a form of secret that is safe to show: at most the first
// four and last two characters of secrets longer than 12 bytes, and nothing
// but asterisks for shorter ones. Redact never returns more than a third of
// the secret.
func Redact(secret string) string {
	n := len(secret)
	switch {
	case n == 0:
		return ""
	case n <= 12:
		return strings.Repeat("*", min(n, 8))
	}
	head, tail := 4, 2
	for head+tail > n/3 {
		head--
		if head+tail > n/3 && tail > 0 {
			tail--
		}
	}
	return secret[:head] + "…" + secret[n-tail:]
}
