// Package cards finds payment card numbers (PANs) in data exports — CSV,
// TSV, JSON lines, SQL dumps — where PCI DSS requirement 3 says they must
// never sit readable, and in any other file where a key names the number a
// card (a log line "card=…", a fixture's "pan": "…"). A number counts when it has a card brand's prefix
// and length and passes the Luhn check, and is not one of the test numbers
// that payment providers publish for developers.
//
// Any 16-digit identifier passes Luhn one time in ten, so a lone number is
// reported only where the data names it a card (a column or key such as
// "card_number" or "pan"); elsewhere a file is reported when most of its
// brand-shaped numbers pass Luhn, which random identifiers do not.
//
// Written by hand: no maintained Go library detects PANs in text; the
// checks are the Luhn algorithm (ISO/IEC 7812-1) and the brands' published
// IIN ranges.
package cards

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Detector is a [scan.Detector] for card numbers.
type Detector struct{}

// New returns a card number detector.
func New() *Detector { return &Detector{} }

// Name implements [scan.Detector].
func (*Detector) Name() string { return "card-data" }

// maxPerFile bounds the findings one file yields: a dump of a million
// cards needs one finding per card no more than it needs ten.
const maxPerFile = 20

// exportExts are the extensions of data exports.
var exportExts = map[string]bool{".csv": true, ".tsv": true, ".psv": true, ".jsonl": true, ".ndjson": true,
	".json": true, ".sql": true, ".dump": true, ".dat": true}

// isExport reports whether p is a data export.
func isExport(p string) bool {
	base := strings.ToLower(path.Base(p))
	if i := strings.LastIndexByte(base, '!'); i >= 0 {
		base = base[i+1:]
	}
	return exportExts[path.Ext(base)]
}

// candidate is one brand-shaped number.
type candidate struct {
	off, end int
	digits   string
	brand    string
	luhn     bool
	named    bool   // the data names it a card
	col      column // where an export says which column it is in
}

// Detect implements [scan.Detector].
func (*Detector) Detect(ctx context.Context, f *scan.File, emit func(scan.Finding)) error {
	export := isExport(f.Path)
	if !export && !mentionsCards(f.Data) {
		return nil
	}
	sql, delimited := isSQL(f.Path), isDelimited(f.Path)
	cands := candidates(f.Data, export && !sql && !delimited)
	switch {
	case sql:
		sqlColumns(f.Data, cands)
	case delimited:
		csvColumns(f.Data, cands)
	}
	// Counted per column where the export says which column a number is
	// in, so that a column of identifiers is not judged by the cards
	// beside it; file-wide otherwise.
	shaped, validIn := map[string]int{}, map[string]int{}
	valid := 0
	for i := range cands {
		c := &cands[i]
		shaped[c.col.key]++
		if c.luhn {
			validIn[c.col.key]++
			valid++
		}
		if c.col.name != nil && namesCard(c.col.name) {
			c.named = true
		}
	}
	n := 0
	for _, c := range cands {
		// In a data export, most brand-shaped numbers of a column passing
		// Luhn make a column of cards, not identifiers (which pass one
		// time in ten).
		bulk := export && validIn[c.col.key] >= 3 && validIn[c.col.key]*2 >= shaped[c.col.key]
		if !c.luhn || testNumbers[c.digits] || !(c.named || bulk) {
			continue
		}
		if n == maxPerFile {
			break
		}
		n++
		fd := f.NewFinding(c.off)
		fd.Kind = scan.KindCardData
		fd.RuleID = "card-data/pan"
		fd.Severity = scan.SeverityCritical
		fd.Match = c.brand + " card ending " + c.digits[len(c.digits)-4:]
		// Not a hash of the number: with the brand and last four shown,
		// the few digits left are guessed from any hash in seconds.
		fd.Fingerprint = scan.Fingerprint(fmt.Sprintf("card\x00%s\x00%d", f.Path, c.off))
		fd.Message = fmt.Sprintf("a %s card number (Luhn-valid) is stored readable; PCI DSS requirement 3 forbids storing a PAN unless it is rendered unreadable", c.brand)
		if valid > 1 {
			fd.Message += fmt.Sprintf(" (%d card numbers in this file)", valid)
		}
		fd.Fix = "Delete the export or replace each PAN with a token or its last four digits; rotate the cards if the file left your cardholder data environment."
		emit(fd)
	}
	return nil
}

// mentionsCards reports whether data (not a data export) names cards at
// all; only then is it searched, for numbers its keys name cards.
func mentionsCards(data []byte) bool {
	// Not "pan": it is in panic, span and company.
	for _, w := range []string{"card", "Card", "CARD", "PAN", "credit", "Credit", "CREDIT", "ccn", "CCN"} {
		if bytes.Contains(data, []byte(w)) {
			return true
		}
	}
	return false
}

// candidates returns the brand-shaped numbers of data: 13 to 19 digits,
// alone or grouped by single spaces or dashes, not part of a longer
// number or word.
func candidates(data []byte, export bool) []candidate {
	var out []candidate
	for i := 0; i < len(data); {
		c := data[i]
		if c < '0' || c > '9' || i > 0 && boundaryBreaks(data[i-1]) {
			i++
			continue
		}
		digits, end := readNumber(data, i)
		if len(digits) < 13 || len(digits) > 19 || end < len(data) && boundaryBreaks(data[end]) {
			i = max(end, i+1)
			continue
		}
		if brand := brandOf(digits); brand != "" {
			out = append(out, candidate{off: i, end: end, digits: digits, brand: brand, luhn: luhn(digits), named: namedCard(data, i, export)})
		}
		i = end
	}
	return out
}

// boundaryBreaks reports whether c next to a digit run makes it part of
// something longer (a word, a decimal, a longer number, an id).
func boundaryBreaks(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-' || c == '/' || c == '+'
}

// readNumber reads digits from data[i:], across single spaces or dashes
// between groups of at least 3 digits (4111 1111 1111 1111, 3782-822463-10005).
func readNumber(data []byte, i int) (string, int) {
	var b strings.Builder
	group := 0
	j := i
	for j < len(data) {
		c := data[j]
		switch {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
			group++
			j++
		case (c == ' ' || c == '-') && group >= 3 && j+1 < len(data) && data[j+1] >= '0' && data[j+1] <= '9' && b.Len() < 19:
			// A separator is taken only if another group follows.
			k := j + 1
			for k < len(data) && data[k] >= '0' && data[k] <= '9' {
				k++
			}
			if k-(j+1) < 3 {
				return b.String(), j
			}
			group = 0
			j++
		default:
			return b.String(), j
		}
	}
	return b.String(), j
}

// luhn is [scan.Luhn].
func luhn(digits string) bool { return scan.Luhn(digits) }

// brandOf returns the card brand whose IIN range and length digits have,
// or "" (from the brands' published ranges).
func brandOf(d string) string {
	n := len(d)
	p2, p3, p4 := atoi(d[:2]), atoi(d[:3]), atoi(d[:4])
	if allSame(d[1:]) {
		return "" // 4000000000000000 and the like are not issued numbers
	}
	switch {
	case d[0] == '4' && (n == 13 || n == 16 || n == 19):
		return "Visa"
	case (p2 >= 51 && p2 <= 55 || p4 >= 2221 && p4 <= 2720) && n == 16:
		return "Mastercard"
	case (p2 == 34 || p2 == 37) && n == 15:
		return "American Express"
	case (p4 == 6011 || p2 == 65 || p3 >= 644 && p3 <= 649) && n >= 16 && n <= 19:
		return "Discover"
	case p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19:
		return "JCB"
	case (p3 >= 300 && p3 <= 305 || p2 == 36 || p2 == 38 || p2 == 39) && n >= 14 && n <= 19:
		return "Diners Club"
	case p2 == 62 && n >= 16 && n <= 19:
		return "UnionPay"
	}
	return ""
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func allSame(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			return false
		}
	}
	return true
}

// namesCard reports whether s (a key or a column header) names a card
// number: a word starting "card" or "credit", or one of pan, cc, ccn,
// ccnum (whole words: "company" and "span" are not cards).
func namesCard(s []byte) bool {
	for _, w := range bytes.FieldsFunc(bytes.ToLower(s), func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		switch {
		case bytes.HasPrefix(w, []byte("card")), bytes.HasPrefix(w, []byte("credit")), bytes.HasPrefix(w, []byte("ccnum")):
			return true
		case string(w) == "pan" || string(w) == "cc" || string(w) == "ccn" || string(w) == "primaryaccountnumber":
			return true
		}
	}
	return false
}

// maxKeyLookBack bounds how far before a number its key or line start is
// looked for.
const maxKeyLookBack = 512

// namedCard reports whether the data names the number at off a card: the
// key just before it on its line (JSON, key=value, key: value), or the
// header of its column in a CSV/TSV export.
func namedCard(data []byte, off int, export bool) bool {
	// The key is just before the number: look back a bounded way, so that
	// a single line of many numbers costs its length, not its square.
	from := max(0, off-maxKeyLookBack)
	start := from + bytes.LastIndexByte(data[from:off], '\n') + 1
	lineStart := start > from || from == 0
	before := bytes.TrimRight(data[start:off], " \t\"':=")
	keyStart := len(before)
	for keyStart > 0 && !bytes.ContainsAny(before[keyStart-1:keyStart], " \t,;{([\"'") {
		keyStart--
	}
	if namesCard(before[keyStart:]) {
		return true
	}
	if start == 0 || !export || !lineStart {
		return false
	}
	// CSV/TSV: the header cell above the same column.
	header := data
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		header = data[:i]
	}
	sep := byte(',')
	if bytes.Count(header, []byte("\t")) > bytes.Count(header, []byte(",")) {
		sep = '\t'
	}
	col := bytes.Count(data[start:off], []byte{sep})
	cells := bytes.Split(header, []byte{sep})
	return col < len(cells) && namesCard(cells[col])
}
