package scancli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

// runCmd runs `scan args…` in-process and returns stdout, stderr and the
// exit code the lead's cli.Main derives from the error.
func runCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := Command()
	var out, errb bytes.Buffer
	cmd.SetArgs(append(args, "--no-progress"))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetIn(strings.NewReader(stdin))
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

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestGoldenFormats(t *testing.T) {
	for _, format := range []string{"table", "json", "sarif"} {
		t.Run(format, func(t *testing.T) {
			out, _, code := runCmd(t, "", "testdata/golden/tree", "--format", format, "--workers", "1")
			if code != ExitFindings {
				t.Errorf("exit code = %d, want %d", code, ExitFindings)
			}
			if format == "sarif" {
				out = stableSARIF(out)
			}
			golden(t, "tree."+format, out)
			if strings.Contains(out, "Zq8-nB4w-Lx2-Tt9") || strings.Contains(out, "Vb7-qLs2") {
				t.Error("report contains a secret in plaintext")
			}
		})
	}
}

// stableSARIF removes from a SARIF log what depends on where the source
// tree lies: the source root's file:// URI, and the repository path prefix,
// which is there only when the tree is in a git work tree.
func stableSARIF(s string) string {
	s = regexp.MustCompile(`"uri": "file://[^"]*"`).ReplaceAllString(s, `"uri": "file:///SRCROOT/"`)
	return strings.ReplaceAll(s, `"uri": "internal/scancli/testdata/golden/tree/`, `"uri": "`)
}

func TestSARIFShape(t *testing.T) {
	out, _, _ := runCmd(t, "", "testdata/golden/tree", "--format", "sarif")
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string } `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				RuleIndex int    `json:"ruleIndex"`
				Locations []struct {
					PhysicalLocation struct {
						Region struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Fatalf("unexpected SARIF: %s", out)
	}
	rules := log.Runs[0].Tool.Driver.Rules
	for _, r := range log.Runs[0].Results {
		if rules[r.RuleIndex].ID != r.RuleID || r.Locations[0].PhysicalLocation.Region.StartLine < 1 {
			t.Errorf("bad result %+v", r)
		}
	}
}

func TestExitCodes(t *testing.T) {
	clean := t.TempDir()
	os.WriteFile(filepath.Join(clean, "main.go"), []byte("package main\n"), 0o644)
	big := t.TempDir()
	os.WriteFile(filepath.Join(big, "huge.txt"), bytes.Repeat([]byte("x\n"), 1<<20), 0o644)
	for _, tt := range []struct {
		name  string
		stdin string
		args  []string
		want  int
	}{
		{"clean", "", []string{clean}, ExitClean},
		{"findings", "", []string{"testdata/golden/tree"}, ExitFindings},
		{"below fail-on", "", []string{"testdata/golden/tree", "--fail-on", "critical"}, ExitClean},
		{"incomplete", "", []string{big, "--max-file-size", "1"}, ExitIncomplete},
		{"missing target", "", []string{filepath.Join(clean, "nope")}, ExitIncomplete},
		{"bad flag value", "", []string{clean, "--format", "xml"}, ExitIncomplete},
		{"stdin", "PermitRootLogin yes\nmysql://root:root@db/app\n", []string{"-"}, ExitFindings},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, got := runCmd(t, tt.stdin, tt.args...); got != tt.want {
				t.Errorf("exit code = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBaselineAndIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".env"), []byte("GF_SECURITY_ADMIN_PASSWORD=admin\nAPI_TOKEN=Pq3-Zz8w-Lm5x-Yy1v-Nn2k\n"), 0o644)
	base := filepath.Join(t.TempDir(), "base.json")
	if _, _, code := runCmd(t, "", dir, "--format", "json", "--output", base); code != ExitFindings {
		t.Fatalf("first scan exit = %d", code)
	}
	// Same findings: the baseline suppresses them all.
	out, _, code := runCmd(t, "", dir, "--baseline", base)
	if code != ExitClean || !strings.Contains(out, "Suppressed: 2 (2 baseline)") {
		t.Errorf("with baseline: code %d, output:\n%s", code, out)
	}
	// A new secret on the same line is new.
	os.WriteFile(filepath.Join(dir, ".env"), []byte("GF_SECURITY_ADMIN_PASSWORD=admin\nAPI_TOKEN=Different-Secret-77aa-91xx\n"), 0o644)
	out, _, code = runCmd(t, "", dir, "--baseline", base, "--format", "json")
	var doc struct {
		Findings []struct {
			RuleID      string `json:"rule_id"`
			Fingerprint string `json:"fingerprint"`
		} `json:"findings"`
		Stale []string `json:"stale"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if code != ExitFindings || len(doc.Findings) != 1 || len(doc.Stale) != 1 {
		t.Fatalf("changed secret: code %d, findings %v, stale %v", code, doc.Findings, doc.Stale)
	}
	// Ignore the new secret by its fingerprint.
	ign := doc.Findings[0].Fingerprint + " " + doc.Findings[0].RuleID + " # test token, revoked\n" +
		strings.Repeat("0", 32) + " # an entry that matches nothing\n"
	os.WriteFile(filepath.Join(dir, ".interlockignore"), []byte(ign), 0o644)
	out, _, code = runCmd(t, "", dir, "--baseline", base)
	if code != ExitClean || !strings.Contains(out, "1 ignore-file") || !strings.Contains(out, ".interlockignore:2") {
		t.Errorf("with ignore file: code %d, output:\n%s", code, out)
	}
}

func TestExplain(t *testing.T) {
	_, stderr, _ := runCmd(t, "password = os.Getenv(\"X\")\napi_key: ${API_KEY}\n", "-", "--explain", "--kinds", "secret")
	for _, want := range []string{"value is a function call", "placeholder"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("--explain output lacks %q:\n%s", want, stderr)
		}
	}
}

func TestArchiveTarget(t *testing.T) {
	dir := t.TempDir()
	zp := filepath.Join(dir, "release.zip")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("etc/redis.conf")
	w.Write([]byte("requirepass foobared\n"))
	w, _ = zw.Create("big/zeros.txt")
	w.Write(bytes.Repeat([]byte{'0'}, 30<<20))
	zw.Close()
	os.WriteFile(zp, buf.Bytes(), 0o644)
	out, _, code := runCmd(t, "", zp, "--format", "json")
	if code != ExitIncomplete {
		t.Errorf("exit code = %d, want %d (the zip bomb member was skipped)", code, ExitIncomplete)
	}
	for _, want := range []string{`"file": "release.zip!etc/redis.conf"`, `"path": "release.zip!big/zeros.txt"`, `"incomplete": true`} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %s:\n%s", want, out)
		}
	}
}
