package misconfig

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

// TestHelmChartRenderedWithValues checks that a chart is rendered with its
// values.yaml (through include, toYaml, default and a library chart's
// helpers) and that the rendered manifests, not the template text, are
// checked: privileged comes from values.yaml; the metrics pod is off by
// default; a template that fails to render is skipped.
func TestHelmChartRenderedWithValues(t *testing.T) {
	d := &Detector{Charts: os.DirFS("testdata/helm")}
	var got []string
	for _, p := range []string{"web/Chart.yaml", "web/templates/deployment.yaml", "web/templates/metrics.yaml", "web/values.yaml"} {
		data, err := os.ReadFile("testdata/helm/" + p)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Detect(context.Background(), &scan.File{Path: p, Data: data}, func(f scan.Finding) {
			if !strings.Contains(f.Message, "rendered with the chart's default values") {
				t.Errorf("finding does not say it comes from a rendering: %q", f.Message)
			}
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
	out, err := renderChart(context.Background(), os.DirFS("testdata/helm"), "web")
	if err != nil {
		t.Fatal(err)
	}
	dep := out["web/templates/deployment.yaml"]
	for _, want := range []string{"name: release-name-web", `image: "registry.example.com/web:1.2.3"`, `app.kubernetes.io/version: "1.2.3"`, "privileged: true"} {
		if !strings.Contains(dep, want) {
			t.Errorf("rendered deployment lacks %q:\n%s", want, dep)
		}
	}
	if _, ok := out["web/templates/broken.yaml"]; ok {
		t.Error("a template whose required value is missing was rendered")
	}
}

// TestHelmWithoutChartsFS checks that without the scanned directory (an
// archive, git history) templates are neither rendered nor parsed raw.
func TestHelmWithoutChartsFS(t *testing.T) {
	data, err := os.ReadFile("testdata/helm/web/templates/metrics.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("{{- if .Values.metrics.enabled }}", "", "{{- end }}", "").Replace(string(data)) + "# {{ raw }}\n"
	if got := detect(t, "chart/templates/metrics.yaml", src); len(got) != 0 {
		t.Errorf("a raw template was checked as a manifest: %v", got)
	}
	if got := detect(t, "chart/Chart.yaml", "apiVersion: v2\nname: x\n"); len(got) != 0 {
		t.Errorf("Chart.yaml without a chart FS gave findings: %v", got)
	}
}

// FuzzHelmRender feeds arbitrary template text through the renderer: it
// must neither panic nor run past its limits.
func FuzzHelmRender(f *testing.F) {
	f.Add(`{{ include "x" . }}{{ define "x" }}{{ include "x" . }}{{ end }}`)
	f.Add(`{{ tpl .Values.t . }}`)
	f.Add(`{{ range until 100000 }}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa{{ end }}`)
	f.Fuzz(func(t *testing.T, tmpl string) {
		fsys := fstestMap(map[string]string{
			"c/Chart.yaml":       "name: c\n",
			"c/values.yaml":      "t: '{{ tpl .Values.t . }}'\n",
			"c/templates/x.yaml": tmpl,
			"c/templates/_h.tpl": `{{ define "h" }}kind: Pod{{ end }}`,
		})
		out, _ := renderChart(context.Background(), fsys, "c")
		for _, v := range out {
			if len(v) > maxRenderedBytes {
				t.Fatalf("rendered %d bytes", len(v))
			}
		}
	})
}

func fstestMap(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}
