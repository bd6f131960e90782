package scancli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/scan/misconfig"
)

// detectTree runs a charts-rendering misconfig detector over every file of
// dir, as `interlock scan` does, and returns "file:line rule" for each
// finding of the given rules.
func detectTree(t *testing.T, dir string, rules ...string) []string {
	t.Helper()
	fsys := os.DirFS(dir)
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

// TestHelmSubchartsRenderedWithParentValues checks subcharts the way Helm
// renders them: the db subchart's privileged: false default is overridden
// by the parent's db: section, the parent's global image registry wins
// over the subchart's while the subchart's other globals stay, the cache
// subchart (hostNetwork: true by default) is disabled by its condition,
// and neither subchart is rendered again on its own with its defaults.
func TestHelmSubchartsRenderedWithParentValues(t *testing.T) {
	got := detectTree(t, "testdata/helm/shop", "k8s-privileged", "k8s-host-namespace")
	want := []string{"charts/db/templates/statefulset.yaml:14 k8s-privileged"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	out, err := renderHelmChart(context.Background(), os.DirFS("testdata/helm"), "shop")
	if err != nil {
		t.Fatal(err)
	}
	sts := out["shop/charts/db/templates/statefulset.yaml"].Output
	for _, w := range []string{"name: release-name-db", `image: "registry.example.com/postgres:16"`, "imagePullPolicy: IfNotPresent", "privileged: true"} {
		if !strings.Contains(sts, w) {
			t.Errorf("rendered subchart lacks %q:\n%s", w, sts)
		}
	}
	if _, ok := out["shop/charts/cache/templates/pod.yaml"]; ok {
		t.Error("a subchart whose condition is false was rendered")
	}
	if _, ok := out["shop/templates/configmap.yaml"]; !ok {
		t.Error("the parent's own template was not rendered")
	}
}

// TestHelmSubchartConditionAndAlias checks a condition that holds true,
// an alias (the parent's section and .Chart.Name follow the alias), and a
// library subchart, which renders nothing of its own.
func TestHelmSubchartConditionAndAlias(t *testing.T) {
	fsys := fstest.MapFS{
		"app/Chart.yaml":                      {Data: []byte("name: app\ndependencies:\n  - name: db\n    alias: store\n    condition: store.enabled,db.enabled\n  - name: lib\n")},
		"app/values.yaml":                     {Data: []byte("store:\n  enabled: true\n  user: 0\n")},
		"app/charts/db/Chart.yaml":            {Data: []byte("name: db\n")},
		"app/charts/db/values.yaml":           {Data: []byte("user: 1001\nenabled: false\n")},
		"app/charts/db/templates/pod.yaml":    {Data: []byte("kind: Pod\nmetadata:\n  name: {{ .Chart.Name }}\nspec:\n  securityContext:\n    runAsUser: {{ .Values.user }}\n")},
		"app/charts/lib/Chart.yaml":           {Data: []byte("name: lib\ntype: library\n")},
		"app/charts/lib/templates/_x.tpl":     {Data: []byte(`{{ define "lib.x" }}x{{ end }}`)},
		"app/charts/lib/templates/stray.yaml": {Data: []byte("kind: Pod\nmetadata:\n  name: lib\n")},
	}
	out, err := renderHelmChart(context.Background(), fsys, "app")
	if err != nil {
		t.Fatal(err)
	}
	pod, ok := out["app/charts/db/templates/pod.yaml"]
	if !ok {
		t.Fatalf("the aliased subchart was not rendered: %v", slices.Collect(mapsKeys(out)))
	}
	for _, w := range []string{"name: store", "runAsUser: 0"} {
		if !strings.Contains(pod.Output, w) {
			t.Errorf("aliased subchart lacks %q:\n%s", w, pod.Output)
		}
	}
	if _, ok := out["app/charts/lib/templates/stray.yaml"]; ok {
		t.Error("a library subchart was rendered")
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestHelmFindingLines checks that findings from rendered templates carry
// the template line that wrote the flagged field: literal text keeps its
// own line across {{- }} trims and if blocks, and what an action wrote
// (toYaml, include) is reported on the action's line.
func TestHelmFindingLines(t *testing.T) {
	got := detectTree(t, "testdata/helm", "k8s-privileged", "k8s-allow-privilege-escalation")
	want := []string{
		"shop/charts/db/templates/statefulset.yaml:14 k8s-allow-privilege-escalation",
		"shop/charts/db/templates/statefulset.yaml:14 k8s-privileged",
		"web/templates/deployment.yaml:14 k8s-allow-privilege-escalation",
		"web/templates/deployment.yaml:14 k8s-privileged",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	src := `{{- define "t.sc" -}}
privileged: true
runAsUser: 0
{{- end -}}
apiVersion: v1
kind: Pod
metadata:
  name: p
  {{- if .Values.labels }}
  labels:
    a: b
  {{- end }}
spec:
  hostPID: {{ .Values.hostPID }}
  containers:
    - name: a
      image: a:1
      securityContext:
        {{- include "t.sc" . | nindent 8 }}
`
	fsys := fstest.MapFS{
		"c/Chart.yaml":          {Data: []byte("name: c\n")},
		"c/values.yaml":         {Data: []byte("labels: true\nhostPID: true\n")},
		"c/templates/pod.yaml":  {Data: []byte(src)},
		"c/templates/_sc.tpl":   {Data: []byte("{{ define \"unused\" }}{{ end }}")},
		"c/templates/svc.yaml":  {Data: []byte("kind: Service\nmetadata:\n  name: {{ .Release.Name }}\n")},
		"c/templates/NOTES.txt": {Data: []byte("{{ .Release.Name }}")},
	}
	out, err := renderHelmChart(context.Background(), fsys, "c")
	if err != nil {
		t.Fatal(err)
	}
	pod := out["c/templates/pod.yaml"]
	lines := strings.Split(strings.TrimSuffix(pod.Output, "\n"), "\n")
	var pairs []string
	for i, l := range lines {
		n := 0
		if i < len(pod.Lines) {
			n = pod.Lines[i]
		}
		pairs = append(pairs, fmt.Sprintf("%d %s", n, strings.TrimSpace(l)))
	}
	wantPairs := []string{
		"5 apiVersion: v1", "6 kind: Pod", "7 metadata:", "8 name: p", "10 labels:", "11 a: b",
		"13 spec:", "14 hostPID: true", "15 containers:", "16 - name: a", "17 image: a:1",
		"18 securityContext:", "19 privileged: true", "19 runAsUser: 0",
	}
	if diff := cmp.Diff(wantPairs, pairs); diff != "" {
		t.Errorf("output lines and their template lines (-want +got):\n%s", diff)
	}
	if _, ok := out["c/templates/svc.yaml"]; ok {
		t.Error("a template that only makes a Service (no check reads one) was rendered")
	}
}

// TestHelmLibraryHelpersInSubdirectories checks that a library chart's
// helpers are found below its templates/ (bitnami's common keeps its
// validations in templates/validations/), vendored or as a sibling: a
// template calling one used to fail and go unchecked.
func TestHelmLibraryHelpersInSubdirectories(t *testing.T) {
	helper := []byte(`{{ define "lib.check" }}{{ if not .Values.ok }}{{ fail "not ok" }}{{ end }}{{ end }}`)
	pod := []byte("{{ include \"lib.check\" . }}\nkind: Pod\nspec:\n  hostPID: true\n")
	for name, fsys := range map[string]fstest.MapFS{
		"sibling": {
			"charts/app/Chart.yaml":                       {Data: []byte("name: app\ndependencies:\n  - name: lib\n")},
			"charts/app/values.yaml":                      {Data: []byte("ok: true\n")},
			"charts/app/templates/pod.yaml":               {Data: pod},
			"charts/lib/Chart.yaml":                       {Data: []byte("name: lib\ntype: library\n")},
			"charts/lib/templates/validations/_check.tpl": {Data: helper},
		},
		"vendored": {
			"app/Chart.yaml":                                  {Data: []byte("name: app\ndependencies:\n  - name: lib\n")},
			"app/values.yaml":                                 {Data: []byte("ok: true\n")},
			"app/templates/pod.yaml":                          {Data: pod},
			"app/charts/lib/Chart.yaml":                       {Data: []byte("name: lib\ntype: library\n")},
			"app/charts/lib/templates/validations/_check.tpl": {Data: helper},
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := "app"
			if name == "sibling" {
				dir = "charts/app"
			}
			out, err := renderHelmChart(context.Background(), fsys, dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := out[dir+"/templates/pod.yaml"].Output; !strings.Contains(got, "hostPID: true") {
				t.Errorf("the template using a helper from a subdirectory was not rendered: %v", slices.Collect(mapsKeys(out)))
			}
		})
	}
}

// TestBlankCommentLines checks that blanking whole-line comments of values
// YAML (done for speed) never changes the values: "#" lines inside block
// scalars and multi-line quoted strings are text and stay.
func TestBlankCommentLines(t *testing.T) {
	src := `# Copyright
## @param image.registry The registry
image:
  # the tag
  tag: "1.0" # trailing comment
config: |
  [server]
  # port is the listening port
  port = 8080

  # password = example
script: >-
    run
    # not a comment either
quoted: "first line
  # inside a quoted string
  last line"
single: 'it''s
  # also inside
  done'
list:
  # a comment in a list
  - |
    # text of the item
  - b
# trailing
`
	var want, got map[string]any
	if err := yaml.Unmarshal([]byte(src), &want); err != nil {
		t.Fatal(err)
	}
	blanked := blankCommentLines([]byte(src))
	if err := yaml.Unmarshal(blanked, &got); err != nil {
		t.Fatalf("blanked values do not parse: %v\n%s", err, blanked)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values changed by blanking comments (-want +got):\n%s", diff)
	}
	if bytes.Contains(blanked, []byte("@param")) || bytes.Contains(blanked, []byte("the tag")) || bytes.Contains(blanked, []byte("a comment in a list")) {
		t.Errorf("comment lines were kept:\n%s", blanked)
	}
	if bytes.Count(blanked, []byte("\n")) != bytes.Count([]byte(src), []byte("\n")) {
		t.Error("line count changed")
	}
}

// TestHelmTopGuard checks when a template's enclosing {{ if }} is read to
// skip it unparsed, and that a skipped template is the one Helm would
// render empty while every other one still renders.
func TestHelmTopGuard(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"{{/* licence */}}\n{{- if .Values.ingress.enabled }}\nkind: Ingress\n{{- if .Values.tls }}\ntls: []\n{{- end }}\n{{- end }}\n", ".Values.ingress.enabled"},
		{"{{- if and .Values.a (not .Values.b) -}}\nkind: Pod\n{{- end -}}\n", "and .Values.a (not .Values.b)"},
		{"{{- if .Values.a }}\nkind: Pod\n{{- else }}\nkind: Job\n{{- end }}\n", ""},
		{"kind: Pod\n{{- if .Values.a }}\nx: 1\n{{- end }}\n", ""},
		{"{{- if .Values.a }}\nkind: Pod\n{{- end }}\n---\nkind: Job\n", ""},
		{"{{- if .Values.a }}\nkind: Pod\n{{- end }}\n{{- if .Values.b }}\nkind: Job\n{{- end }}\n", ""},
		{"{{- $x := .Values.a }}\n{{- if $x }}\nkind: Pod\n{{- end }}\n", ""},
		{"{{- if .Values.a }}\n{{ define \"x\" }}y{{ end }}\n{{- end }}\n", ""},
		{"{{- if eq .Values.a \"}}\" }}\nkind: Pod\n{{- end }}\n", ""},
	} {
		if got := topGuard(tt.src); got != tt.want {
			t.Errorf("topGuard(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
	fsys := fstest.MapFS{
		"c/Chart.yaml":          {Data: []byte("name: c\n")},
		"c/values.yaml":         {Data: []byte("on: true\noff: false\n")},
		"c/templates/on.yaml":   {Data: []byte("{{- if .Values.on }}\nkind: Pod\n{{- end }}\n")},
		"c/templates/off.yaml":  {Data: []byte("{{- if .Values.off }}\nkind: Pod\n{{- end }}\n")},
		"c/templates/else.yaml": {Data: []byte("{{- if .Values.off }}\nkind: Pod\n{{- else }}\nkind: Job\n{{- end }}\n")},
		"c/templates/bad.yaml":  {Data: []byte("{{- if .Values.on.deeper }}\nkind: Pod\n{{- end }}\n")},
	}
	out, err := renderHelmChart(context.Background(), fsys, "c")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"on": "kind: Pod", "else": "kind: Job"} {
		if got := out["c/templates/"+name+".yaml"].Output; !strings.Contains(got, want) {
			t.Errorf("%s.yaml rendered %q, want %q in it", name, got, want)
		}
	}
	for _, name := range []string{"off", "bad"} {
		if got, ok := out["c/templates/"+name+".yaml"]; ok && strings.TrimSpace(got.Output) != "" {
			t.Errorf("%s.yaml rendered %q, want nothing", name, got.Output)
		}
	}
}

// TestHelmRegexFunctions checks the cached replacements of Sprig's regex
// functions: same results, and a bad pattern fails the template instead
// of panicking.
func TestHelmRegexFunctions(t *testing.T) {
	fsys := fstest.MapFS{
		"c/Chart.yaml": {Data: []byte("name: c\n")},
		"c/templates/ok.yaml": {Data: []byte(`kind: ConfigMap
data:
{{- range until 3 }}
  a{{ . }}: {{ regexReplaceAll "a+" "baaac" "x" }}-{{ regexFind "[0-9]+" "ab12c" }}-{{ regexMatch "^b" "bc" }}-{{ regexReplaceAllLiteral "a" "aa" "$1" }}
{{- end }}
`)},
		"c/templates/bad.yaml": {Data: []byte("kind: ConfigMap\ndata: {a: {{ regexFind \"(\" \"x\" }}}\n")},
	}
	out, err := renderHelmChart(context.Background(), fsys, "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := out["c/templates/ok.yaml"].Output; strings.Count(got, "bxc-12-true-$1$1") != 3 {
		t.Errorf("regex functions rendered:\n%s", got)
	}
	if _, ok := out["c/templates/bad.yaml"]; ok {
		t.Error("a template with an invalid pattern was rendered")
	}
}

// TestHelmPackedSubchart checks a subchart packed as helm dependency build
// leaves it (charts/db-1.0.0.tgz): rendered with the parent's values, its
// findings named as archive members, like every archive member in a scan.
func TestHelmPackedSubchart(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/helm/shop")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	db := os.DirFS("testdata/helm/shop/charts/db")
	if err := fs.WalkDir(db, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := fs.ReadFile(db, p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "db/" + p, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "charts", "db")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "charts", "db-1.0.0.tgz"), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got := detectTree(t, dir, "k8s-privileged", "k8s-host-namespace")
	want := []string{"charts/db-1.0.0.tgz!db/templates/statefulset.yaml:14 k8s-privileged"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	// A packed file that is not a chart is ignored, not an error.
	if err := os.WriteFile(filepath.Join(dir, "charts", "junk.tgz"), []byte("not gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := detectTree(t, dir, "k8s-privileged"); len(got) != 1 {
		t.Errorf("with a broken archive beside it: %v", got)
	}
}
