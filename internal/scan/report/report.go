// Package report renders scan results: a table for people, JSON for
// machines and SARIF 2.1.0 for code-scanning services. All three carry the
// same findings; none carries a secret (findings are redacted upstream).
package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Summary is what the scan looked at and what it set aside.
type Summary struct {
	Stats      scan.Stats
	Suppressed map[string]int // by mechanism: inline, baseline, ignore-file
	Stale      []string       // suppression entries that matched nothing
	Notes      []string
}

// Table writes findings as an aligned table followed by a summary.
func Table(w io.Writer, fs []scan.Finding, s Summary) error {
	if len(fs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tRULE\tLOCATION\tMATCH\tMESSAGE")
		for _, f := range fs {
			loc := f.Location()
			if f.Commit != "" {
				loc += " @" + short(f.Commit)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(f.Severity.String()), f.RuleID, loc, oneLine(f.Match), oneLine(f.Message))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := io.WriteString(w, SummaryLine(fs, s))
	return err
}

func short(c string) string { return c[:min(len(c), 12)] }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// SummaryLine describes counts in a few lines of text ending in "\n".
func SummaryLine(fs []scan.Finding, s Summary) string {
	var b strings.Builder
	bySev := map[scan.Severity]int{}
	for _, f := range fs {
		bySev[f.Severity]++
	}
	var parts []string
	for sev := scan.SeverityCritical; sev >= scan.SeverityInfo; sev-- {
		if n := bySev[sev]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, sev))
		}
	}
	fmt.Fprintf(&b, "%d findings", len(fs))
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, " in %d files (%s scanned)", s.Stats.Files, humanBytes(s.Stats.Bytes))
	if s.Stats.NonUTF8 > 0 {
		fmt.Fprintf(&b, "; %d not valid UTF-8 (scanned byte-wise)", s.Stats.NonUTF8)
	}
	b.WriteString(".\n")
	total := 0
	var sup []string
	for _, k := range slices.Sorted(mapsKeys(s.Suppressed)) {
		total += s.Suppressed[k]
		sup = append(sup, fmt.Sprintf("%d %s", s.Suppressed[k], k))
	}
	fmt.Fprintf(&b, "Suppressed: %d", total)
	if total > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(sup, ", "))
	}
	b.WriteString(".\n")
	if len(s.Stale) > 0 {
		fmt.Fprintf(&b, "Stale suppression entries (match nothing; remove them): %d\n", len(s.Stale))
		for _, e := range s.Stale {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	if n := len(s.Stats.Skipped); n > 0 {
		counts := s.Stats.SkipCounts()
		reasons := slices.SortedFunc(mapsKeys(counts), func(a, b scan.SkipReason) int { return cmp.Compare(counts[b], counts[a]) })
		var rs []string
		for _, r := range reasons {
			rs = append(rs, fmt.Sprintf("%d %s", counts[r], r))
		}
		fmt.Fprintf(&b, "Skipped: %d (%s).\n", n, strings.Join(rs, ", "))
		if s.Stats.Incomplete() {
			b.WriteString("The scan is INCOMPLETE; skipped files that were not scanned:\n")
			shown := 0
			for _, k := range s.Stats.Skipped {
				if !k.Reason.Incomplete() {
					continue
				}
				if shown == 20 {
					b.WriteString("  …\n")
					break
				}
				shown++
				fmt.Fprintf(&b, "  %s: %s", k.Path, k.Reason)
				if k.Detail != "" {
					fmt.Fprintf(&b, " (%s)", k.Detail)
				}
				b.WriteString("\n")
			}
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "Note: %s\n", n)
	}
	return b.String()
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// JSONVersion is the version of the JSON output format.
//   - 1: 2026-11-29: findings, stats, skipped, suppressed, stale, notes
const JSONVersion = 1

// Document is the JSON output; [LoadBaseline] reads it back.
type Document struct {
	Version    int            `json:"version"`
	Findings   []scan.Finding `json:"findings"`
	Stats      jsonStats      `json:"stats"`
	Skipped    []scan.Skip    `json:"skipped"`
	Suppressed map[string]int `json:"suppressed"`
	Stale      []string       `json:"stale"`
	Notes      []string       `json:"notes"`
	Incomplete bool           `json:"incomplete"`
}

type jsonStats struct {
	Files   int64 `json:"files"`
	Bytes   int64 `json:"bytes"`
	NonUTF8 int64 `json:"non_utf8"`
}

// JSON writes the findings and summary as one JSON document.
func JSON(w io.Writer, fs []scan.Finding, s Summary) error {
	d := Document{
		Version:    JSONVersion,
		Findings:   fs,
		Stats:      jsonStats{s.Stats.Files, s.Stats.Bytes, s.Stats.NonUTF8},
		Skipped:    s.Stats.Skipped,
		Suppressed: s.Suppressed,
		Stale:      s.Stale,
		Notes:      s.Notes,
		Incomplete: s.Stats.Incomplete(),
	}
	if d.Findings == nil {
		d.Findings = []scan.Finding{}
	}
	if d.Skipped == nil {
		d.Skipped = []scan.Skip{}
	}
	if d.Suppressed == nil {
		d.Suppressed = map[string]int{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
