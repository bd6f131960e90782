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

// TestUncheckedKindsHaveNoChecks guards the list of kinds whose documents
// are skipped undecoded and whose templates are not rendered: an object of
// each kind, filled with every field some check reads on another kind,
// gives no finding when checked directly. A new check on one of these
// kinds fails here until the kind leaves uncheckedKinds.
func TestUncheckedKindsHaveNoChecks(t *testing.T) {
	const body = `metadata:
  name: x
  namespace: kube-system
  annotations:
    nginx.ingress.kubernetes.io/auth-url: "http://x/;}"
spec:
  type: LoadBalancer
  externalIPs: [1.2.3.4]
  hostNetwork: true
  template:
    spec:
      hostPID: true
      containers:
        - name: c
          image: c
          securityContext: {privileged: true}
  containers:
    - name: c
      image: c
      securityContext: {privileged: true}
data:
  password: hunter2hunter2
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
subjects:
  - kind: Group
    name: system:anonymous
roleRef:
  kind: ClusterRole
  name: cluster-admin
automountServiceAccountToken: true
`
	for kind := range uncheckedKinds {
		var got []string
		r := &reporter{f: &scan.File{Path: "x.yaml"}, emit: func(fd scan.Finding) { got = append(got, fd.RuleID) }}
		kubernetes([]byte("apiVersion: v1\nkind: "+kind+"\n"+body), r)
		if len(got) > 0 {
			t.Errorf("kind %s is skipped unchecked but checks report %v on it", kind, got)
		}
	}
}

// TestTemplateMayHoldChecked checks which chart templates are rendered.
func TestTemplateMayHoldChecked(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{"apiVersion: v1\nkind: Service\nmetadata: {}\n", false},
		{"kind: Secret\n---\nkind: \"Service\" # both unchecked\n", false},
		{"kind: Service\n---\nkind: Deployment\n", true},
		{"kind: {{ ternary \"Job\" \"Deployment\" .Values.job }}\n", true},
		{"{{- range .Values.extraDeploy }}\n{{ include \"tpl\" . }}\n{{- end }}\n", true},
		{"spec:\n  kind: Service\n", true}, // not a top-level kind: no kind line at all
	} {
		if got := TemplateMayHoldChecked([]byte(tt.src)); got != tt.want {
			t.Errorf("TemplateMayHoldChecked(%q) = %v, want %v", tt.src, got, tt.want)
		}
	}
}

// TestDropUncheckedDocs checks that skipped documents keep their lines, so
// the findings of the others keep theirs.
func TestDropUncheckedDocs(t *testing.T) {
	src := "kind: CustomResourceDefinition\nspec:\n  x: 1\n---\napiVersion: v1\nkind: Pod\nspec:\n  hostPID: true\n  containers: [{name: a, image: a:1}]\n---\nkind: Service\nspec: {}\n"
	got := string(dropUncheckedDocs([]byte(src)))
	want := "\n\n\n---\napiVersion: v1\nkind: Pod\nspec:\n  hostPID: true\n  containers: [{name: a, image: a:1}]\n\n\n\n"
	if got != want {
		t.Errorf("dropUncheckedDocs:\n got %q\nwant %q", got, want)
	}
	var lines []int
	r := &reporter{f: &scan.File{Path: "x.yaml"}, emit: func(fd scan.Finding) {
		if fd.RuleID == k8sHostNS {
			lines = append(lines, fd.Line)
		}
	}}
	kubernetes([]byte(got), r)
	if diff := cmp.Diff([]int{8}, lines); diff != "" {
		t.Errorf("hostPID finding lines (-want +got):\n%s", diff)
	}
}
