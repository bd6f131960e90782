package scancli

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/scan/misconfig"
)

// detectFS is detectTree over an in-memory tree.
func detectFS(t *testing.T, fsys fs.FS, rules ...string) []string {
	t.Helper()
	d := &misconfig.Detector{Root: fsys, RenderChart: renderHelmChart}
	var got []string
	err := fs.WalkDir(fsys, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return d.Detect(context.Background(), &scan.File{Path: p, Data: data}, func(f scan.Finding) {
			if slices.Contains(rules, f.RuleID) {
				got = append(got, fmt.Sprintf("%s:%d %s", f.File, f.Line, f.RuleID))
			}
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

const privilegedPod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      image: a:1\n      securityContext:\n        privileged: true\n"

// TestHelmAttackElseAfterTab: an {{ else }} written with a tab (or a
// newline) before its condition is still an else: the template is not
// skipped as if its {{ if }} enclosed everything.
func TestHelmAttackElseAfterTab(t *testing.T) {
	for _, sep := range []string{"\t", "\n", "\r\n"} {
		fsys := fstest.MapFS{
			"c/Chart.yaml":         {Data: []byte("name: c\n")},
			"c/values.yaml":        {Data: []byte("off: false\n")},
			"c/templates/pod.yaml": {Data: []byte("{{- if .Values.off }}\nkind: Job\n{{- else" + sep + "if true }}\n" + privilegedPod + "{{- end }}\n")},
		}
		if got := detectFS(t, fsys, "k8s-privileged"); len(got) != 1 {
			t.Errorf("else%q: findings %v, want the privileged pod", sep, got)
		}
	}
}
