package scancli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/scan/misconfig"
)

// TestHelmChartRenderedWithValues checks the whole path on a chart written
// for this test: values.yaml sets privileged, include/toYaml/default and a
// library chart's helper carry it into the manifest, the metrics pod is off
// by default, and a template whose required value is unset is skipped.
func TestHelmChartRenderedWithValues(t *testing.T) {
	d := &misconfig.Detector{Root: os.DirFS("testdata/helm"), RenderChart: renderHelmChart}
	var got []string
	for _, p := range []string{"web/Chart.yaml", "web/templates/deployment.yaml", "web/templates/metrics.yaml", "web/values.yaml"} {
		data, err := os.ReadFile("testdata/helm/" + p)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Detect(context.Background(), &scan.File{Path: p, Data: data}, func(f scan.Finding) {
			got = append(got, f.File+" "+f.RuleID)
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	want := []string{
		"web/templates/deployment.yaml k8s-allow-privilege-escalation",
		"web/templates/deployment.yaml k8s-privileged",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestHelmRenderUsesChartValues checks what was rendered: the image tag
// falls back to appVersion and the library chart's labels are included.
func TestHelmRenderUsesChartValues(t *testing.T) {
	out, err := renderHelmChart(context.Background(), os.DirFS("testdata/helm"), "web")
	if err != nil {
		t.Fatal(err)
	}
	dep := out["web/templates/deployment.yaml"].Output
	for _, want := range []string{"name: release-name-web", `image: "registry.example.com/web:1.2.3"`, `app.kubernetes.io/version: "1.2.3"`, "privileged: true"} {
		if !strings.Contains(dep, want) {
			t.Errorf("rendered deployment lacks %q:\n%s", want, dep)
		}
	}
	// required does not stop rendering with the defaults: the user sets
	// the value at install, and the manifest is checked all the same
	// (TestHelmAttackRequiredAndFail).
	if _, ok := out["web/templates/broken.yaml"]; !ok {
		t.Error("a template whose required value is missing was not rendered")
	}
}

// TestHelmRenderLimits checks the defences against a hostile chart: no
// environment variables, allocation caps, bounded recursion and output.
func TestHelmRenderLimits(t *testing.T) {
	t.Setenv("INTERLOCK_TEST_SECRET", "do-not-render")
	for _, tt := range []struct{ name, tmpl string }{
		{"env", `kind: ConfigMap
data: {a: "{{ env "INTERLOCK_TEST_SECRET" }}"}`},
		{"expandenv", `a: {{ expandenv "$INTERLOCK_TEST_SECRET" }}`},
		{"huge until", `{{ range until 1000000000 }}{{ end }}`},
		{"huge range", `{{ range 100000000000 }}{{ end }}`},
		{"huge repeat", `{{ repeat 1000000000 "a" }}`},
		{"recursive include", `{{ define "x" }}{{ include "x" . }}{{ end }}{{ include "x" . }}`},
		{"big output", `{{ range until 90000 }}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{{ end }}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"c/Chart.yaml":       {Data: []byte("name: c\n")},
				"c/templates/x.yaml": {Data: []byte(tt.tmpl)},
			}
			out, _ := renderHelmChart(context.Background(), fsys, "c")
			if v, ok := out["c/templates/x.yaml"]; ok {
				v := v.Output
				t.Errorf("rendered %d bytes, want the template refused: %.80q", len(v), v)
			}
		})
	}
}

// FuzzHelmRender feeds arbitrary template text through the renderer: it
// must neither panic nor run past its limits.
func FuzzHelmRender(f *testing.F) {
	f.Add(`{{ include "x" . }}{{ define "x" }}{{ include "x" . }}{{ end }}`)
	f.Add(`{{ tpl .Values.t . }}`)
	f.Add(`{{ range until 100000 }}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{{ end }}`)
	f.Fuzz(func(t *testing.T, tmpl string) {
		fsys := fstest.MapFS{
			"c/Chart.yaml":       {Data: []byte("name: c\n")},
			"c/values.yaml":      {Data: []byte("t: '{{ tpl .Values.t . }}'\n")},
			"c/templates/x.yaml": {Data: []byte(tmpl)},
			"c/templates/_h.tpl": {Data: []byte(`{{ define "h" }}kind: Pod{{ end }}`)},
		}
		out, _ := renderHelmChart(context.Background(), fsys, "c")
		for _, v := range out {
			if len(v.Output) > maxRenderedBytes {
				t.Fatalf("rendered %d bytes", len(v.Output))
			}
		}
	})
}

// BenchmarkHelmChart renders and checks the test chart.
func BenchmarkHelmChart(b *testing.B) {
	d := &misconfig.Detector{Root: os.DirFS("testdata/helm"), RenderChart: renderHelmChart}
	data, err := os.ReadFile("testdata/helm/web/Chart.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = d.Detect(context.Background(), &scan.File{Path: "web/Chart.yaml", Data: data}, func(scan.Finding) {})
	}
}

// BenchmarkHelmChartsTree scans a checkout of Helm charts for
// misconfigurations the way `interlock scan` does, charts rendered:
//
//	INTERLOCK_BENCH_CHARTS=/path/to/charts go test ./internal/scancli -run '^$' -bench HelmChartsTree -benchtime 3x
func BenchmarkHelmChartsTree(b *testing.B) {
	dir := os.Getenv("INTERLOCK_BENCH_CHARTS")
	if dir == "" {
		b.Skip("set INTERLOCK_BENCH_CHARTS to a charts checkout")
	}
	d := &misconfig.Detector{Root: os.DirFS(dir), RenderChart: renderHelmChart}
	s, err := scan.New(scan.Config{Detectors: []scan.Detector{d}})
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	var bytes int64
	for b.Loop() {
		res, err := s.ScanDir(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		bytes = res.Stats.Bytes
	}
	b.SetBytes(bytes)
	b.ReportMetric((cpuTime()-cpu0)/float64(b.N), "cpu-s/op")
}

// TestSARIFMisconfigurationsEndToEnd runs `interlock scan --format sarif`
// on a tree with a chart, a Terraform file and a Dockerfile: the log
// validates against the SARIF 2.1.0 schema, the chart's finding points at
// its template, and rule help carries the check's reference.
func TestSARIFMisconfigurationsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/helm")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte("resource \"aws_s3_bucket_public_access_block\" \"b\" {\n  bucket = \"data\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM ubuntu\nRUN curl -fsSL https://x.example/i.sh | sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCmd(t, "", dir, "--format", "sarif", "--kinds", "misconfiguration")
	if code != ExitFindings {
		t.Fatalf("exit %d, want %d: %s", code, ExitFindings, stderr)
	}
	validateLog(t, officialSARIFSchema(t), out)
	for _, want := range []string{"web/templates/deployment.yaml", "k8s-privileged", "aws-s3-block-public-acls", "AVD-AWS-0086", "dockerfile-curl-pipe-shell", "PSS baseline: Privileged Containers"} {
		if !strings.Contains(out, want) {
			t.Errorf("SARIF log lacks %q", want)
		}
	}
	// The chart's finding points at the template line that wrote the
	// field (the toYaml of the container's securityContext), not line 0.
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID    string `json:"ruleId"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string }    `json:"artifactLocation"`
						Region           struct{ StartLine int } `json:"region"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &log); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range log.Runs[0].Results {
		for _, l := range r.Locations {
			if r.RuleID == "k8s-privileged" && strings.HasSuffix(l.PhysicalLocation.ArtifactLocation.URI, "web/templates/deployment.yaml") {
				found = true
				if l.PhysicalLocation.Region.StartLine != 14 {
					t.Errorf("k8s-privileged in the chart at line %d, want 14", l.PhysicalLocation.Region.StartLine)
				}
			}
		}
	}
	if !found {
		t.Error("no k8s-privileged result in the chart's template")
	}
}

// BenchmarkChartsTreeCLI runs `interlock scan` with every kind over a
// charts checkout, as a user would (format json, report to a file):
//
//	INTERLOCK_BENCH_CHARTS=/path/to/charts go test ./internal/scancli -run '^$' -bench ChartsTreeCLI -benchtime 3x -cpuprofile cpu.out
func BenchmarkChartsTreeCLI(b *testing.B) {
	dir := os.Getenv("INTERLOCK_BENCH_CHARTS")
	if dir == "" {
		b.Skip("set INTERLOCK_BENCH_CHARTS to a charts checkout")
	}
	outFile := filepath.Join(b.TempDir(), "report.json")
	cpu0, idle0, ptime0 := cpuTime(), runtimeCPU("/cpu/classes/idle:cpu-seconds"), runtimeCPU("/cpu/classes/total:cpu-seconds")
	for b.Loop() {
		cmd := Command()
		cmd.SetArgs([]string{dir, "--no-progress", "--format", "json", "--output", outFile})
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		var ee *ExitError
		if err := cmd.ExecuteContext(context.Background()); err != nil && (!errors.As(err, &ee) || ee.Code != ExitFindings) {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0)/float64(b.N), "cpu-s/op")
	// The share of the Ps' time with nothing to run: near 0 means the
	// walk, the charts and the detectors keep every core busy, and a wall
	// time above CPU/GOMAXPROCS comes from other load on the machine.
	b.ReportMetric(100*(runtimeCPU("/cpu/classes/idle:cpu-seconds")-idle0)/(runtimeCPU("/cpu/classes/total:cpu-seconds")-ptime0), "idle-%")
	reportRSS(b)
}

// runtimeCPU reads one of the runtime's /cpu/classes metrics.
func runtimeCPU(name string) float64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Float64()
}
