package misconfig

import (
	"context"
	"os"
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

// BenchmarkHelmChart renders and checks the test chart.
func BenchmarkHelmChart(b *testing.B) {
	d := &Detector{Charts: os.DirFS("testdata/helm")}
	data, err := os.ReadFile("testdata/helm/web/Chart.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = d.Detect(context.Background(), &scan.File{Path: "web/Chart.yaml", Data: data}, func(scan.Finding) {})
	}
}
