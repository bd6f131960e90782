package misconfig

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

// fakeRender stands in for the Sprig renderer internal/scancli plugs in
// (tested there): it returns fixed manifests and records what it was asked.
type fakeRender struct {
	dirs []string
	out  map[string]RenderedTemplate
}

func (f *fakeRender) render(_ context.Context, _ fs.FS, dir string) (map[string]RenderedTemplate, error) {
	f.dirs = append(f.dirs, dir)
	return f.out, nil
}

// TestHelmRenderedManifestsChecked checks that a Chart.yaml makes the
// detector render its directory and check what comes out, reported at the
// template's path and the template line the renderer says wrote the
// flagged field (output line 6 came from template line 9), while the raw
// template text is not parsed.
func TestHelmRenderedManifestsChecked(t *testing.T) {
	fr := &fakeRender{out: map[string]RenderedTemplate{"charts/web/templates/pod.yaml": {
		Output: "kind: Pod\nspec:\n  containers:\n    - name: a\n      image: a:1\n      securityContext: {privileged: true, allowPrivilegeEscalation: false}\n",
		Lines:  []int{1, 2, 3, 4, 5, 9},
	}}}
	d := &Detector{Root: fstest.MapFS{}, RenderChart: fr.render}
	var got []string
	for _, f := range []*scan.File{
		{Path: "charts/web/Chart.yaml", Data: []byte("name: web\n")},
		{Path: "charts/web/templates/pod.yaml", Data: []byte("kind: Pod\nspec:\n  hostPID: {{ .Values.hostPID }}\n  containers: [{name: b, securityContext: {privileged: true}}]\n")},
	} {
		if err := d.Detect(context.Background(), f, func(fd scan.Finding) {
			if !strings.Contains(fd.Message, "rendered with the chart's default values") {
				t.Errorf("rendered finding without a note: %+v", fd)
			}
			if fd.RuleID == k8sPrivileged {
				got = append(got, fmt.Sprintf("%s:%d %s", fd.File, fd.Line, fd.RuleID))
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"charts/web/templates/pod.yaml:9 k8s-privileged"}, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"charts/web"}, fr.dirs); diff != "" {
		t.Errorf("rendered directories (-want +got):\n%s", diff)
	}
}

// TestHelmWithoutChartsFS checks that without the scanned directory (an
// archive, git history) templates are neither rendered nor parsed raw.
func TestHelmWithoutChartsFS(t *testing.T) {
	src := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  hostPID: true\n  containers:\n    - name: m\n      image: exporter\n"
	if got := detect(t, "chart/templates/metrics.yaml", src); len(got) != 0 {
		t.Errorf("a raw template was checked as a manifest: %v", got)
	}
	if got := detect(t, "chart/Chart.yaml", "apiVersion: v2\nname: x\n"); len(got) != 0 {
		t.Errorf("Chart.yaml without a renderer gave findings: %v", got)
	}
}
