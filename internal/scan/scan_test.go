package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// wordDetector reports every occurrence of Word as a finding whose
// fingerprint is the word's line.
type wordDetector struct{ Word string }

func (wordDetector) Name() string { return "word" }

func (d wordDetector) Detect(ctx context.Context, f *File, emit func(Finding)) error {
	data := f.Data
	off := 0
	for {
		i := bytes.Index(data[off:], []byte(d.Word))
		if i < 0 {
			return nil
		}
		fd := f.NewFinding(off + i)
		fd.Kind, fd.RuleID, fd.Severity = KindSecret, "word", SeverityHigh
		fd.Fingerprint = Fingerprint(string(f.LineAt(fd.Line)))
		emit(fd)
		off += i + len(d.Word)
	}
}

// slowDetector blocks until its context ends.
type slowDetector struct{}

func (slowDetector) Name() string { return "slow" }
func (slowDetector) Detect(ctx context.Context, f *File, emit func(Finding)) error {
	<-ctx.Done()
	return ctx.Err()
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		fp := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fp, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func locations(res *Result) []string {
	var out []string
	for _, f := range res.Findings {
		out = append(out, f.Location())
	}
	return out
}

func skips(res *Result) map[string]SkipReason {
	out := map[string]SkipReason{}
	for _, s := range res.Stats.Skipped {
		out[s.Path] = s.Reason
	}
	return out
}

func mustScanner(t *testing.T, cfg Config) *Scanner {
	t.Helper()
	if cfg.Detectors == nil {
		cfg.Detectors = []Detector{wordDetector{"SECRET"}}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScanDirGitignore(t *testing.T) {
	dir := writeTree(t, map[string]string{
		".gitignore":         "build/\n*.log\n",
		"a.txt":              "x SECRET\n",
		"build/out.txt":      "SECRET\n",
		"debug.log":          "SECRET\n",
		"sub/.gitignore":     "local.txt\n",
		"sub/local.txt":      "SECRET\n",
		"sub/kept.txt":       "\n\n  SECRET\n",
		"other/local.txt":    "SECRET\n",
		".git/config":        "SECRET\n",
		"sub/deep/debug.log": "SECRET\n",
	})
	for _, tt := range []struct {
		name     string
		noIgnore bool
		want     []string
	}{
		{"respects .gitignore", false, []string{"a.txt:1:3", "other/local.txt:1:1", "sub/kept.txt:3:3"}},
		{"no-ignore", true, []string{"a.txt:1:3", "build/out.txt:1:1", "debug.log:1:1", "other/local.txt:1:1", "sub/deep/debug.log:1:1", "sub/kept.txt:3:3", "sub/local.txt:1:1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := mustScanner(t, Config{NoIgnore: tt.noIgnore}).ScanDir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, locations(res)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if res.Stats.Incomplete() {
				t.Errorf("ignored files made the scan incomplete: %v", res.Stats.Skipped)
			}
		})
	}
}

func TestScanDirSafety(t *testing.T) {
	outside := writeTree(t, map[string]string{"secret.txt": "SECRET outside\n"})
	dir := writeTree(t, map[string]string{
		"ok.txt":      "SECRET\n",
		"binary.bin":  "SECRET\x00\x01\x02",
		"big.txt":     strings.Repeat("a", 2048) + "SECRET",
		"latin1.txt":  "caf\xe9 SECRET\n",
		"loop/a/keep": "x",
	})
	for _, l := range []struct{ target, name string }{
		{filepath.Join(outside, "secret.txt"), "escape-file"},
		{outside, "escape-dir"},
		{"..", "parent"},
		{"..", "loop/a/back"},
		{"ok.txt", "inside-link"},
		{"missing", "dangling"},
	} {
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			t.Skipf("symlinks unsupported: %v", err)
		}
	}
	if err := os.Symlink("self2", filepath.Join(dir, "self1")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("self1", filepath.Join(dir, "self2")); err != nil {
		t.Fatal(err)
	}
	res, err := mustScanner(t, Config{MaxFileSize: 1024}).ScanDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"inside-link:1:1", "latin1.txt:1:6", "ok.txt:1:1"}, locations(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	want := map[string]SkipReason{
		"big.txt":     SkipTooLarge,
		"binary.bin":  SkipBinary,
		"escape-file": SkipSymlinkEscape,
		"escape-dir":  SkipSymlinkEscape,
		"parent":      SkipSymlinkEscape,
		"loop/a/back": SkipSymlinkDir,
		"dangling":    SkipSymlinkBroken,
		"self1":       SkipSymlinkBroken,
		"self2":       SkipSymlinkBroken,
	}
	if diff := cmp.Diff(want, skips(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	if res.Stats.NonUTF8 != 1 {
		t.Errorf("NonUTF8 = %d, want 1", res.Stats.NonUTF8)
	}
	if !res.Stats.Incomplete() {
		t.Error("a too-large file must make the scan incomplete")
	}
}

func TestFileBudget(t *testing.T) {
	s := mustScanner(t, Config{Detectors: []Detector{slowDetector{}}, FileBudget: 20 * time.Millisecond})
	start := time.Now()
	res, err := s.ScanFile(context.Background(), &File{Path: "x", Data: []byte("data")})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("budget not enforced")
	}
	if diff := cmp.Diff(map[string]SkipReason{"x": SkipTimeBudget}, skips(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
}

func TestInlineAllow(t *testing.T) {
	src := strings.Join([]string{
		"a SECRET // interlock:allow word test fixture, not a credential",
		"// interlock:allow word rotated on 2026-01-01",
		"b SECRET",
		"c SECRET // interlock:allow word",
		"d SECRET // interlock:allow other-rule because",
		"e SECRET",
	}, "\n")
	res, err := mustScanner(t, Config{}).ScanFile(context.Background(), &File{Path: "f.go", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"f.go:4:3", "f.go:5:3", "f.go:6:3"}, locations(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if got := res.Suppressed["inline"]; got != 2 {
		t.Errorf("inline suppressions = %d, want 2", got)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "no reason") {
		t.Errorf("notes = %q, want one about the missing reason", res.Notes)
	}
}

func TestAllowFile(t *testing.T) {
	src := "# interlock:allow-file word fixtures for the word detector\nSECRET\nSECRET\n"
	res, err := mustScanner(t, Config{}).ScanFile(context.Background(), &File{Path: "list.yaml", Data: []byte(src)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 0 || res.Suppressed["inline"] != 2 {
		t.Errorf("findings %v, suppressed %v; want none and 2", res.Findings, res.Suppressed)
	}
	src = "# interlock:allow-file other-rule not this one\nSECRET\n"
	res, _ = mustScanner(t, Config{}).ScanFile(context.Background(), &File{Path: "list.yaml", Data: []byte(src)})
	if len(res.Findings) != 1 {
		t.Errorf("findings %v, want 1", res.Findings)
	}
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(files[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tgzOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestArchives(t *testing.T) {
	inner := zipOf(t, map[string][]byte{"deep.txt": []byte("SECRET deep\n")})
	nested := inner
	for range 6 {
		nested = zipOf(t, map[string][]byte{"n.zip": nested})
	}
	bomb := zipOf(t, map[string][]byte{"zeros.txt": bytes.Repeat([]byte("0"), 8<<20)})
	for _, tt := range []struct {
		name      string
		file      *File
		want      []string
		wantSkips map[string]SkipReason
	}{
		{
			name: "zip with nested tgz",
			file: &File{Path: "a.zip", Data: zipOf(t, map[string][]byte{
				"x.txt":  []byte("SECRET\n"),
				"in.tgz": tgzOf(t, map[string][]byte{"etc/y.conf": []byte("\nSECRET\n")}),
			})},
			want:      []string{"a.zip!in.tgz!etc/y.conf:2:1", "a.zip!x.txt:1:1"},
			wantSkips: map[string]SkipReason{},
		},
		{
			name:      "too deep",
			file:      &File{Path: "deep.zip", Data: nested},
			wantSkips: map[string]SkipReason{"deep.zip!n.zip!n.zip!n.zip!n.zip": SkipArchiveLimit},
		},
		{
			name:      "zip bomb",
			file:      &File{Path: "bomb.zip", Data: bomb},
			wantSkips: map[string]SkipReason{"bomb.zip!zeros.txt": SkipArchiveLimit},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustScanner(t, Config{ExpandArchives: true, MaxFileSize: 4 << 20, Archives: ArchiveLimits{MaxDepth: 4, MaxRatio: 100}})
			res, err := s.ScanFile(context.Background(), tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, locations(res)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSkips, skips(res)); diff != "" {
				t.Errorf("skips (-want +got):\n%s", diff)
			}
		})
	}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ann Author", "GIT_AUTHOR_EMAIL=ann@example.org",
		"GIT_COMMITTER_NAME=Ann Author", "GIT_COMMITTER_EMAIL=ann@example.org", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestGitHistoryAddedThenDeleted(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("name = app\n"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "one")
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("name = app\nkey = SECRET\n"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "add key")
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("name = app2\nkey = SECRET\n"), 0o644)
	git(t, dir, "commit", "-qam", "rename app")
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("name = app2\n"), 0o644)
	git(t, dir, "commit", "-qam", "remove key")
	out, _ := exec.Command("git", "-C", dir, "rev-parse", "HEAD~2").Output()
	addCommit := strings.TrimSpace(string(out))

	res, err := mustScanner(t, Config{}).GitHistory(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("findings = %v, want exactly one", res.Findings)
	}
	f := res.Findings[0]
	if f.Commit != addCommit || f.Author != "Ann Author <ann@example.org>" || f.File != "app.conf" || f.Line != 2 || f.Date.IsZero() {
		t.Errorf("finding = %+v, want app.conf:2 in commit %s by Ann Author", f, addCommit)
	}
}

func TestGitStaged(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, "committed.txt"), []byte("SECRET\n"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-qm", "one")
	os.WriteFile(filepath.Join(dir, "staged.txt"), []byte("ok\nSECRET\n"), 0o644)
	git(t, dir, "add", "staged.txt")
	// The working tree differs from the index: the index is what counts.
	os.WriteFile(filepath.Join(dir, "staged.txt"), []byte("clean now\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "untracked.txt"), []byte("SECRET\n"), 0o644)
	res, err := mustScanner(t, Config{}).GitStaged(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"staged.txt:2:1"}, locations(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"short", "*****"},
		{"twelve-chars", "********"},
		{"ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_…89"},
		{"0123456789abc", "012…c"},
	} {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Redact(tt.in); len(tt.in) > 0 && strings.Contains(got, tt.in) {
			t.Errorf("Redact(%q) leaks the secret", tt.in)
		}
	}
}

func TestSeverityText(t *testing.T) {
	for s := SeverityInfo; s <= SeverityCritical; s++ {
		b, _ := s.MarshalText()
		var got Severity
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("round trip %v: got %v, %v", s, got, err)
		}
	}
	if _, err := ParseSeverity("severe"); err == nil {
		t.Error("ParseSeverity accepted an unknown name")
	}
}

// stuckDetector never looks at its context, like a third-party parser
// looping on crafted input.
type stuckDetector struct{ release chan struct{} }

func (stuckDetector) Name() string { return "stuck" }
func (d stuckDetector) Detect(ctx context.Context, f *File, emit func(Finding)) error {
	<-d.release
	emit(Finding{Kind: KindSecret, RuleID: "late", File: f.Path, Line: 1})
	return nil
}

// TestStuckDetectorIsAbandoned: a detector that ignores the file budget
// does not hold the scan: the file is reported as not fully scanned (the
// scan is incomplete) within the budget and a grace, and what the
// detector emits after that is dropped.
func TestStuckDetectorIsAbandoned(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := mustScanner(t, Config{Detectors: []Detector{stuckDetector{release}}, FileBudget: 50 * time.Millisecond})
	start := time.Now()
	res, err := s.ScanFile(context.Background(), &File{Path: "x", Data: []byte("data")})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the scan waited %s for a stuck detector", took)
	}
	if diff := cmp.Diff(map[string]SkipReason{"x": SkipTimeBudget}, skips(res)); diff != "" {
		t.Errorf("skips (-want +got):\n%s", diff)
	}
	if !res.Stats.Incomplete() {
		t.Error("an abandoned detector must make the scan incomplete")
	}
}
