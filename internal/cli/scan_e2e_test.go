package cli_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestScanReport runs `interlock scan DIR --report` against a real server:
// the exit code is the scan's, the findings become scan.finding entries
// and a scan.reported summary in the log, and no secret reaches the log.
func TestScanReport(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := startServer(t, tc.store(t))
			secretFile := filepath.Join(q.dir, "admin.totp")
			q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
			q.readSecret("admin", secretFile)
			q.login("admin")

			// Fake credentials, built at run time so this file holds none.
			random := "Zq8vN2kLw4Tr6" + "yUe1oPa3sDf5gHjK7"
			github := "ghp_" + random + secrets.GitHubChecksum(random)
			aws := "AKIA" + "B3SKCZTKMBF6JDPY"
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "deploy.env"), []byte("GITHUB_TOKEN="+github+"\nAWS_ACCESS_KEY_ID="+aws+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}

			code, out, errs := q.as("admin", "scan", dir, "--report", "--no-progress")
			if code != 1 {
				t.Fatalf("scan --report: exit %d, want 1 (findings)\nstdout: %s\nstderr: %s", code, out, errs)
			}
			if want := "reported 2 findings to " + q.ready.URL; !strings.Contains(errs, want) {
				t.Errorf("stderr %q does not say %q", errs, want)
			}

			kinds := q.auditKinds("scan.reported")
			if kinds["scan.finding"] != 2 || kinds["scan.reported"] != 1 {
				t.Errorf("log has %d scan.finding and %d scan.reported entries, want 2 and 1 (all kinds: %v)", kinds["scan.finding"], kinds["scan.reported"], kinds)
			}
			logJSON := q.mustAs("admin", "--json", "log", "tail", "-n", "100000")
			logText := q.mustAs("admin", "log", "tail", "-n", "100000")
			for _, want := range []string{"github-pat", "aws-access-key-id", "deploy.env"} {
				if !strings.Contains(logJSON, want) {
					t.Errorf("the log does not mention %s", want)
				}
			}
			// The finding entries, decoded: rule, file, line, a hash and a
			// redacted match; the summary counts them.
			var got []scanEntry
			var summary map[string]any
			for _, line := range strings.Split(strings.TrimSpace(logJSON), "\n") {
				var e wire.LogEntry
				mustJSON(t, line, &e)
				var leaf struct {
					Kind, Actor, Subject string
					Data                 map[string]any
				}
				mustJSON(t, string(e.Entry), &leaf)
				switch leaf.Kind {
				case "scan.finding":
					d := leaf.Data
					fp, _ := d["fingerprint"].(string)
					match, _ := d["match"].(string)
					got = append(got, scanEntry{Rule: d["rule"].(string), File: d["file"].(string), Line: d["line"].(float64),
						Target: d["target"].(string), Actor: leaf.Actor[:len("person:")], FingerprintHex: len(fp) == 32 && strings.Trim(fp, "0123456789abcdef") == "",
						Redacted: strings.Contains(match, "…") || strings.Trim(match, "*") == ""})
				case "scan.reported":
					summary = leaf.Data
				}
			}
			sort.Slice(got, func(i, j int) bool { return got[i].Line < got[j].Line })
			want := []scanEntry{
				{Rule: "github-pat", File: "deploy.env", Line: 1, Target: dir, Actor: "person:", FingerprintHex: true, Redacted: true},
				{Rule: "aws-access-key-id", File: "deploy.env", Line: 2, Target: dir, Actor: "person:", FingerprintHex: true, Redacted: true},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("scan.finding entries (-want +got):\n%s", diff)
			}
			if summary["findings"] != 2.0 || summary["files"] != 1.0 || summary["target"] != dir {
				t.Errorf("scan.reported data = %v, want 2 findings in 1 file of %s", summary, dir)
			}
			for _, s := range []string{github, random, aws, aws[4:]} {
				if strings.Contains(logJSON, s) || strings.Contains(logText, s) {
					t.Errorf("the log holds a secret in plaintext (%s…)", s[:4])
				}
			}

			// Without a logged-in profile --report fails (exit 2) and says why.
			code, _, errs = q.run("", "--profile", "nobody", "scan", dir, "--report", "--no-progress")
			if code != 2 || !strings.Contains(errs, "login") {
				t.Errorf("scan --report without a session: exit %d, stderr %q; want 2 and a hint to log in", code, errs)
			}
		})
	}
}

// scanEntry is what TestScanReport checks of a scan.finding entry.
type scanEntry struct {
	Rule, File, Target, Actor string
	Line                      float64
	FingerprintHex, Redacted  bool
}
