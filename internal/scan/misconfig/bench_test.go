package misconfig

import (
	"context"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// BenchmarkDetectFixtures runs every check over every fixture in
// testdata/checks (Terraform, Kubernetes, Dockerfile, sshd, nginx).
func BenchmarkDetectFixtures(b *testing.B) {
	t := &testing.T{}
	fixtures := loadFixtures(t)
	d := New()
	var size int64
	for _, fx := range fixtures {
		size += int64(len(fx.src))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, fx := range fixtures {
			_ = d.Detect(context.Background(), &scan.File{Path: fx.file, Data: []byte(fx.src)}, func(scan.Finding) {})
		}
	}
}
