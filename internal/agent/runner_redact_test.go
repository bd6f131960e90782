package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
)

// TestStepOutputSecretsRedacted runs steps that print credentials and
// checks that the reported result carries "[redacted:<rule>]" in their
// place — the scanner's secret rules, not only the step's Redact values —
// also when a secret straddles the output cap.
func TestStepOutputSecretsRedacted(t *testing.T) {
	// Fake credentials, built at run time so this file holds none. The
	// GitHub token carries a valid CRC32 checksum, as real ones do.
	random := "Zq8vN2kLw4Tr6" + "yUe1oPa3sDf5gHjK7" // 30 characters
	github := "ghp_" + random + secrets.GitHubChecksum(random)
	aws := "AKIA" + "B3SKCZTKMBF6JDPY"

	ts := startServer(t, 1)
	ts.startAgents(t, t.TempDir(), 1, "ilk_join_test")
	waitFor(t, "host_1 to connect", func() bool { return ts.hub.Connected("host_1") })

	for _, tt := range []struct {
		name string
		step wire.Step
		want wire.StepResult
	}{{
		name: "github token and aws key id",
		step: wire.Step{StepID: "stp_secrets", TimeoutSeconds: 5,
			Argv: []string{"sh", "-c", "echo GITHUB_TOKEN=" + github + "; echo aws_access_key_id: " + aws + "; echo done"}},
		want: wire.StepResult{StepID: "stp_secrets",
			Output: "GITHUB_TOKEN=[redacted:github-pat]\naws_access_key_id: [redacted:aws-access-key-id]\ndone\n"},
	}, {
		name: "step redact values and rules together",
		step: wire.Step{StepID: "stp_both", TimeoutSeconds: 5, Redact: []string{"hunter2-but-longer"},
			Argv: []string{"echo", "pw=hunter2-but-longer", "key=" + aws}},
		want: wire.StepResult{StepID: "stp_both", Output: "pw=[redacted] key=[redacted:aws-access-key-id]\n"},
	}, {
		name: "secret straddling the output cap is redacted before the cut",
		step: wire.Step{StepID: "stp_cap", TimeoutSeconds: 5, MaxOutputBytes: 40,
			Argv: []string{"echo", strings.Repeat("x", 30), github}},
		want: wire.StepResult{StepID: "stp_cap", Output: strings.Repeat("x", 30) + " [redacted", Truncated: true},
	}, {
		name: "output without secrets is unchanged",
		step: wire.Step{StepID: "stp_clean", TimeoutSeconds: 5, Argv: []string{"echo", "password_policy=strict token_age_s=31"}},
		want: wire.StepResult{StepID: "stp_clean", Output: "password_policy=strict token_age_s=31\n"},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ts.hub.Dispatch(t.Context(), "host_1", tt.step)
			if err != nil {
				t.Fatalf("Dispatch: %v", err)
			}
			got.StartedAt, got.FinishedAt = time.Time{}, time.Time{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			for _, s := range []string{github[4:12], aws[4:12]} {
				if strings.Contains(got.Output, s) {
					t.Errorf("output carries part of a secret (%s…): %q", s[:4], got.Output)
				}
			}
		})
	}
}
