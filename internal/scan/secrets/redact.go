package secrets

import (
	"context"
	"slices"
	"sync"

	"github.com/interlock-dev/interlock/internal/scan"
)

// RedactText returns text with every secret the detector would report
// replaced by "[redacted:<rule-id>]", and the number of spans replaced.
//
// It runs exactly what [Detector.Detect] runs — the keyword prefilter, the
// rules' regular expressions in windows around keyword hits, entropy,
// placeholder and known-example filters and offline validation — on text
// treated as a file without a name (no test or documentation leniency), so
// it is as cheap and as precise as a scan. Spans of several rules that
// overlap are replaced as one (their union), labelled with the specific
// rule rather than a generic assignment rule.
//
// When nothing is found, out is text itself, unchanged. RedactText never
// modifies text. On error (ctx done before the detector finished) out is
// nil: the caller MUST NOT use text as if it had been redacted.
//
// RedactText is safe for concurrent use.
func (d *Detector) RedactText(ctx context.Context, text []byte) (out []byte, n int, err error) {
	found, err := d.find(ctx, &scan.File{Data: text}, false)
	if err != nil {
		return nil, 0, err
	}
	if len(found) == 0 {
		return text, 0, nil
	}
	spans := mergeSpans(found)
	rules := d.rs.rules
	size := len(text)
	for _, s := range spans {
		size += len("[redacted:]") + len(rules[s.rule].ID) - (s.end - s.start)
	}
	out = make([]byte, 0, size)
	last := 0
	for _, s := range spans {
		out = append(out, text[last:s.start]...)
		out = append(out, "[redacted:"...)
		out = append(out, rules[s.rule].ID...)
		out = append(out, ']')
		last = s.end
	}
	out = append(out, text[last:]...)
	return out, len(spans), nil
}

// mergeSpans sorts spans and merges overlapping ones into their union. A
// merged span takes the rule of its first non-generic member, or of its
// first member when all are generic.
func mergeSpans(found []spanFinding) []spanFinding {
	slices.SortFunc(found, func(a, b spanFinding) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := found[:0:0]
	for _, s := range found {
		if k := len(out) - 1; k >= 0 && s.start < out[k].end {
			out[k].end = max(out[k].end, s.end)
			if out[k].generic && !s.generic {
				out[k].rule, out[k].generic = s.rule, false
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

var bundledDetector = sync.OnceValues(func() (*Detector, error) {
	rules, err := Bundled()
	if err != nil {
		return nil, err
	}
	rs, err := Compile(rules)
	if err != nil {
		return nil, err
	}
	return NewDetector(rs, Options{}), nil
})

// BundledDetector returns a detector over the bundled rules, built once
// per process and shared (a [Detector] is safe for concurrent use).
func BundledDetector() (*Detector, error) { return bundledDetector() }
