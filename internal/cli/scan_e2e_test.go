package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
