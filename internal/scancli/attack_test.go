package scancli

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/interlock-dev/interlock/internal/scan"
)

// These tests attack `interlock scan` the way someone hiding a secret from
// it, or a user relying on it, would: each case is a file that holds a
// credential in a shape real tools write, scanned end to end.

// utf16File encodes s as UTF-16 with a byte-order mark, as Windows
// PowerShell 5 writes every file redirected with > or Out-File.
func utf16File(s string, bigEndian, bom bool) []byte {
	u := utf16.Encode([]rune(s))
	var out []byte
	var order binary.AppendByteOrder = binary.LittleEndian
	if bigEndian {
		order = binary.BigEndian
	}
	if bom {
		out = order.AppendUint16(out, 0xFEFF)
	}
	for _, c := range u {
		out = order.AppendUint16(out, c)
	}
	return out
}

// attackReport is the part of the JSON report these tests read.
type attackReport struct {
	Findings []scan.Finding `json:"findings"`
	Skipped  []scan.Skip    `json:"skipped"`
}

// scanFiles writes files into a fresh directory, scans it, and returns the
// report.
func scanFiles(t *testing.T, files map[string][]byte, args ...string) attackReport {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code := runCmd(t, "", append([]string{dir, "--format", "json", "--fail-on", "critical", "--no-ignore"}, args...)...)
	if code == ExitIncomplete && !strings.Contains(out, `"incomplete"`) {
		t.Fatalf("scan failed: %s", stderr)
	}
	var res attackReport
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return res
}

// TestAttackTextEncodings: a credential saved as UTF-16 (PowerShell's
// default for >) or with a UTF-8 byte-order mark (Notepad's) is found at
// its line, and the UTF-16 file is not waved through as "binary".
func TestAttackTextEncodings(t *testing.T) {
	tok := fakeGitHubToken()
	env := "# deploy settings\r\nGITHUB_TOKEN=" + tok + "\r\n"
	files := map[string][]byte{
		"utf16le.ps1":      utf16File(env, false, true),
		"utf16be.env":      utf16File(env, true, true),
		"utf16le-nobom.rc": utf16File(env, false, false),
		"bom.env":          []byte("\uFEFFdb_password = \"Xk9mQ2vLp8nR4tWz\"\n"),
	}
	res := scanFiles(t, files)
	got := map[string]scan.Finding{}
	for _, f := range res.Findings {
		got[f.File] = f
	}
	for name, wantLine := range map[string]int{"utf16le.ps1": 2, "utf16be.env": 2, "utf16le-nobom.rc": 2, "bom.env": 1} {
		f, ok := got[name]
		if !ok {
			t.Errorf("%s: secret not found (skipped: %v)", name, res.Skipped)
			continue
		}
		if f.Line != wantLine {
			t.Errorf("%s: finding at line %d, want %d", name, f.Line, wantLine)
		}
		if strings.Contains(f.Match, tok[6:30]) {
			t.Errorf("%s: match %q reveals the secret", name, f.Match)
		}
	}
	for _, s := range res.Skipped {
		if strings.HasPrefix(s.Path, "utf16") {
			t.Errorf("%s skipped as %s: a UTF-16 text file must be read", s.Path, s.Reason)
		}
	}
}
