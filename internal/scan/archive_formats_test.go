package scan

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func tarOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func gzOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func xzOf(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstOf(t *testing.T, data []byte) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(data, nil)
}

// TestArchiveFormats: every archive format people ship is opened and its
// members scanned; before, .tar.xz, .tar.zst, .7z and plain .gz/.xz/.zst
// were skipped as binary and a tree of keys passed clean.
func TestArchiveFormats(t *testing.T) {
	keys := map[string][]byte{"etc/app.env": []byte("x = 1\nSECRET in archive\n"), "readme.txt": []byte("hello\n")}
	for _, tt := range []struct {
		name string
		data []byte
		want []string
	}{
		{"keys.tar", tarOf(t, keys), []string{"keys.tar!etc/app.env:2:1"}},
		{"keys.tar.gz", gzOf(t, tarOf(t, keys)), []string{"keys.tar.gz!etc/app.env:2:1"}},
		{"keys.tgz", gzOf(t, tarOf(t, keys)), []string{"keys.tgz!etc/app.env:2:1"}},
		{"keys.tar.xz", xzOf(t, tarOf(t, keys)), []string{"keys.tar.xz!etc/app.env:2:1"}},
		{"keys.txz", xzOf(t, tarOf(t, keys)), []string{"keys.txz!etc/app.env:2:1"}},
		{"keys.tar.zst", zstOf(t, tarOf(t, keys)), []string{"keys.tar.zst!etc/app.env:2:1"}},
		{"keys.jar", zipOf(t, keys), []string{"keys.jar!etc/app.env:2:1"}},
		{"app.env.gz", gzOf(t, keys["etc/app.env"]), []string{"app.env.gz!app.env:2:1"}},
		{"app.env.xz", xzOf(t, keys["etc/app.env"]), []string{"app.env.xz!app.env:2:1"}},
		{"app.env.zst", zstOf(t, keys["etc/app.env"]), []string{"app.env.zst!app.env:2:1"}},
		// A compressed tar that is not named .tar.*: the member is an
		// archive again and is opened in turn.
		{"dump.xz", xzOf(t, zipOf(t, keys)), nil},
		{"bundle.tar.zst", zstOf(t, tarOf(t, map[string][]byte{"inner/keys.tar.xz": xzOf(t, tarOf(t, keys))})),
			[]string{"bundle.tar.zst!inner/keys.tar.xz!etc/app.env:2:1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustScanner(t, Config{ExpandArchives: true})
			res, err := s.ScanFile(context.Background(), &File{Path: tt.name, Data: tt.data})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, locations(res)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if res.Stats.Incomplete() {
				t.Errorf("incomplete: %v", res.Stats.Skipped)
			}
		})
	}
}

// TestArchiveBombs: each stream format stops at the ratio and total-size
// limits and says so (an incomplete scan), instead of inflating a bomb.
func TestArchiveBombs(t *testing.T) {
	zeros := bytes.Repeat([]byte{0}, 16<<20)
	tarZeros := tarOf(t, map[string][]byte{"zeros.txt": bytes.Repeat([]byte("0"), 16<<20)})
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"bomb.gz", gzOf(t, zeros)},
		{"bomb.xz", xzOf(t, zeros)},
		{"bomb.zst", zstOf(t, zeros)},
		{"bomb.tar.gz", gzOf(t, tarZeros)},
		{"bomb.tar.xz", xzOf(t, tarZeros)},
		{"bomb.tar.zst", zstOf(t, tarZeros)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustScanner(t, Config{ExpandArchives: true, MaxFileSize: 32 << 20, Archives: ArchiveLimits{MaxRatio: 20}})
			res, err := s.ScanFile(context.Background(), &File{Path: tt.name, Data: tt.data})
			if err != nil {
				t.Fatal(err)
			}
			if got := skips(res); len(got) == 0 || !containsReason(got, SkipArchiveLimit) {
				t.Errorf("skips = %v, want an archive limit", got)
			}
			if res.Stats.Bytes > int64(len(tt.data))*20+streamSlack {
				t.Errorf("scanned %d bytes from a %d-byte bomb", res.Stats.Bytes, len(tt.data))
			}
		})
	}
	t.Run("total bytes", func(t *testing.T) {
		data := tarOf(t, map[string][]byte{"a.txt": bytes.Repeat([]byte("a\n"), 1<<20), "b.txt": bytes.Repeat([]byte("b\n"), 1<<20)})
		s := mustScanner(t, Config{ExpandArchives: true, Archives: ArchiveLimits{MaxTotalBytes: 3 << 20}})
		res, _ := s.ScanFile(context.Background(), &File{Path: "big.tar.zst", Data: zstOf(t, data)})
		if !containsReason(skips(res), SkipArchiveLimit) {
			t.Errorf("skips = %v, want the total-size limit", skips(res))
		}
	})
	t.Run("member count", func(t *testing.T) {
		files := map[string][]byte{}
		for i := range 30 {
			files[strings.Repeat("f", i+1)] = []byte("x\n")
		}
		s := mustScanner(t, Config{ExpandArchives: true, Archives: ArchiveLimits{MaxEntries: 10}})
		res, _ := s.ScanFile(context.Background(), &File{Path: "many.tar.xz", Data: xzOf(t, tarOf(t, files))})
		if !containsReason(skips(res), SkipArchiveLimit) {
			t.Errorf("skips = %v, want the member-count limit", skips(res))
		}
	})
}

func containsReason(m map[string]SkipReason, r SkipReason) bool {
	for _, v := range m {
		if v == r {
			return true
		}
	}
	return false
}

// TestUnreadableArchiveScannedRaw: a file named like an archive that is not
// one (or is damaged) is scanned as raw bytes and noted; it does not make
// the scan incomplete, since nothing in it could be read another way.
func TestUnreadableArchiveScannedRaw(t *testing.T) {
	for _, name := range []string{"notes.tar.gz", "notes.xz", "notes.zst", "notes.zip"} {
		t.Run(name, func(t *testing.T) {
			s := mustScanner(t, Config{ExpandArchives: true})
			res, err := s.ScanFile(context.Background(), &File{Path: name, Data: []byte("not an archive\nSECRET here\n")})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{name + ":2:1"}, locations(res)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if res.Stats.Incomplete() {
				t.Errorf("incomplete: %v", res.Stats.Skipped)
			}
			if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "scanned as raw bytes") {
				t.Errorf("notes = %q", res.Notes)
			}
		})
	}
}

// TestArchiveReaderPanicContained: a parser that panics on a forged
// archive yields an error, which scans the file as raw bytes.
func TestArchiveReaderPanicContained(t *testing.T) {
	err := safely(func() error {
		var s []int
		_ = make([]int, len(s)-1) // makeslice: len out of range, as sevenzip v1.6.1 did
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "archive reader failed") {
		t.Errorf("err = %v", err)
	}
}

// TestTarMemberLargerThanTheArchive: a header that declares more bytes
// than the archive holds (a truncated tar, as in Go's own testdata) makes
// the archive damaged, scanned as raw bytes and noted — not incomplete;
// a member that really is over the size limit still is.
func TestTarMemberLargerThanTheArchive(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "huge.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 16 << 30}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("SECRET in a truncated member\n"))
	truncated := buf.Bytes() // no more data, no trailer
	s := mustScanner(t, Config{ExpandArchives: true, MaxFileSize: 1 << 20})
	res, err := s.ScanFile(context.Background(), &File{Path: "cut.tar", Data: truncated})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Incomplete() {
		t.Errorf("a truncated tar made the scan incomplete: %v", res.Stats.Skipped)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "raw bytes") {
		t.Errorf("notes %q: want one saying the archive was scanned as raw bytes", res.Notes)
	}

	big := tarOf(t, map[string][]byte{"big.txt": bytes.Repeat([]byte("a\n"), 1<<20)})
	res, err = s.ScanFile(context.Background(), &File{Path: "big.tar", Data: big})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stats.Incomplete() {
		t.Errorf("a 2 MiB member over a 1 MiB limit did not make the scan incomplete")
	}
}
