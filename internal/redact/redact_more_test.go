package redact_test

import (
	"encoding/base32"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/redact"
)

// More forms a step's constant script could print a secret in with one
// standard tool (base32, tr, xxd), inside longer output too; each is
// redacted.
func TestCommonToolEncodingsAreRedacted(t *testing.T) {
	const secret = "Pa55w0rd-Hunter2" // mixed case, so case folding changes it
	for _, tt := range []struct {
		name, printed string
		maxLeft       int // longest run of the printed form left around a redaction; 0 means 4
	}{
		{"base32", base32.StdEncoding.EncodeToString([]byte(secret)), 0},
		{"base32 no padding", base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(secret)), 0},
		{"base32 lower case", strings.ToLower(base32.StdEncoding.EncodeToString([]byte(secret))), 0},
		{"tr a-z A-Z", strings.ToUpper(secret), 0},
		{"tr A-Z a-z", strings.ToLower(secret), 0},
		{"xxd groups", "5061 3535 7730 7264 2d48 756e 7465 7232", 0},
		// At the edges of a longer stream a group mixes the value's bytes
		// with others: one byte of xxd's pair, up to four of base32's five.
		{"xxd groups, at an odd offset", "0a50 6135 3577 3072 642d 4875 6e74 6572 320a", 5},
		{"base32 of user:secret", base32.StdEncoding.EncodeToString([]byte("u:" + secret)), 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := redact.String("before "+tt.printed+" after\n", []string{secret})
			left := strings.TrimSuffix(strings.TrimPrefix(out, "before "), " after\n")
			for _, part := range strings.Split(left, redact.Replacement) {
				if max := max(tt.maxLeft, 4); len(part) > max {
					t.Errorf("%q left %q", tt.printed, part)
				}
			}
		})
	}
}
