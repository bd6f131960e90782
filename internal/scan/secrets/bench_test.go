package secrets

import (
	"bytes"
	"context"
	"fmt"
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

// denseData is 64 KiB of Go-like code in which every tenth line assigns a
// credential and every line mentions a keyword.
func denseData() []byte {
	var buf bytes.Buffer
	for l := 0; buf.Len() < 64<<10; l++ {
		if l%10 == 0 {
			fmt.Fprintf(&buf, "db_password: \"Xk29aaLq0Zz%04d\"", l)
		} else {
			fmt.Fprintf(&buf, "func handler%d(w http.ResponseWriter, r *http.Request) { token := r.Header.Get(\"X-Token\"); _ = token }", l)
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// BenchmarkDetectDense measures one detector goroutine on secret-dense
// input.
func BenchmarkDetectDense(b *testing.B) {
	d := NewDetector(bundledSet(b), Options{})
	data := denseData()
	b.SetBytes(int64(len(data)))
	n := 0
	for b.Loop() {
		d.Detect(context.Background(), &scan.File{Path: "x.go", Data: data}, func(scan.Finding) { n++ })
	}
}
