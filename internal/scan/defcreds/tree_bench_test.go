package defcreds

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// BenchmarkTree runs the detector over every file under
// $INTERLOCK_BENCH_TREE (skipped when unset): the CPU it costs on a real
// tree, to compare with the secret pass on the same tree.
func BenchmarkTree(b *testing.B) {
	root := os.Getenv("INTERLOCK_BENCH_TREE")
	if root == "" {
		b.Skip("set INTERLOCK_BENCH_TREE to a directory to measure the detector on it")
	}
	var files []*scan.File
	total := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err == nil {
			rel, _ := filepath.Rel(root, p)
			files = append(files, &scan.File{Path: rel, Data: data})
			total += len(data)
		}
		return nil
	})
	l, err := Bundled()
	if err != nil {
		b.Fatal(err)
	}
	d := New(l)
	b.SetBytes(int64(total))
	b.ResetTimer()
	for b.Loop() {
		for _, f := range files {
			d.Detect(context.Background(), f, func(scan.Finding) {})
		}
	}
}
