package defcreds

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
)

// vendorsCSV is a public list of vendor default logins (product, user,
// password): about 2,500 pairs over 1,100 products, from network devices
// and printers to databases, CI servers and application servers. See
// vendors.LICENSE for where it comes from.
//
//go:embed vendors.csv
var vendorsCSV []byte

// vendorSource is cited by every finding that the vendor list makes.
const vendorSource = "DefaultCreds-cheat-sheet (github.com/ihebski/DefaultCreds-cheat-sheet), which lists it for "

// VendorPair is one row of the vendor list.
type VendorPair struct {
	Product, User, Password string
}

// Vendors decodes the bundled vendor list. Lines starting with '#' are
// comments; the first other line is the header.
func Vendors() ([]VendorPair, error) {
	var body bytes.Buffer
	for line := range bytes.Lines(vendorsCSV) {
		if !bytes.HasPrefix(line, []byte("#")) {
			body.Write(line)
		}
	}
	r := csv.NewReader(&body)
	r.FieldsPerRecord = 3
	header, err := r.Read()
	if err != nil || !slices.Equal(header, []string{"product", "user", "password"}) {
		return nil, fmt.Errorf("vendor default credentials: header must be product,user,password (%v)", err)
	}
	var out []VendorPair
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("vendor default credentials: %w", err)
		}
		if rec[0] == "" || rec[1] == "" || rec[2] == "" {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("vendor default credentials: line %d: product, user and password are required", line)
		}
		out = append(out, VendorPair{Product: rec[0], User: rec[1], Password: rec[2]})
	}
}

// vendorIndex finds the products that ship a user/password pair.
type vendorIndex map[string][]string

func pairKey(user, password string) string { return strings.ToLower(user) + "\x00" + password }

func newVendorIndex(pairs []VendorPair) vendorIndex {
	idx := vendorIndex{}
	for _, p := range pairs {
		k := pairKey(p.User, p.Password)
		if !slices.Contains(idx[k], p.Product) {
			idx[k] = append(idx[k], p.Product)
		}
	}
	return idx
}

// products returns who ships user/password, at most a few names and a
// count of the rest, for a finding's message.
func (idx vendorIndex) products(user, password string) (string, bool) {
	ps := idx[pairKey(user, password)]
	if len(ps) == 0 {
		return "", false
	}
	const shown = 4
	if len(ps) <= shown {
		return strings.Join(ps, ", "), true
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ps[:shown], ", "), len(ps)-shown), true
}

// worthParsing reports whether a YAML file can hold a default credential:
// it is a Kubernetes Secret (whose values are encoded), or some line that
// names a password-like setting (or the line after it, as in a Kubernetes
// env list's name/value) has a value that is a known default, or is empty
// next to an account whose default password is empty. Parsing YAML was
// most of this detector's cost, and most password settings in real trees
// are empty or reference a secret, so this check comes first.
func (d *Detector) worthParsing(data []byte) bool {
	if hasLiteralSecret(data) {
		return true
	}
	for _, w := range settingWords {
		for _, v := range w {
			start, end := -1, -1 // the line of the last hit
			for off := 0; ; {
				i := bytes.Index(data[off:], v)
				if i < 0 {
					break
				}
				hit := off + i
				off = hit + len(v)
				sameLine := hit < end
				if !sameLine {
					start, end = lineAround(data, hit)
				}
				// A flow mapping holds several settings on one line
				// ({POSTGRES_USER: postgres, POSTGRES_PASSWORD: postgres}):
				// the value that follows this setting is the one to check
				// (read up to the next separator, not to the line's end,
				// so that a long line costs its length once).
				if v := valueAfter(data[hit:min(end, hit+maxValueLook)]); v != "" && d.values[v] {
					return true
				}
				if sameLine {
					continue
				}
				if d.knownValue(data, start, end) {
					return true
				}
				if end < len(data) {
					if _, nextEnd := lineAround(data, end+1); d.knownValue(data, end+1, nextEnd) {
						return true
					}
				}
			}
		}
	}
	return false
}

// maxValueLook bounds how much of a line valueAfter reads after a setting.
const maxValueLook = 256

// valueAfter returns the value that follows the setting name at the start
// of rest (the rest of its line): after the next : or =, up to a , } ] or
// the end of the line, unquoted; "" when there is none.
func valueAfter(rest []byte) string {
	i := bytes.IndexAny(rest, ":=")
	if i < 0 {
		return ""
	}
	v := bytes.TrimLeft(rest[i+1:], " \t")
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		if j := bytes.IndexByte(v[1:], v[0]); j >= 0 {
			return string(v[1 : j+1])
		}
		return ""
	}
	if j := bytes.IndexAny(v, ",}]#"); j >= 0 {
		v = v[:j]
	}
	return string(bytes.TrimSpace(v))
}

// hasLiteralSecret reports whether some document of data is a Kubernetes
// Secret that is not a template: its values are encoded, so the line
// check cannot see them. A document with {{ is a Helm template, whose
// values are expressions; other documents of the same file (a ConfigMap
// holding alert templates) do not make a Secret beside them one.
func hasLiteralSecret(data []byte) bool {
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("kind:"))
		if i < 0 {
			return false
		}
		at := off + i
		off = at + 5
		if at > 0 && data[at-1] != '\n' {
			continue // not a top-level key
		}
		_, end := lineAround(data, at)
		v := bytes.Trim(bytes.TrimSpace(data[at+5:end]), `"'`)
		if string(v) != "Secret" {
			continue
		}
		docStart := bytes.LastIndex(data[:at], []byte("\n---")) + 1
		docEnd := len(data)
		if j := bytes.Index(data[end:], []byte("\n---")); j >= 0 {
			docEnd = end + j
		}
		if !bytes.Contains(data[docStart:docEnd], []byte("{{")) {
			return true
		}
	}
}

// lineAround returns the bounds of the line of data that holds offset i.
func lineAround(data []byte, i int) (start, end int) {
	start = bytes.LastIndexByte(data[:i], '\n') + 1
	end = len(data)
	if j := bytes.IndexByte(data[i:], '\n'); j >= 0 {
		end = i + j
	}
	return start, end
}

// knownValue reports whether the value (after the first ": " or '=') of the
// line data[start:end] could make a finding.
func (d *Detector) knownValue(data []byte, start, end int) bool {
	line := bytes.TrimSpace(data[start:end])
	if len(line) > 0 && line[0] == '#' {
		return false
	}
	v := line
	if i := bytes.Index(v, []byte(" #")); i >= 0 {
		v = v[:i] // a comment, before it can hide a separator
	}
	if i := bytes.Index(v, []byte(": ")); i >= 0 {
		v = v[i+2:]
	} else if i := bytes.IndexAny(v, ":="); i >= 0 {
		v = v[i+1:]
	}
	val := unquote(strings.TrimSpace(string(v)))
	if val != "" {
		if switches[val] {
			return bytes.Contains(line, []byte("ALLOW_EMPTY")) || bytes.Contains(line, []byte("AUTH_METHOD"))
		}
		return d.values[val]
	}
	// An empty password matters only for an account whose default
	// password is empty, set beside it (within five lines).
	for range 5 {
		if start > 0 {
			start, _ = lineAround(data, start-1)
		}
		if end < len(data) {
			_, end = lineAround(data, end+1)
		}
	}
	return d.namesEmptyUser(data[start:end])
}

// switches are the values that turn passwords off when set on a switch
// such as MYSQL_ALLOW_EMPTY_PASSWORD or POSTGRES_HOST_AUTH_METHOD.
var switches = map[string]bool{"trust": true, "yes": true, "true": true, "1": true}

// namesEmptyUser reports whether data names, as a value, an account whose
// default password is empty.
func (d *Detector) namesEmptyUser(data []byte) bool {
	for _, u := range d.emptyUsers {
		for _, form := range []string{": ", "=", "\""} {
			for off := 0; ; {
				i := bytes.Index(data[off:], append([]byte(form), u...))
				if i < 0 {
					break
				}
				e := off + i + len(form) + len(u)
				if e == len(data) || !isWordByte(data[e]) {
					return true
				}
				off = e
			}
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
