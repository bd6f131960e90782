package scancli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan/secrets"
)

// TestOneResultPerLocation scans a file whose every secret is matched by
// two or more rules (two generic rules, a header rule and a provider
// format, a keyed and a format rule) and checks that the JSON report and
// the SARIF log each hold exactly one result per location, under the most
// specific rule. The secrets are built here from fixed fake parts.
func TestOneResultPerLocation(t *testing.T) {
	body := "Zq8vN2kLw4Tr6yUe1oPa3sDf5gHjK7"
	github := "gh" + "p_" + body + secrets.GitHubChecksum(body)
	openai := "sk-" + "proj-" + "Wq3Er5Ty7Ui9Op1As3Df5Gh7" + "T3Blbk" + "FJ" + "Jk9Lz1Xc3Vb5Nm7Qw9Er1Ty3"
	jwt := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"q7w3e9r1t5y2"}`)) + "." + "Hq4Jw8Ke2Lr6Mt0Ny3Pu7Qi1Ro5Sa9Td2Uf6Vg0Wh4Xj8"
	lines := []string{
		`api_secret_password = "Rt5Yu8Io2Pa4Sd6Fg9Hj1Kl3Zx7"`, // generic-api-key and generic-password
		`deploy_token = "` + github + `"`,                     // generic-api-key and github-pat
		"Authorization: Bearer " + openai,                     // authorization-bearer and openai-api-key
		"Authorization: Bearer " + jwt,                        // authorization-bearer and jwt
		`curl -s -H "Authorization: Bearer Mz4Nx8Bc2Vl6Kj0Hg3Fd7Sa1Qw5Er9Ty2Ui6Op" https://api.internal/v1`, // curl-auth-header and authorization-bearer
	}
	want := []string{"generic-password", "github-pat", "openai-api-key", "jwt", "curl-auth-header"}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deploy.sh"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("json", func(t *testing.T) {
		out, errs, code := runCmd(t, "", dir, "--kinds", "secret", "--format", "json")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, errs)
		}
		var rep struct {
			Findings []struct {
				RuleID       string `json:"rule_id"`
				File         string `json:"file"`
				Line, Column int
			} `json:"findings"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		var got, locs []string
		for _, f := range rep.Findings {
			got = append(got, f.RuleID)
			locs = append(locs, fmt.Sprintf("%s:%d:%d", f.File, f.Line, f.Column))
		}
		checkOnePerLocation(t, got, locs, want)
	})

	t.Run("sarif", func(t *testing.T) {
		out, errs, code := runCmd(t, "", dir, "--kinds", "secret", "--format", "sarif")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s", code, errs)
		}
		var log struct {
			Runs []struct {
				Results []struct {
					RuleID    string `json:"ruleId"`
					Locations []struct {
						PhysicalLocation struct {
							ArtifactLocation struct{ URI string } `json:"artifactLocation"`
							Region           struct{ StartLine, StartColumn int }
						} `json:"physicalLocation"`
					} `json:"locations"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(out), &log); err != nil {
			t.Fatal(err)
		}
		var got, locs []string
		for _, r := range log.Runs[0].Results {
			pl := r.Locations[0].PhysicalLocation
			got = append(got, r.RuleID)
			locs = append(locs, fmt.Sprintf("%s:%d:%d", pl.ArtifactLocation.URI, pl.Region.StartLine, pl.Region.StartColumn))
		}
		checkOnePerLocation(t, got, locs, want)
	})
}

func checkOnePerLocation(t *testing.T, got, locs, want []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, l := range locs {
		if seen[l] {
			t.Errorf("location %s reported twice (rules %v)", l, got)
		}
		seen[l] = true
	}
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("reported rules %v, want %v", g, w)
	}
}
