package redact_test

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/redact"
)

// The forms a step prints a secret in to get it past an exact match.
func TestEveryEncodingIsRedacted(t *testing.T) {
	const secret = "pa55 w/rd+&?~é>x" // has bytes that every encoder changes
	rev := func(s string) string {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r)
	}
	for _, tt := range []struct{ name, printed string }{
		{"plain", secret},
		{"base64", base64.StdEncoding.EncodeToString([]byte(secret))},
		{"base64 no padding", base64.RawStdEncoding.EncodeToString([]byte(secret))},
		{"base64url", base64.URLEncoding.EncodeToString([]byte(secret))},
		{"base64url no padding", base64.RawURLEncoding.EncodeToString([]byte(secret))},
		{"base64 of echo (trailing newline)", base64.StdEncoding.EncodeToString([]byte(secret + "\n"))},
		{"base64 of user:secret", base64.StdEncoding.EncodeToString([]byte("u:" + secret))},
		{"base64 of x + secret", base64.StdEncoding.EncodeToString([]byte("x" + secret + "yz"))},
		{"hex", hex.EncodeToString([]byte(secret))},
		{"HEX", strings.ToUpper(hex.EncodeToString([]byte(secret)))},
		{"hex inside a dump", "00ff" + hex.EncodeToString([]byte(secret)) + "0a"},
		{"query escape", url.QueryEscape(secret)},
		{"path escape", url.PathEscape(secret)},
		{"lower-case percent", strings.ToLower(url.PathEscape(secret))},
		{"strict percent-encoding (jq @uri)", "pa55%20w%2Frd%2B%26%3F~%C3%A9%3Ex"},
		{"every byte percent-encoded", strings.ToLower("%70%61%35%35%20%77%2F%72%64%2B%26%3F%7E%C3%A9%3E%78")},
		{"od -tx1 bytes", "70 61 35 35 20 77 2f 72 64 2b 26 3f 7e c3 a9 3e 78"},
		{"reversed", rev(secret)},
		{"json string", `"pa55 w/rd+\u0026?~é\u003ex"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := redact.String("before "+tt.printed+" after\n", []string{secret})
			if !strings.Contains(out, redact.Replacement) {
				t.Fatalf("%q was not redacted: %q", tt.printed, out)
			}
			if !strings.HasPrefix(out, "before ") || !strings.HasSuffix(out, " after\n") {
				t.Errorf("redaction ate the text around the secret: %q", out)
			}
			// What is left of an encoding at most hints at 2 bytes: no run of
			// the printed form longer than 4 characters survives.
			left := strings.TrimSuffix(strings.TrimPrefix(out, "before "), " after\n")
			for _, part := range strings.Split(left, redact.Replacement) {
				if len(part) > 4 {
					t.Errorf("left %q of %q", part, tt.printed)
				}
			}
		})
	}
}

func TestOrdinaryOutputIsKept(t *testing.T) {
	for _, tt := range []struct{ name, secret, out string }{
		{"unrelated text", "hunter2-but-longer", "deploy ok: 3 hosts, 0 failed\n"},
		{"a short secret hides only itself, not its encodings", "ab", "6162 YWI= ba ok\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact.String(tt.out, []string{tt.secret}); got != tt.out {
				t.Errorf("String(%q) = %q, want it unchanged", tt.out, got)
			}
		})
	}
	if got := redact.String("x ab y", []string{"ab", ""}); got != "x [redacted] y" {
		t.Errorf("short value itself: %q", got)
	}
}

// A value that contains another is removed whole, not in pieces.
func TestLongestWins(t *testing.T) {
	got := redact.String("key=abcdefgh-123", []string{"abcdefgh", "abcdefgh-123"})
	if got != "key=[redacted]" {
		t.Errorf("got %q, want key=[redacted]", got)
	}
}
