package scan

import (
	"context"
	"testing"
)

// FuzzArchive feeds hostile bytes to every archive reader: a scan must
// never panic, hang or exceed its limits on an archive someone committed.
func FuzzArchive(f *testing.F) {
	keys := map[string][]byte{"etc/app.env": []byte("SECRET\n")}
	t := &testing.T{}
	for _, seed := range []struct {
		kind byte
		data []byte
	}{
		{0, zipOf(t, keys)}, {1, tarOf(t, keys)}, {2, tgzOf(t, keys)}, {3, xzOf(t, tarOf(t, keys))},
		{4, zstOf(t, tarOf(t, keys))}, {6, gzOf(t, keys["etc/app.env"])},
	} {
		f.Add(seed.kind, seed.data)
	}
	names := []string{"a.zip", "a.tar", "a.tar.gz", "a.tar.xz", "a.tar.zst", "a.gz", "a.xz", "a.zst"}
	s, err := New(Config{ExpandArchives: true, Detectors: []Detector{wordDetector{"SECRET"}}, Archives: ArchiveLimits{MaxTotalBytes: 8 << 20}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		name := names[int(kind)%len(names)]
		if _, err := s.ScanFile(context.Background(), &File{Path: name, Data: data}); err != nil {
			t.Fatal(err)
		}
	})
}
