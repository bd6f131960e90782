package secrets

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// BenchmarkGOROOTSrc measures secret-scanning throughput over the Go
// standard library source (bytes scanned per second are reported as MB/s).
//
//	go test ./internal/scan/secrets -run '^$' -bench GOROOTSrc -benchtime 3x
func BenchmarkGOROOTSrc(b *testing.B) {
	dir := filepath.Join(runtime.GOROOT(), "src")
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("no GOROOT source: %v", err)
	}
	rs := bundledSet(b)
	s, err := scan.New(scan.Config{Detectors: []scan.Detector{NewDetector(rs, Options{})}, NoIgnore: true})
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for b.Loop() {
		res, err := s.ScanDir(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		bytes = res.Stats.Bytes
	}
	b.SetBytes(bytes)
}
