package secrets

import (
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// TestOneFindingPerLocation writes secrets that several bundled rules
// match at once and checks that exactly one finding is reported for each,
// under the most specific rule; and that two secrets on one line stay two
// findings. Every secret is generated here.
func TestOneFindingPerLocation(t *testing.T) {
	g := fakeGen{rand.New(rand.NewPCG(14, 7))}
	d := NewDetector(bundledSet(t), Options{})
	ghBody := g.pick(alnum, 30)
	github := "gh" + "p_" + ghBody + GitHubChecksum(ghBody)
	openai := "sk-" + "proj-" + g.pick(alnum, 24) + "T3Blbk" + "FJ" + g.pick(alnum, 24)
	jwtTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+g.pick(lower, 12)+`"}`)) + "." + g.pick(alnum, 43)
	artifactory := "AK" + "Cp" + g.pick(alnum, 69)
	for _, tc := range []struct {
		name, path, text string
		// candidates: rules that must each match on their own (so the
		// case really overlaps); want: the rule reported.
		candidates []string
		want       string
	}{
		{"two generic rules on one value", "config",
			`api_secret_password = "` + g.pick(alnum, 28) + `"`,
			[]string{"generic-api-key", "generic-password"}, "generic-password"}, // a tie: the rule listed first
		{"a provider format beats the generic rule", "config",
			`deploy_token = "` + github + `"`,
			[]string{"generic-api-key", "github-pat"}, "github-pat"},
		{"a provider format beats the Authorization header", "config",
			"Authorization: Bearer " + openai,
			[]string{"authorization-bearer", "openai-api-key"}, "openai-api-key"},
		{"a JWT beats the Authorization header", "config",
			"Authorization: Bearer " + jwtTok,
			[]string{"authorization-bearer", "jwt"}, "jwt"},
		{"two syntax rules on one header", "deploy.sh",
			`curl -s -H "Authorization: Bearer ` + g.pick(alnum, 40) + `" https://api.internal/v1`,
			[]string{"authorization-bearer", "curl-auth-header"}, "curl-auth-header"},
		{"a provider format beats a keyed provider rule", "config",
			`artifactory_key := "` + artifactory + `"`,
			[]string{"artifactory-api-key", "jfrog-api-key"}, "artifactory-api-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := candidates(t, d, tc.path, tc.text)
			for _, id := range tc.candidates {
				if !hasRule(all, id) {
					t.Fatalf("case does not overlap: %s did not match %q (candidates %v)", id, tc.text, ruleIDs(all))
				}
			}
			got := detect(t, d, tc.path, tc.text)
			if len(got) != 1 || got[0].RuleID != tc.want {
				t.Errorf("reported %v, want exactly [%s]", ruleIDs(got), tc.want)
			}
		})
	}

	t.Run("two secrets on one line stay two", func(t *testing.T) {
		text := `env: {DB_PASSWORD: "` + g.pick(alnum, 22) + `", GH_TOKEN: "` + github + `"}`
		got := detect(t, d, "config", text)
		ids := ruleIDs(got)
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"generic-password", "github-pat"}) {
			t.Errorf("reported %v, want generic-password and github-pat", ids)
		}
	})
}

func ruleIDs(fs []scan.Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.RuleID
	}
	return out
}

// TestOneFindingPerLocationChains checks the choice on synthetic spans:
// in a chain where A overlaps B and B overlaps C but A and C do not
// overlap, a best B hides both, and best A and C both stay.
func TestOneFindingPerLocationChains(t *testing.T) {
	rules := []Rule{
		{ID: "generic", Generic: true},
		{ID: "syntax", Syntax: true},
		{ID: "keyed", Generic: true, Value: "x"},
		{ID: "format"},
	}
	const generic, syntax, keyed, format = 0, 1, 2, 3
	for _, tc := range []struct {
		name  string
		found []spanFinding
		want  []bool
	}{
		{"best in the middle", []spanFinding{{rule: generic, start: 0, end: 10}, {rule: format, start: 8, end: 20}, {rule: syntax, start: 18, end: 30}},
			[]bool{false, true, false}},
		{"best at both ends", []spanFinding{{rule: format, start: 0, end: 10}, {rule: generic, start: 8, end: 20}, {rule: keyed, start: 18, end: 30}},
			[]bool{true, false, true}},
		{"decoded beats plain", []spanFinding{{rule: format, start: 0, end: 10}, {rule: generic, start: 0, end: 10, decoded: true}},
			[]bool{false, true}},
		{"tie: longer, then earlier rule", []spanFinding{{rule: keyed, start: 0, end: 10}, {rule: keyed, start: 2, end: 14}, {rule: syntax, start: 20, end: 30}, {rule: syntax, start: 20, end: 30}},
			[]bool{false, true, true, false}},
		{"apart", []spanFinding{{rule: generic, start: 10, end: 20}, {rule: generic, start: 0, end: 10}, {rule: generic, start: 20, end: 30}},
			[]bool{true, true, true}},
	} {
		if got := oneFindingPerLocation(rules, tc.found); !slices.Equal(got, tc.want) {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.want)
		}
	}
}
