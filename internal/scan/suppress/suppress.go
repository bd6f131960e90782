// Package suppress removes accepted findings: a baseline (a previous JSON
// report; only new findings remain) and an ignore file whose entries are
// keyed to the fingerprint of the secret itself, so a different secret on
// an ignored line is still reported. Entries that match nothing are
// reported as stale. Inline "interlock:allow RULE reason" comments are
// handled by the scanner itself.
package suppress

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Baseline is a set of accepted findings from an earlier report.
type Baseline struct {
	file    string
	entries map[baselineKey]string // key -> description
	used    map[baselineKey]bool
}

// A finding matches a baseline entry with the same rule, secret and file,
// wherever the line moved to.
type baselineKey struct{ rule, fingerprint, file string }

// LoadBaseline reads a JSON report written by `interlock scan --format json`.
func LoadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	var doc struct {
		Version  int            `json:"version"`
		Findings []scan.Finding `json:"findings"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse baseline %s: %w", path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("baseline %s: unsupported version %d", path, doc.Version)
	}
	b := &Baseline{file: path, entries: map[baselineKey]string{}, used: map[baselineKey]bool{}}
	for _, f := range doc.Findings {
		b.entries[baselineKey{f.RuleID, f.Fingerprint, f.File}] = fmt.Sprintf("%s %s %s", f.RuleID, f.Location(), f.Fingerprint)
	}
	return b, nil
}

// IgnoreEntry is one line of an ignore file:
//
//	<fingerprint> [rule-id] [# reason]
type IgnoreEntry struct {
	Fingerprint string
	Rule        string // "" matches any rule
	Reason      string
	Line        int
}

// Ignore is a parsed ignore file.
type Ignore struct {
	file    string
	Entries []IgnoreEntry
	used    []bool
}

// ParseIgnore parses an ignore file. Blank lines and lines starting with
// '#' are skipped; a fingerprint must be 32 hex digits.
func ParseIgnore(name string, r io.Reader) (*Ignore, error) {
	ig := &Ignore{file: name}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		body, reason, _ := strings.Cut(line, "#")
		f := strings.Fields(body)
		if len(f) == 0 || len(f) > 2 || !isHex(f[0], 32) {
			return nil, fmt.Errorf("%s:%d: want \"<fingerprint> [rule-id] [# reason]\"", name, n)
		}
		e := IgnoreEntry{Fingerprint: strings.ToLower(f[0]), Reason: strings.TrimSpace(reason), Line: n}
		if len(f) == 2 {
			e.Rule = f[1]
		}
		ig.Entries = append(ig.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	ig.used = make([]bool, len(ig.Entries))
	return ig, nil
}

// LoadIgnore reads an ignore file; a missing file is an empty one.
func LoadIgnore(path string) (*Ignore, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &Ignore{file: path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ignore file: %w", err)
	}
	return ParseIgnore(path, bytes.NewReader(data))
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Apply removes suppressed findings. It returns the remaining findings,
// counts by mechanism ("baseline", "ignore-file") and the stale entries.
// Either b or ig may be nil.
func Apply(fs []scan.Finding, b *Baseline, ig *Ignore) (kept []scan.Finding, counts map[string]int, stale []string) {
	counts = map[string]int{}
	for _, f := range fs {
		if ig != nil && ig.match(f) {
			counts["ignore-file"]++
			continue
		}
		if b != nil {
			k := baselineKey{f.RuleID, f.Fingerprint, f.File}
			if _, ok := b.entries[k]; ok {
				b.used[k] = true
				counts["baseline"]++
				continue
			}
		}
		kept = append(kept, f)
	}
	if ig != nil {
		for i, e := range ig.Entries {
			if !ig.used[i] {
				stale = append(stale, fmt.Sprintf("%s:%d: %s %s", ig.file, e.Line, e.Fingerprint, e.Rule))
			}
		}
	}
	if b != nil {
		for k, desc := range b.entries {
			if !b.used[k] {
				stale = append(stale, b.file+": "+desc)
			}
		}
	}
	slices.Sort(stale)
	return kept, counts, stale
}

func (ig *Ignore) match(f scan.Finding) bool {
	for i, e := range ig.Entries {
		if e.Fingerprint == f.Fingerprint && (e.Rule == "" || e.Rule == f.RuleID) {
			ig.used[i] = true
			return true
		}
	}
	return false
}
