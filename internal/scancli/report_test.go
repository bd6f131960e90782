package scancli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan/secrets"
)

// fakeGitHubToken is a token with a valid checksum, built at run time.
func fakeGitHubToken() string {
	random := "Zq8vN2kLw4Tr6" + "yUe1oPa3sDf5gHjK7"
	return "ghp_" + random + secrets.GitHubChecksum(random)
}

func runWith(t *testing.T, opts Options, args ...string) (string, string, int) {
	t.Helper()
	cmd := CommandWith(opts)
	var out, errb bytes.Buffer
	cmd.SetArgs(append(args, "--no-progress"))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("error %v is not an *ExitError", err)
		}
		code = ee.Code
	}
	return out.String(), errb.String(), code
}

func TestReport(t *testing.T) {
	tok := fakeGitHubToken()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deploy.env"), []byte("GITHUB_TOKEN="+tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clean := t.TempDir()
	if err := os.WriteFile(filepath.Join(clean, "main.go"), []byte("package main\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("findings are handed to the reporter, redacted, and the exit code stays", func(t *testing.T) {
		var got []Result
		opts := Options{Report: func(_ context.Context, r Result, stderr io.Writer) error {
			got = append(got, r)
			io.WriteString(stderr, "reported\n")
			return nil
		}}
		out, errOut, code := runWith(t, opts, dir, "--report")
		if code != ExitFindings {
			t.Errorf("exit code = %d, want %d (stderr %q)", code, ExitFindings, errOut)
		}
		if !strings.Contains(out, "github-pat") || !strings.Contains(errOut, "reported") {
			t.Errorf("stdout %q / stderr %q: want the table, then the reporter's line", out, errOut)
		}
		if len(got) != 1 {
			t.Fatalf("reporter called %d times, want 1", len(got))
		}
		var rules []string
		for _, f := range got[0].Findings {
			rules = append(rules, f.RuleID)
			if strings.Contains(f.Match, tok[4:]) || strings.Contains(f.Fingerprint, tok[4:]) {
				t.Errorf("finding %s hands the secret to the reporter", f.RuleID)
			}
		}
		if diff := cmp.Diff([]string{"github-pat"}, rules); diff != "" {
			t.Errorf("reported rules (-want +got):\n%s", diff)
		}
		if got[0].Target != dir || got[0].Summary.Stats.Files != 1 {
			t.Errorf("result target %q, files %d", got[0].Target, got[0].Summary.Stats.Files)
		}
	})

	t.Run("a clean scan is reported too and exits 0", func(t *testing.T) {
		calls := 0
		opts := Options{Report: func(context.Context, Result, io.Writer) error { calls++; return nil }}
		if _, errOut, code := runWith(t, opts, clean, "--report"); code != ExitClean || calls != 1 {
			t.Errorf("exit %d, %d reports (stderr %q), want 0 and 1", code, calls, errOut)
		}
	})

	t.Run("without --report nothing is sent", func(t *testing.T) {
		calls := 0
		opts := Options{Report: func(context.Context, Result, io.Writer) error { calls++; return nil }}
		if _, _, code := runWith(t, opts, dir); code != ExitFindings || calls != 0 {
			t.Errorf("exit %d, %d reports, want 1 and 0", code, calls)
		}
	})

	t.Run("a failed report exits 2", func(t *testing.T) {
		opts := Options{Report: func(context.Context, Result, io.Writer) error { return errors.New("server unreachable") }}
		_, errOut, code := runWith(t, opts, dir, "--report")
		if code != ExitIncomplete || !strings.Contains(errOut, "server unreachable") {
			t.Errorf("exit %d, stderr %q; want 2 naming the cause", code, errOut)
		}
	})

	t.Run("standalone command refuses --report before scanning", func(t *testing.T) {
		out, errOut, code := runCmd(t, "", dir, "--report")
		if code != ExitIncomplete || out != "" || !strings.Contains(errOut, "needs a logged-in profile") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 2, no report, a sentence about logging in", code, out, errOut)
		}
	})
}
