package cards

import (
	"bytes"
	"regexp"
	"sort"
	"strings"
)

// Data exports say which column a value sits in: a CSV header, the column
// list of a SQL INSERT, the column list of a pg_dump COPY block. A number
// under a column that names a card is a card however few there are; a
// number under a column that names something else (order_ref) is judged
// with its column's neighbours, not with the cards beside it.
//
// Written by hand: the exports are read only as far as needed to place a
// value in its column (quotes, parentheses, separators), which no SQL or
// CSV library does on malformed or truncated dumps without failing.

// column names where a candidate sits: key identifies its column within
// the file (for counting its neighbours), name is the header, "" unknown.
type column struct {
	key  string
	name []byte
}

var (
	// INSERT INTO t (a, b) VALUES — the column list; mysqldump quotes
	// names with backticks, PostgreSQL with double quotes.
	sqlInsertRe = regexp.MustCompile("(?i)\\bINSERT\\s+INTO\\s+[^\\s(]+\\s*\\(([^)]{1,1000})\\)\\s*VALUES\\b")
	// COPY t (a, b) FROM stdin; — pg_dump's default format: tab-separated
	// rows up to a line "\.".
	sqlCopyRe = regexp.MustCompile(`(?m)^COPY\s+\S+\s*\(([^)]{1,1000})\)\s+FROM\s+stdin;\r?\n`)
)

// sqlColumns places each candidate of a SQL dump in the column its
// statement names, in one pass over the statements.
func sqlColumns(data []byte, cands []candidate) {
	if len(cands) == 0 {
		return
	}
	inserts := sqlInsertRe.FindAllSubmatchIndex(data, -1)
	for si, m := range inserts {
		cols := splitColumns(data[m[2]:m[3]], ',')
		// A statement ends at its ; or, in a dump without them, where
		// the next one starts: each byte is walked once.
		end := len(data)
		if si+1 < len(inserts) {
			end = inserts[si+1][0]
		}
		placeInsertValues(data[:end], m[1], cols, si, cands)
	}
	for si, m := range sqlCopyRe.FindAllSubmatchIndex(data, -1) {
		cols := splitColumns(data[m[2]:m[3]], ',')
		end := bytes.Index(data[m[1]:], []byte("\n\\."))
		if end < 0 {
			end = len(data)
		} else {
			end += m[1]
		}
		walkFields(data, m[1], end, '\t', false, cands, func(c *candidate, idx int) {
			c.col = columnAt(cols, idx, "copy", si)
		})
	}
}

// placeInsertValues walks the VALUES of one INSERT from off to the end of
// the statement (a ; outside quotes and parentheses) and gives each
// candidate inside a tuple the column of its position.
func placeInsertValues(data []byte, off int, cols [][]byte, stmt int, cands []candidate) {
	ci := sort.Search(len(cands), func(i int) bool { return cands[i].off >= off })
	depth, field := 0, 0
	var quote byte
	for i := off; i < len(data) && ci < len(cands); i++ {
		for ci < len(cands) && cands[ci].off < i {
			ci++
		}
		if ci < len(cands) && cands[ci].off == i && depth == 1 {
			cands[ci].col = columnAt(cols, field, "insert", stmt)
		}
		c := data[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				if i+1 < len(data) && data[i+1] == quote {
					i++ // '' inside a string
				} else {
					quote = 0
				}
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
			if depth == 1 {
				field = 0
			}
		case c == ')':
			depth = max(0, depth-1)
		case c == ',' && depth == 1:
			field++
		case c == ';' && depth == 0:
			return
		}
	}
}

// columnAt is the column at index idx of cols, keyed per statement.
func columnAt(cols [][]byte, idx int, kind string, stmt int) column {
	key := kind + "#" + itoa(stmt) + "#" + itoa(idx)
	if idx < len(cols) {
		return column{key: key, name: cols[idx]}
	}
	return column{key: key}
}

// splitColumns splits a header or column list at sep outside double
// quotes, trimming blanks and identifier quotes from each name.
func splitColumns(b []byte, sep byte) [][]byte {
	var out [][]byte
	start := 0
	inQuote := false
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] == '"' {
			inQuote = !inQuote
		}
		if i == len(b) || b[i] == sep && !inQuote {
			out = append(out, bytes.Trim(b[start:i], " \t\r\"`[]"))
			start = i + 1
		}
	}
	return out
}

// csvSeparator picks the separator of a delimited export from its header:
// the most frequent of , ; tab | outside quotes (Excel writes ; where the
// decimal separator is a comma).
func csvSeparator(header []byte) byte {
	best, n := byte(','), 0
	for _, sep := range []byte{',', '\t', ';', '|'} {
		if k := len(splitColumns(header, sep)) - 1; k > n {
			best, n = sep, k
		}
	}
	return best
}

// csvColumns places each candidate of a delimited export in the column of
// its header, counting separators outside double quotes.
func csvColumns(data []byte, cands []candidate) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return
	}
	header := data[:nl]
	sep := csvSeparator(header)
	cols := splitColumns(header, sep)
	walkFields(data, nl+1, len(data), sep, true, cands, func(c *candidate, idx int) {
		c.col = columnAt(cols, idx, "csv", 0)
	})
}

// walkFields walks the rows of data[from:to] once, counting the fields of
// each line (separated by sep, outside double quotes when quotes is set),
// and calls place with the field index of each candidate in the range.
// One pass, not a count from the line's start per candidate: a single
// line of a million numbers must not cost a million times its length.
func walkFields(data []byte, from, to int, sep byte, quotes bool, cands []candidate, place func(*candidate, int)) {
	ci := sort.Search(len(cands), func(i int) bool { return cands[i].off >= from })
	field, inQuote := 0, false
	for i := from; i < to && ci < len(cands); i++ {
		for ci < len(cands) && cands[ci].off == i {
			place(&cands[ci], field)
			ci++
		}
		switch c := data[i]; {
		case c == '\n' && !inQuote:
			field = 0
		case c == '"' && quotes:
			inQuote = !inQuote
		case c == sep && !inQuote:
			field++
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// isSQL reports whether p is a SQL dump.
func isSQL(p string) bool {
	low := strings.ToLower(p)
	return strings.HasSuffix(low, ".sql") || strings.HasSuffix(low, ".dump")
}

// isDelimited reports whether p is a CSV, TSV or PSV export.
func isDelimited(p string) bool {
	low := strings.ToLower(p)
	return strings.HasSuffix(low, ".csv") || strings.HasSuffix(low, ".tsv") || strings.HasSuffix(low, ".psv")
}
