package secrets

import (
	"bytes"
	"net/url"
	"path"
	"regexp"
	"unicode/utf8"

	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"github.com/interlock-dev/interlock/internal/scan"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
)

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encodeBase62 encodes v in base62, left-padded with '0' to width.
func encodeBase62(v uint32, width int) string {
	var b [16]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = base62[v%62]
		v /= 62
	}
	s := string(b[i:])
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// GitHubChecksum returns the 6-character checksum GitHub appends to the
// 30-character random part of its tokens (CRC32, base62).
func GitHubChecksum(random string) string {
	return encodeBase62(crc32.ChecksumIEEE([]byte(random)), 6)
}

// validGitHubToken checks the CRC32 suffix of a ghp_/gho_/ghu_/ghs_/ghr_
// token (prefix, 30 random characters, 6 checksum characters).
func validGitHubToken(tok string) bool {
	i := strings.IndexByte(tok, '_')
	if i < 0 {
		return false
	}
	body := tok[i+1:]
	if len(body) != 36 {
		return false
	}
	return GitHubChecksum(body[:30]) == body[30:]
}

// luhn is [scan.Luhn].
func luhn(digits string) bool { return scan.Luhn(digits) }

// testCards are card numbers card networks and processors publish for tests.
var testCards = map[string]bool{
	"4111111111111111": true, "4242424242424242": true, "4012888888881881": true, "4000056655665556": true,
	"5555555555554444": true, "5105105105105100": true, "5200828282828210": true, "2223003122003222": true,
	"378282246310005": true, "371449635398431": true, "378734493671000": true, "6011111111111117": true,
	"6011000990139424": true, "3056930009020004": true, "36227206271667": true, "3566002020360505": true,
	"6200000000000005": true, "4000000000000002": true, "4000000000009995": true, "5431111111111111": true,
	"4222222222222": true, "30569309025904": true, "38520000023237": true, "3530111333300000": true,
	"4917610000000000": true, "4484070000000000": true, "5454545454545454": true, "4007000000027": true,
}

// validCard checks a card-number candidate: Luhn, a real issuer prefix and
// length, not a published test card, and not part of a longer number.
func validCard(f *scan.File, cand string, data []byte, ms, me int) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, cand)
	if ms > 0 {
		if c := data[ms-1]; c == '.' || c == '_' || c == '/' || c == '+' || c == '-' || isAlnum(c) {
			return "part of a longer number or identifier"
		}
	}
	if me < len(data) {
		if c := data[me]; c == '.' && me+1 < len(data) && data[me+1] >= '0' && data[me+1] <= '9' || isAlnum(c) || c == '_' {
			return "part of a longer number or identifier"
		}
	}
	if why := cardGrouping(cand); why != "" {
		return why
	}
	if codeExts[fileExt(f.Path)] && !quotedAt(data, ms, me) && !cardContext.Match(lineAround(data, ms)) {
		return "a numeric literal in code, with no card context on the line"
	}
	if len(digits) == 13 {
		return "13-digit number (a legacy card length; numbers this long are mostly data)"
	}
	if testCards[digits] {
		return "published test card number"
	}
	if !issuerOK(digits) {
		return "no card network uses this prefix and length"
	}
	if !luhn(digits) {
		return "fails the Luhn check"
	}
	if longestRun(digits) >= 6 {
		return "placeholder (repeated digits)"
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func issuerOK(d string) bool {
	n := len(d)
	p := func(k int) int { v, _ := strconv.Atoi(d[:k]); return v }
	switch {
	case d[0] == '4':
		return n == 13 || n == 16 || n == 19
	case p(2) >= 51 && p(2) <= 55, p(4) >= 2221 && p(4) <= 2720:
		return n == 16
	case p(2) == 34 || p(2) == 37:
		return n == 15
	case p(4) == 6011 || p(2) == 65 || (p(3) >= 644 && p(3) <= 649):
		return n >= 16 && n <= 19
	case p(4) >= 3528 && p(4) <= 3589:
		return n >= 16 && n <= 19
	case p(3) >= 300 && p(3) <= 305, p(2) == 36, p(2) == 38:
		return n == 14
	case p(2) == 62:
		return n >= 16 && n <= 19
	}
	return false
}

// validPEM checks that a private key block decodes as PEM with a body of
// plausible size, so prose that mentions "BEGIN PRIVATE KEY" is not a leak.
func validPEM(block string) string {
	b, _ := pem.Decode([]byte(block))
	if b == nil {
		// PuTTY and OpenSSH bodies with odd wrapping: fall back to base64 of body lines.
		return "not a decodable PEM block"
	}
	if len(b.Bytes) < 64 {
		return "PEM body too short to be a key"
	}
	if bytes.Count(b.Bytes, []byte{0}) == len(b.Bytes) {
		return "PEM body is all zero bytes"
	}
	return ""
}

// validJWT checks that a token has a JSON header with an alg and a JSON
// payload.
func validJWT(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "not three dot-separated parts"
	}
	var hdr map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &hdr) != nil {
		return "JWT header is not base64url JSON"
	}
	if len(hdr) == 0 {
		// Any JOSE header parameter will do (alg, enc, kid, x5t, crit,
		// nonce …): JWE and detached headers do not always carry alg.
		return "JWT header is empty"
	}
	if a, _ := hdr["alg"].(string); strings.EqualFold(a, "none") {
		return "unsigned JWT (alg none)"
	}
	var payload map[string]any
	raw, err = base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &payload) != nil {
		return "JWT payload is not base64url JSON"
	}
	if len(parts[2]) < 16 {
		return "JWT signature too short"
	}
	return ""
}

// documentedUserinfo are credentials from RFCs and tutorials.
var documentedUserinfo = map[string]bool{
	"aladdin:opensesame": true, "aladdin:open sesame": true, "user:pass": true, "user:password": true,
	"username:password": true, "foo:bar": true, "admin:admin": true,
}

// validUserinfo checks a user:password pair for placeholders and
// fixtures.
func validUserinfo(f *scan.File, ui string) string {
	if documentedUserinfo[strings.ToLower(ui)] {
		return "documented example credentials"
	}
	_, pass, ok := strings.Cut(ui, ":")
	if !ok || pass == "" {
		return "no password"
	}
	if p, err := url.PathUnescape(pass); err == nil {
		pass = p
	}
	if why := placeholder(pass, true); why != "" {
		return why
	}
	if wellKnownPasswords[strings.ToLower(pass)] {
		return "a well-known default password: reported as a default credential where it configures a product"
	}
	if isDocPath(f.Path) && !looksGenerated(pass) {
		return "password in a test or documentation file does not look machine-generated"
	}
	return ""
}

// validBasicAuth checks that an HTTP Basic credential decodes to
// user:password.
func validBasicAuth(f *scan.File, b64 string) string {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "=")); err != nil {
			return "not base64"
		}
	}
	s := string(raw)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) || !strings.Contains(s, ":") {
		return "does not decode to user:password"
	}
	return validUserinfo(f, s)
}

// cardGrouping accepts the ways card numbers are written: no separators,
// groups of four, or 4-6-5 / 4-6-4 (American Express, Diners Club).
func cardGrouping(cand string) string {
	groups := strings.FieldsFunc(cand, func(r rune) bool { return r == ' ' || r == '-' })
	if len(groups) == 1 {
		return ""
	}
	lens := make([]int, len(groups))
	for i, g := range groups {
		lens[i] = len(g)
	}
	fours := true
	for i, n := range lens {
		if n != 4 && !(i == len(lens)-1 && n >= 1 && n <= 4) {
			fours = false
		}
	}
	if fours || slices.Equal(lens, []int{4, 6, 5}) || slices.Equal(lens, []int{4, 6, 4}) {
		return ""
	}
	return "digits are not grouped like a card number"
}

var cardContext = regexp.MustCompile(`(?i)card|\bpan\b|\bcc[_-]?(num|number)?\b|visa|master|amex|payment|credit|debit`)

// quotedAt reports whether data[ms:me] sits inside quotes.
func quotedAt(data []byte, ms, me int) bool {
	return ms > 0 && me < len(data) && (data[ms-1] == '"' || data[ms-1] == '\'') && data[me] == data[ms-1]
}

// lineAround returns the line containing off.
func lineAround(data []byte, off int) []byte {
	s, e := off, off
	for s > 0 && data[s-1] != '\n' {
		s--
	}
	for e < len(data) && data[e] != '\n' {
		e++
	}
	return data[s:e]
}

// firebaseClientKey reports why a Google API key at off is a Firebase or
// Google client SDK key, or "". Those keys ship inside every web and mobile
// app by design (Firebase's documentation says they are not secret; access
// is governed by security rules and key restrictions), so reporting them
// is noise: google-services.json, GoogleService-Info.plist, and a
// firebaseConfig object (apiKey next to authDomain or projectId).
func firebaseClientKey(f *scan.File, off int) string {
	base := strings.ToLower(path.Base(f.Path))
	if base == "google-services.json" || base == "googleservice-info.plist" {
		return "Firebase client configuration (a public SDK key by design)"
	}
	near := strings.ToLower(string(f.Data[max(0, off-400):min(len(f.Data), off+400)]))
	if strings.Contains(near, "firebase") || strings.Contains(near, "authdomain") || strings.Contains(near, "messagingsenderid") {
		return "Firebase client configuration (a public SDK key by design)"
	}
	return ""
}

// bech32Charset is the BIP 173 data alphabet.
const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Polymod is the BIP 173 checksum function over 5-bit values.
func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if (top>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// bech32Values expands the human-readable part and maps the data
// characters to 5-bit values; ok is false for a character outside the
// alphabet.
func bech32Values(hrp, data string) (values []byte, ok bool) {
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]>>5)
	}
	values = append(values, 0)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]&31)
	}
	for i := 0; i < len(data); i++ {
		v := strings.IndexByte(bech32Charset, data[i])
		if v < 0 {
			return nil, false
		}
		values = append(values, byte(v))
	}
	return values, true
}

// validBech32 checks the BIP 173 checksum of s (case-insensitive, as age
// writes its keys in upper case): the human-readable part, "1", the data
// and a 6-character checksum. age (age-encryption.org/v1) encodes secret
// keys this way with the part "age-secret-key-". Written here because it
// is twenty lines and no dependency of ours provides it.
func validBech32(s string) bool {
	s = strings.ToLower(s)
	i := strings.LastIndexByte(s, '1')
	if i < 1 || len(s)-i-1 < 6 {
		return false
	}
	values, ok := bech32Values(s[:i], s[i+1:])
	return ok && bech32Polymod(values) == 1
}

// Bech32Checksum returns the 6-character BIP 173 checksum of hrp and the
// data characters (lower case); the tests build age keys with it.
func Bech32Checksum(hrp, data string) string {
	values, _ := bech32Values(strings.ToLower(hrp), strings.ToLower(data))
	mod := bech32Polymod(append(values, 0, 0, 0, 0, 0, 0)) ^ 1
	var out [6]byte
	for i := range out {
		out[i] = bech32Charset[(mod>>(5*(5-i)))&31]
	}
	return string(out[:])
}
