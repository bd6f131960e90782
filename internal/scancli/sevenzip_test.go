package scancli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// markerDetector reports each line holding "SECRET", so archive tests need
// no credential-shaped bytes in their fixtures.
type markerDetector struct{}

func (markerDetector) Name() string { return "marker" }

func (markerDetector) Detect(_ context.Context, f *scan.File, emit func(scan.Finding)) error {
	if i := bytes.Index(f.Data, []byte("SECRET")); i >= 0 {
		fd := f.NewFinding(i)
		fd.Kind, fd.RuleID, fd.Severity, fd.Fingerprint = scan.KindSecret, "marker", scan.SeverityHigh, "m"
		emit(fd)
	}
	return nil
}

func sevenZipScanner(t testing.TB, lim scan.ArchiveLimits) *scan.Scanner {
	t.Helper()
	s, err := scan.New(scan.Config{Detectors: []scan.Detector{markerDetector{}}, ExpandArchives: true, Archives: lim, SevenZip: openSevenZip})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSevenZip: members of a 7z archive are scanned; a 7z bomb stops at
// the ratio limit (an incomplete scan); a .7z that is not one is scanned
// as raw bytes with a note.
func TestSevenZip(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/archives/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("members", func(t *testing.T) {
		res, err := sevenZipScanner(t, scan.ArchiveLimits{}).ScanFile(context.Background(), &scan.File{Path: "keys.7z", Data: read("keys.7z")})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Findings) != 1 || res.Findings[0].Location() != "keys.7z!etc/app.env:2:1" {
			t.Errorf("findings = %v", res.Findings)
		}
		if res.Stats.Incomplete() || res.Stats.Files != 2 {
			t.Errorf("stats = %+v", res.Stats)
		}
	})
	t.Run("bomb", func(t *testing.T) {
		res, _ := sevenZipScanner(t, scan.ArchiveLimits{MaxRatio: 50}).ScanFile(context.Background(), &scan.File{Path: "bomb.7z", Data: read("bomb.7z")})
		if !res.Stats.Incomplete() || res.Stats.Skipped[0].Reason != scan.SkipArchiveLimit {
			t.Errorf("skipped = %v, want the archive limit", res.Stats.Skipped)
		}
	})
	t.Run("not a 7z", func(t *testing.T) {
		res, _ := sevenZipScanner(t, scan.ArchiveLimits{}).ScanFile(context.Background(), &scan.File{Path: "notes.7z", Data: []byte("plain\nSECRET\n")})
		if len(res.Findings) != 1 || res.Stats.Incomplete() || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "raw bytes") {
			t.Errorf("findings %v, skipped %v, notes %q", res.Findings, res.Stats.Skipped, res.Notes)
		}
	})
	t.Run("command", func(t *testing.T) {
		// Without the opener a .7z is a binary file; the command wires it.
		dir := t.TempDir()
		os.WriteFile(dir+"/keys.7z", read("keys.7z"), 0o600)
		out, _, code := runCmd(t, "", dir, "--format", "json")
		if code != ExitClean || !strings.Contains(out, `"files": 2`) {
			t.Errorf("exit %d, want the two members scanned:\n%s", code, out)
		}
	})
}

// FuzzSevenZip feeds forged 7z archives to the opener through the scanner:
// it must never panic or exceed its limits.
func FuzzSevenZip(f *testing.F) {
	for _, name := range []string{"keys.7z", "bomb.7z"} {
		b, err := os.ReadFile("testdata/archives/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	s := sevenZipScanner(f, scan.ArchiveLimits{MaxTotalBytes: 8 << 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := s.ScanFile(context.Background(), &scan.File{Path: "f.7z", Data: data}); err != nil {
			t.Fatal(err)
		}
	})
}
