package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/interlock-dev/interlock/internal/scan"
)

// A decoded span is base64 text in a file together with the text the rules
// run on instead: the decoded bytes, sometimes framed with the key they
// were assigned to so that the generic rules see an assignment.
//
// People encode what they store: Kubernetes Secret manifests hold base64
// values under data:, HTTP Basic headers carry base64 of user:password or
// of a bare token, and JWTs get base64-encoded once more into
// configuration. A regex on the encoded text sees none of it, so the
// detector decodes these three shapes (and nothing else: decoding every
// base64-looking run would cost time and produce noise) and reports what
// it finds at the encoded value's position.
type decodedSpan struct {
	start, end int // the encoded value in the file
	text       []byte
}

// maxDecoded bounds one decoded value; longer ones are data (certificates
// are found by the PEM rules when decoded, and stay within this).
const maxDecoded = 64 << 10

var (
	// Base64 of `eyJ` (the start of a JWT or of any JSON object).
	b64JSONRe = regexp.MustCompile(`ZXlK[A-Za-z0-9+/_\-]{40,}={0,2}`)
	// The value of an HTTP Basic authorization, matched at "basic".
	basicRe = regexp.MustCompile(`^(?i:basic)[ \t]+([A-Za-z0-9+/]{16,}={0,2})`)
	// The value after "kind:", matched there.
	k8sSecretKindRe = regexp.MustCompile(`^kind:[ \t]*["']?(?i:secret)["']?[ \t]*(?:\r?\n|$)`)
	// A key under data: with a base64 value, on its line or, after | or >,
	// on the next.
	k8sDataEntryRe = regexp.MustCompile(`(?m)^([ \t]+)([A-Za-z0-9_.\-]+):[ \t]*(?:[|>][-+]?[ \t]*\r?\n[ \t]+)?["']?([A-Za-z0-9+/]{8,}={0,2})["']?[ \t]*\r?$`)
)

// maxDecodedSpans bounds how many values of one file are decoded: a file
// of thousands of base64 blobs is data, and decoding each would multiply
// the scan's cost.
const maxDecodedSpans = 256

// decodeSpans finds the encoded values in data worth decoding.
func decodeSpans(data []byte) []decodedSpan {
	out := decodeSpansAll(data)
	if len(out) > maxDecodedSpans {
		out = out[:maxDecodedSpans]
	}
	return out
}

func decodeSpansAll(data []byte) []decodedSpan {
	var out []decodedSpan
	if bytes.Contains(data, []byte("ZXlK")) {
		for _, m := range b64JSONRe.FindAllIndex(data, maxDecodedSpans) {
			if t := decodeB64(data[m[0]:m[1]]); t != nil {
				out = append(out, decodedSpan{start: m[0], end: m[1], text: t})
			}
		}
	}
	// Whole-file regexes cost more than the rest of the scan: find the
	// anchor words with bytes.Index and match only there.
	for _, word := range []string{"Basic ", "basic ", "BASIC "} {
		for off := 0; ; {
			i := bytes.Index(data[off:], []byte(word))
			if i < 0 {
				break
			}
			at := off + i
			off = at + len(word)
			if at > 0 && isIdentByte(data[at-1]) {
				continue
			}
			m := basicRe.FindSubmatchIndex(data[at:min(len(data), at+4096)])
			if m == nil {
				continue
			}
			m[2], m[3] = at+m[2], at+m[3]
			t := decodeB64(data[m[2]:m[3]])
			// user:password is the basic-auth rule's; a bare token is ours.
			if t == nil || bytes.IndexByte(t, ':') >= 0 {
				continue
			}
			framed := append([]byte(`authorization_token = "`), t...)
			out = append(out, decodedSpan{start: m[2], end: m[3], text: append(framed, '"')})
		}
	}
	if isK8sSecret(data) {
		out = append(out, k8sSecretData(data)...)
	}
	return out
}

// isK8sSecret reports whether data has a line "kind: Secret".
func isK8sSecret(data []byte) bool {
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("kind:"))
		if i < 0 {
			return false
		}
		at := off + i
		off = at + 5
		ls := at
		for ls > 0 && (data[ls-1] == ' ' || data[ls-1] == '\t') {
			ls--
		}
		if (ls == 0 || data[ls-1] == '\n') && k8sSecretKindRe.Match(data[at:min(len(data), at+64)]) {
			return true
		}
	}
}

// k8sSecretData decodes the values of the data: block(s) of a Kubernetes
// Secret manifest, framing each as key: "value" so the generic rules judge
// the key name as they would in plain text.
func k8sSecretData(data []byte) []decodedSpan {
	var out []decodedSpan
	lines := 0
	for off := 0; off < len(data); {
		i := bytes.Index(data[off:], []byte("data:"))
		if i < 0 {
			break
		}
		start := off + i
		off = start + 5
		lineStart := bytes.LastIndexByte(data[:start], '\n') + 1
		if strings.TrimSpace(string(data[lineStart:start])) != "" {
			continue // stringData:, or data: inside a value
		}
		indent := start - lineStart
		// The block runs while lines are indented deeper than data:.
		end := off
		for end < len(data) {
			nl := bytes.IndexByte(data[end:], '\n')
			if nl < 0 {
				end = len(data)
				break
			}
			next := end + nl + 1
			j := next
			for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
				j++
			}
			if j < len(data) && data[j] != '\n' && data[j] != '\r' && data[j] != '#' && j-next <= indent {
				end = next
				break
			}
			end = next
		}
		for _, m := range k8sDataEntryRe.FindAllSubmatchIndex(data[off:end], -1) {
			lines++
			if lines > 1000 {
				return out
			}
			vs, ve := off+m[6], off+m[7]
			t := decodeB64(data[vs:ve])
			if t == nil {
				continue
			}
			key := data[off+m[4] : off+m[5]]
			framed := make([]byte, 0, len(key)+len(t)+8)
			// Every value of a committed Secret is a secret, whatever its
			// key is called: the key is framed as <key>.secret so that the
			// generic rules take it as a credential name and still apply
			// their placeholder, entropy and template filters to the value.
			framed = append(framed, key...)
			framed = append(framed, ".secret: "...)
			if bytes.IndexByte(t, '\n') < 0 {
				framed = append(framed, '"')
				framed = append(framed, t...)
				framed = append(framed, '"')
			} else {
				framed = append(framed, '\n')
				framed = append(framed, t...)
			}
			out = append(out, decodedSpan{start: vs, end: ve, text: framed})
		}
	}
	return out
}

// decodeB64 decodes standard or URL-safe base64, padded or not, and
// returns nil unless the result is printable UTF-8 text.
func decodeB64(b []byte) []byte {
	s := strings.TrimRight(string(b), "=")
	if len(s) > maxDecoded*4/3 {
		return nil
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	t, err := enc.DecodeString(s)
	if err != nil || !utf8.Valid(t) {
		return nil
	}
	for _, c := range t {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return nil
		}
	}
	return bytes.TrimRight(t, "\r\n")
}

// findDecoded runs the rules on the decoded spans of f and reports each
// finding at its encoded value.
func (d *Detector) findDecoded(ctx context.Context, f *scan.File, build bool) ([]spanFinding, error) {
	var out []spanFinding
	for _, sp := range decodeSpans(f.Data) {
		sub := &scan.File{Path: f.Path, Data: sp.text}
		found, err := d.findPlain(ctx, sub, build)
		if err != nil {
			return nil, err
		}
		for _, g := range found {
			g.start, g.end, g.decoded = sp.start, sp.end, true
			if build {
				fd := f.NewFinding(sp.start)
				fd.Kind, fd.RuleID, fd.Severity = g.f.Kind, g.f.RuleID, g.f.Severity
				fd.Match, fd.Fingerprint, fd.Fix = g.f.Match, g.f.Fingerprint, g.f.Fix
				fd.Message = g.f.Message + " (base64-encoded)"
				g.f = fd
			}
			out = append(out, g)
		}
	}
	return out, nil
}
