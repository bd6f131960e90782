package policy

import (
	"strconv"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/usererr"
)

func TestCheckBounds(t *testing.T) {
	permit := func(cond string) string {
		return "@id(\"p\")\npermit(principal, action, resource) when { " + cond + " };\n"
	}
	n := MaxPolicyNesting - 1 // inside "when {"
	for _, tt := range []struct {
		name, text, wantCode string
	}{
		{"default policy", DefaultText, ""},
		{"brackets at the limit", permit(strings.Repeat("(", n) + "true" + strings.Repeat(")", n)), ""},
		{"brackets one past the limit", permit(strings.Repeat("(", n+1) + "true" + strings.Repeat(")", n+1)), "policy_too_deep"},
		{"brackets in a string do not count", permit(`context.s == "` + strings.Repeat("(", 1000) + `"`), ""},
		{"an escaped quote does not end the string", permit(`context.s == "\"` + strings.Repeat("(", 1000) + `"`), ""},
		{"brackets in a comment do not count", "// " + strings.Repeat("(", 1000) + "\n" + permit("true"), ""},
		{"operators at the limit", permit("1" + strings.Repeat("+1", MaxPolicyOperators-1) + " == 1"), ""},
		{"operators one past the limit", permit("1" + strings.Repeat("+1", MaxPolicyOperators) + " == 1"), "policy_too_complex"},
		{"two-byte operators count once", permit("true" + strings.Repeat(" && true", MaxPolicyOperators)), ""},
		{"two-byte operators one past the limit", permit("true" + strings.Repeat(" && true", MaxPolicyOperators+1)), "policy_too_complex"},
		{"negations", permit(strings.Repeat("!", MaxPolicyOperators+1) + "true"), "policy_too_complex"},
		{"member chain", permit("context" + strings.Repeat(".a", MaxPolicyOperators+1)), "policy_too_complex"},
		{"keywords count", permit(strings.Repeat("if true then ", MaxPolicyOperators+1) + "true"), "policy_too_complex"},
		{"the count is per statement", strings.Repeat(permit("1"+strings.Repeat("+1", MaxPolicyOperators/2)+" == 1"), 4), ""},
		{"too large", permit("true") + strings.Repeat(" ", maxPolicyBytes), "policy_too_large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBounds(tt.text)
			got := ""
			if ue, ok := usererr.As(err); ok {
				got = ue.Code
			} else if err != nil {
				t.Fatalf("checkBounds: %v is not a user error", err)
			}
			if got != tt.wantCode {
				t.Fatalf("checkBounds: code %q (%v), want %q", got, err, tt.wantCode)
			}
		})
	}
}

// BenchmarkCompileLargestAccepted compiles a policy at the bounds: 1 MiB
// of statements, each with MaxPolicyOperators operators. It shows what
// one policy apply or test can cost the server at most.
func BenchmarkCompileLargestAccepted(b *testing.B) {
	stmt := "@id(\"p%d\")\npermit(principal, action, resource) when { 1" + strings.Repeat("+1", MaxPolicyOperators-1) + " == 1 };\n"
	var sb strings.Builder
	for i := 0; sb.Len()+len(stmt)+20 < maxPolicyBytes; i++ {
		sb.WriteString(strings.Replace(stmt, "%d", strconv.Itoa(i), 1))
	}
	sb.WriteString("@id(\"admin\")\npermit(principal, action, resource);\n")
	text := sb.String()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := compile(text); err != nil {
			b.Fatal(err)
		}
	}
}
