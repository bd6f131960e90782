// Package redact removes secret values from text a step printed, together
// with the encodings a step could print them in to slip past an exact
// match: base64 (standard and URL alphabets, with and without padding, and
// at every 3-byte alignment, so `echo "$S" | base64` and "user:$S" are
// caught too), base32 (likewise at every 5-byte alignment, either case),
// the value in upper or lower case, hex in lower and upper case (also byte
// by byte, as od prints it, and in xxd's 2-byte groups), URL encodings (query, path, RFC 3986 strict and every byte)
// and JSON escaping, and the value reversed.
//
// It is a leaf package with no behaviour beyond strings: the agent (before
// it reports) and the executor (before it stores) both use it, so output
// is redacted on both sides of the wire.
//
// What it cannot catch is any transformation it does not know (a cipher,
// a custom alphabet, the value split over lines by `base64` wrapping at 76
// columns, i.e. secrets over 57 bytes, or by xxd's 16 bytes a line, or
// printed a character at a time).
// That is why Interlock never puts a secret in argv or script text: the
// step reads it from its environment, and this is the second line.
package redact

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Replacement is what a redacted value becomes.
const Replacement = "[redacted]"

// minEncoded is the shortest encoded form worth redacting: shorter forms
// (of a 1–3 byte value) would shred ordinary output and hide little. The
// value itself is always redacted, however short.
const minEncoded = 8

// Variants returns v and every encoded form of it that redaction removes,
// longest first, without duplicates. It returns nil for "".
func Variants(v string) []string {
	if v == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string, always bool) {
		if s == "" || seen[s] || (!always && len(s) < minEncoded) {
			return
		}
		seen[s] = true
		out = append(out, s)
	}
	add(v, true)
	b := []byte(v)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString(b), false)
	}
	// The value inside a longer base64 stream: whatever precedes it, some
	// 3-byte group boundary falls at offset 0, 1 or 2 of the value, and
	// from there on its whole groups encode to the same characters.
	for off := 0; off < 3 && off < len(b); off++ {
		whole := (len(b) - off) / 3 * 3
		if whole < 3 {
			continue
		}
		core := b[off : off+whole]
		add(base64.RawStdEncoding.EncodeToString(core), false)
		add(base64.RawURLEncoding.EncodeToString(core), false)
	}
	// base32 (coreutils base32), whole and as 5-byte groups inside a
	// longer stream, in upper and lower case.
	for _, enc := range []*base32.Encoding{base32.StdEncoding, base32.StdEncoding.WithPadding(base32.NoPadding)} {
		e := enc.EncodeToString(b)
		add(e, false)
		add(strings.ToLower(e), false)
	}
	for off := 0; off < 5 && off < len(b); off++ {
		whole := (len(b) - off) / 5 * 5
		if whole < 5 {
			continue
		}
		e := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[off : off+whole])
		add(e, false)
		add(strings.ToLower(e), false)
	}
	// The value with its letters' case changed (tr a-z A-Z).
	add(strings.ToUpper(v), false)
	add(strings.ToLower(v), false)
	h := hex.EncodeToString(b)
	add(h, false)
	add(strings.ToUpper(h), false)
	// Hex in groups of two bytes, as xxd prints it (within one line), from
	// either byte alignment.
	for off := 0; off < 2 && off < len(b); off++ {
		core := h[2*off : 2*off+(len(b)-off)/2*4]
		if len(core) < 8 {
			continue
		}
		var sb strings.Builder
		for i := 0; i < len(core); i += 4 {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(core[i : i+4])
		}
		add(sb.String(), false)
	}
	for _, esc := range []string{url.QueryEscape(v), url.PathEscape(v), percentEncode(v, true), percentEncode(v, false)} {
		add(esc, false)
		add(lowerPercent(esc), false)
	}
	// Hex bytes apart, as od -tx1 prints them (within one line).
	if len(h) >= 4 {
		var sb strings.Builder
		for i := 0; i < len(h); i += 2 {
			if i > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(h[i : i+2])
		}
		spaced := sb.String()
		add(spaced, false)
		add(strings.ToUpper(spaced), false)
	}
	if j, err := json.Marshal(v); err == nil {
		add(string(j[1:len(j)-1]), false)
	}
	add(reverseBytes(v), false)
	if utf8.ValidString(v) {
		add(reverseRunes(v), false)
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// String returns s with every variant of every value replaced by
// Replacement. At each position the longest variant wins, so a value that
// contains another is removed whole.
func String(s string, values []string) string {
	r := New(values)
	return r.Replace(s)
}

// Redactor replaces the variants of a fixed set of values; build it once
// per step.
type Redactor struct {
	r       *strings.Replacer
	longest int
}

// New returns a Redactor for values (empty ones are ignored).
func New(values []string) *Redactor {
	var all []string
	for _, v := range values {
		all = append(all, Variants(v)...)
	}
	slices.SortStableFunc(all, func(a, b string) int { return len(b) - len(a) })
	all = slices.Compact(all)
	rd := &Redactor{}
	if len(all) == 0 {
		return rd
	}
	rd.longest = len(all[0])
	// strings.Replacer tries the old strings in argument order at each
	// position: longest first makes the longest match win.
	pairs := make([]string, 0, 2*len(all))
	for _, v := range all {
		pairs = append(pairs, v, Replacement)
	}
	rd.r = strings.NewReplacer(pairs...)
	return rd
}

// Replace redacts s.
func (r *Redactor) Replace(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Longest is the length of the longest form redacted: output kept past a
// cap must extend this far for a form straddling the cap to be seen whole.
func (r *Redactor) Longest() int {
	if r == nil {
		return 0
	}
	return r.longest
}

// percentEncode escapes every byte but RFC 3986's unreserved characters
// (as encodeURIComponent, jq @uri and urllib's quote(safe="") do), or
// every byte when all is set.
func percentEncode(v string, all bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !all && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// lowerPercent writes the %XX escapes of s in lower case, as some encoders do.
func lowerPercent(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + ('a' - 'A')
	}
	return c
}

func reverseBytes(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}

func reverseRunes(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}
