package scancli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

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

func chart(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for k, v := range files {
		fsys[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fsys
}

// TestHelmAttackPodBehindService: a template that starts with a Service
// (a kind no check reads) and then includes, or prints from values, a
// whole second document is rendered: what the action writes may be a
// privileged pod. (An action in the middle of a line, such as
// "labels: {{ include "x" . }}", can write one too; that is not caught
// before rendering, see README.)
func TestHelmAttackPodBehindService(t *testing.T) {
	svc := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\n"
	for name, tmpl := range map[string]string{
		"include": svc + "{{ include \"c.pod\" . }}\n",
		"values":  svc + "{{ .Values.extra }}\n",
		"tpl":     svc + "{{ tpl .Values.extra . }}\n",
		"keyexpr": svc + "apiVersion: v1\n{{ \"kind\" }}: Pod\nspec:\n  containers:\n    - name: a\n      securityContext:\n        privileged: true\n",
	} {
		fsys := chart(map[string]string{
			"c/Chart.yaml":         "name: c\n",
			"c/values.yaml":        "extra: |\n" + indent(privilegedPod, "  "),
			"c/templates/_pod.tpl": "{{ define \"c.pod\" }}" + privilegedPod + "{{ end }}{{ define \"c.pod2\" }}{}\n---\n" + privilegedPod + "{{ end }}",
			"c/templates/svc.yaml": tmpl,
		})
		if got := detectFS(t, fsys, "k8s-privileged"); len(got) != 1 {
			t.Errorf("%s: findings %v, want the privileged pod", name, got)
		}
	}
}

func indent(s, pre string) string {
	out := ""
	for _, l := range splitLines(s) {
		out += pre + l + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// TestHelmAttackValuesQuotes: values whose quoted strings span lines with
// escaped or mixed quotes and "#" lines parse as Helm parses them; the
// chart is not dropped because comment blanking broke its values.
func TestHelmAttackValuesQuotes(t *testing.T) {
	for name, values := range map[string]string{
		"escaped":   "a: \"x\\\"\n# \"\nprivileged: true\n",
		"mixed":     "a: 'x \"\n# \"\n# y'\nprivileged: true\n",
		"comment":   "b: 1 # it's\nc: 'multi\n# text'\nprivileged: true\n",
		"backslash": "a: \"x\\\\\"\nprivileged: true\n# \"\n",
	} {
		fsys := chart(map[string]string{
			"c/Chart.yaml":         "name: c\n",
			"c/values.yaml":        values,
			"c/templates/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      securityContext:\n        privileged: {{ .Values.privileged }}\n",
		})
		if got := detectFS(t, fsys, "k8s-privileged"); len(got) != 1 {
			t.Errorf("%s: findings %v, want the privileged pod", name, got)
		}
	}
}

// TestHelmAttackSubchartTwoAliases: a chart listed twice under two
// aliases is rendered twice, each copy with its own section and
// condition; the disabled first copy does not hide the enabled second.
func TestHelmAttackSubchartTwoAliases(t *testing.T) {
	fsys := chart(map[string]string{
		"c/Chart.yaml":                    "name: c\ndependencies:\n  - name: app\n    alias: quiet\n    condition: quiet.enabled\n  - name: app\n    alias: loud\n    condition: loud.enabled\n",
		"c/values.yaml":                   "quiet:\n  enabled: false\nloud:\n  enabled: true\n  privileged: true\n",
		"c/charts/app/Chart.yaml":         "name: app\n",
		"c/charts/app/values.yaml":        "privileged: false\n",
		"c/charts/app/templates/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Chart.Name }}\nspec:\n  containers:\n    - name: a\n      securityContext:\n        privileged: {{ .Values.privileged }}\n",
	})
	got := detectFS(t, fsys, "k8s-privileged")
	if want := []string{"c/charts/app/templates/pod.yaml:9 k8s-privileged"}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	// Both copies enabled: each is checked, at the template's line.
	fsys["c/values.yaml"] = &fstest.MapFile{Data: []byte("quiet:\n  enabled: true\n  privileged: true\nloud:\n  enabled: true\n  privileged: true\n")}
	got = detectFS(t, fsys, "k8s-privileged")
	if want := []string{"c/charts/app/templates/pod.yaml:9 k8s-privileged", "c/charts/app/templates/pod.yaml:9 k8s-privileged"}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}

// TestHelmAttackConditionOverridesTags: as in Helm, a dependency's
// condition, when it holds a boolean, decides over its tags.
func TestHelmAttackConditionOverridesTags(t *testing.T) {
	fsys := chart(map[string]string{
		"c/Chart.yaml":                    "name: c\ndependencies:\n  - name: app\n    condition: app.enabled\n    tags: [extras]\n",
		"c/values.yaml":                   "tags:\n  extras: false\napp:\n  enabled: true\n",
		"c/charts/app/Chart.yaml":         "name: app\n",
		"c/charts/app/templates/pod.yaml": "{{/* a template */}}\n" + privilegedPod,
	})
	if got := detectFS(t, fsys, "k8s-privileged"); len(got) != 1 {
		t.Errorf("findings %v, want the enabled subchart's privileged pod", got)
	}
}

// TestHelmAttackBlankingKeepsValues: blanking values.yaml's comments
// never changes a value: "#" lines inside strings with escaped, doubled
// or mixed quotes, or under a block scalar header on a line of its own,
// are text and are kept.
func TestHelmAttackBlankingKeepsValues(t *testing.T) {
	for name, src := range map[string]string{
		"escaped":      "a: \"x\\\"\n  # \"\nb: 1\n",
		"backslash":    "a: \"x\\\\\"\n# c\nb: \"y\n  # text\n  \"\n",
		"doubled":      "a: 'it''s\n  # text\n  '\n",
		"mixed":        "a: 'x \"\n  # \"\n  # y'\nb: 1\n",
		"apostrophe":   "b: 1 # it's\nc: 'multi\n  # text'\nd: it's\n# comment\n",
		"own header":   "key:\n  |\n  # text\n  more\n",
		"tagged":       "a: !!str \"x\n  # text\"\n",
		"flow comment": "a: [1,\n  # c\n  2]\n",
	} {
		var want, got map[string]any
		if err := yaml.Unmarshal([]byte(src), &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		blanked := blankCommentLines([]byte(src))
		if err := yaml.Unmarshal(blanked, &got); err != nil {
			t.Errorf("%s: blanked values do not parse: %v\n%s", name, err, blanked)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: values changed (-want +got):\n%s", name, diff)
		}
	}
}

// detectChart runs the misconfig detector on a chart's Chart.yaml and
// returns its findings of rule and its error.
func detectChart(fsys fs.FS, chartYAML, rule string) ([]string, error) {
	d := &misconfig.Detector{Root: fsys, RenderChart: renderHelmChart}
	data, err := fs.ReadFile(fsys, chartYAML)
	if err != nil {
		return nil, err
	}
	var got []string
	err = d.Detect(context.Background(), &scan.File{Path: chartYAML, Data: data}, func(f scan.Finding) {
		if f.RuleID == rule {
			got = append(got, fmt.Sprintf("%s:%d", f.File, f.Line))
		}
	})
	return got, err
}

// TestHelmAttackLimitsAreReported: a chart that goes past a renderer
// limit — a template padded past the output limit with a comment Helm
// and kubectl pass over, more files than the limit, a packed subchart
// that unpacks to gigabytes in an entry the unpacker skips — is reported
// as not fully checked (the scan is incomplete), never passed as clean;
// what could be rendered is still checked.
func TestHelmAttackLimitsAreReported(t *testing.T) {
	pod := "{{/* x */}}\n" + privilegedPod
	padded := chart(map[string]string{
		"c/Chart.yaml":           "name: c\n",
		"c/templates/pod.yaml":   "# {{ repeat 90000 \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" }}\n" + privilegedPod,
		"c/templates/other.yaml": pod,
	})
	many := chart(map[string]string{"c/Chart.yaml": "name: c\n", "c/templates/pod.yaml": pod})
	for i := range maxChartFiles + 1 {
		many[fmt.Sprintf("c/templates/cm%d.yaml", i)] = &fstest.MapFile{Data: []byte("kind: ConfigMap\n")}
	}
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	big := int64(3 * maxPackedChartBytes)
	if err := tw.WriteHeader(&tar.Header{Name: "../junk", Mode: 0o644, Size: big, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeros{}, big); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"db/Chart.yaml": "name: db\n", "db/templates/pod.yaml": pod} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	bomb := chart(map[string]string{"c/Chart.yaml": "name: c\n", "c/templates/pod.yaml": pod})
	bomb["c/charts/db-1.0.0.tgz"] = &fstest.MapFile{Data: buf.Bytes()}

	for name, fsys := range map[string]fstest.MapFS{"padded": padded, "many files": many, "bomb": bomb} {
		got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged")
		if !errors.Is(err, misconfig.ErrChartLimit) {
			t.Errorf("%s: error %v, want the chart reported as over a limit", name, err)
		}
		if name == "padded" && !slices.Equal(got, []string{"c/templates/other.yaml:11"}) {
			t.Errorf("%s: findings %v, want what could be rendered still checked", name, got)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestHelmAttackRangeWordInComment: the words "range 1000000" in a
// comment or in YAML text do not keep a template from being rendered.
func TestHelmAttackRangeWordInComment(t *testing.T) {
	for name, pre := range map[string]string{
		"comment": "{{/* we range 1000000 ports */}}\n",
		"yaml":    "# port range 1000000-2000000 {{ \"\" }}\n",
	} {
		fsys := chart(map[string]string{
			"c/Chart.yaml":         "name: c\n",
			"c/templates/pod.yaml": pre + privilegedPod,
		})
		if got := detectFS(t, fsys, "k8s-privileged"); len(got) != 1 {
			t.Errorf("%s: findings %v, want the privileged pod", name, got)
		}
	}
}

// TestHelmAttackLoopsAreBounded: loops and recursion a chart can write
// stop at the renderer's limits, reported as such, instead of running
// for hours: a range over a huge number from values (or a literal),
// nested ranges each under the limit, a template that calls itself
// twice, by template or by include. A range over what is missing, and
// ordinary ranges, render as before.
func TestHelmAttackLoopsAreBounded(t *testing.T) {
	for name, tmpl := range map[string]string{
		"value":    "{{ range .Values.n }}{{ end }}",
		"literal":  "{{ range $i := 100000000000 }}{{ end }}",
		"nested":   "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
		"template": "{{ define \"a\" }}{{ if lt (len .) 64 }}{{ template \"a\" (append . 1) }}{{ template \"a\" (append . 1) }}{{ end }}{{ end }}{{ template \"a\" list }}",
		"include":  "{{ define \"b\" }}{{ if lt (len .) 60 }}{{ include \"b\" (append . 1) }}{{ include \"b\" (append . 1) }}{{ end }}{{ end }}{{ include \"b\" list }}",
	} {
		fsys := chart(map[string]string{
			"c/Chart.yaml":         "name: c\n",
			"c/values.yaml":        "n: 100000000000\n",
			"c/templates/pod.yaml": tmpl + "\n" + privilegedPod,
			"c/templates/ok.yaml":  "{{ range .Values.missing }}x{{ end }}{{ range $i, $e := list 1 2 }}\n# {{ $i }}{{ $e }}{{ end }}\n" + privilegedPod,
		})
		got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged")
		if !errors.Is(err, misconfig.ErrChartLimit) {
			t.Errorf("%s: error %v, want a limit error", name, err)
		}
		if want := []string{"c/templates/ok.yaml:12"}; !slices.Equal(got, want) {
			t.Errorf("%s: findings %v, want %v", name, got, want)
		}
	}
}

// TestHelmAttackFilesAndSubchartValues: templates that use what Helm
// gives them and the renderer once lacked — .Files.Glob with AsConfig,
// AsSecrets and Lines, .Files.GetBytes, Helm's fromJson and toToml, a
// subchart's default values seen from the parent as .Values.<subchart>,
// and .Subcharts —
// render and are checked, instead of failing and passing unchecked.
func TestHelmAttackFilesAndSubchartValues(t *testing.T) {
	for name, pre := range map[string]string{
		"glob":      "# {{ (.Files.Glob \"files/*\").AsConfig | sha256sum }} {{ (.Files.Glob \"files/**\").AsSecrets | len }} {{ range $p, $_ := .Files.Glob \"files/*.conf\" }}{{ $p }}{{ end }}\n",
		"lines":     "# {{ range .Files.Lines \"files/a.conf\" }}{{ . }}{{ end }} {{ .Files.GetBytes \"files/a.conf\" | len }}\n",
		"json":      "# {{ (fromJson \"{\\\"a\\\": 1}\").a }} {{ fromJsonArray \"[1]\" | len }} {{ toToml .Values.db | len }} {{ mustToYaml .Values.db | len }} {{ toYamlPretty .Values.db | len }} {{ mustToJson .Values.db | len }}\n",
		"subvalues": "# {{ .Values.db.port.number }} {{ .Values.db.global.registry }}\n",
		"subcharts": "# {{ .Subcharts.db.Values.port.number }} {{ .Subcharts.db.Chart.Name }}\n",
	} {
		fsys := chart(map[string]string{
			"c/Chart.yaml":                  "name: c\ndependencies:\n  - name: db\n",
			"c/values.yaml":                 "global:\n  registry: r\n",
			"c/files/a.conf":                "x = 1\ny = 2\n",
			"c/files/sub/b.conf":            "z = 3\n",
			"c/templates/pod.yaml":          pre + privilegedPod,
			"c/charts/db/Chart.yaml":        "name: db\n",
			"c/charts/db/values.yaml":       "port:\n  number: 5432\n",
			"c/charts/db/templates/cm.yaml": "kind: ConfigMap\ndata: {a: {{ .Values.port.number | quote }}}\n",
		})
		got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged")
		if err != nil || !slices.Equal(got, []string{"c/templates/pod.yaml:11"}) {
			t.Errorf("%s: findings %v (%v), want the privileged pod", name, got, err)
		}
	}
	out, err := renderHelmChart(context.Background(), chart(map[string]string{
		"c/Chart.yaml":         "name: c\n",
		"c/files/a.conf":       "x = 1\ny = 2\n",
		"c/files/sub/b.conf":   "z = 3\n",
		"c/templates/cm.yaml":  "kind: ConfigMap\ndata:\n{{ (.Files.Glob \"files/*\").AsConfig | indent 2 }}\nlines: {{ .Files.Lines \"files/a.conf\" | toJson }}\nall: {{ len (.Files.Glob \"**.conf\") }}\nsecrets: {{ (.Files.Glob \"files/sub/*\").AsSecrets }}\n",
		"c/templates/x/t.yaml": "kind: ConfigMap\n",
	}), "c")
	if err != nil {
		t.Fatal(err)
	}
	want := "kind: ConfigMap\ndata:\n  a.conf: |\n      x = 1\n      y = 2\nlines: [\"x = 1\",\"y = 2\"]\nall: 2\nsecrets: b.conf: eiA9IDMK\n"
	if got := out["c/templates/cm.yaml"].Output; got != want {
		t.Errorf("rendered\n%s\nwant\n%s", got, want)
	}
}

// TestHelmAttackRequiredAndFail: a template that stops rendering with
// the chart's defaults (required, or fail unless a value is set) is
// still checked: the user installs it with the value set, and what it
// deploys is the same manifest.
func TestHelmAttackRequiredAndFail(t *testing.T) {
	for name, pre := range map[string]string{
		"required":       "# {{ required \"set image\" .Values.image }}\n",
		"required empty": "# {{ required \"set tag\" .Values.tag }}\n",
		"fail":           "{{- if not .Values.acknowledged }}{{ fail \"set acknowledged=true\" }}{{ end }}\n",
	} {
		fsys := chart(map[string]string{
			"c/Chart.yaml":         "name: c\n",
			"c/values.yaml":        "tag: \"\"\n",
			"c/templates/pod.yaml": pre + privilegedPod,
		})
		if got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged"); err != nil || !slices.Equal(got, []string{"c/templates/pod.yaml:11"}) {
			t.Errorf("%s: findings %v (%v), want the privileged pod", name, got, err)
		}
	}
}

// TestHelmAttackSubchartOfBrokenParent: a chart under another chart's
// charts/ is rendered through its parent, but when the parent is no chart
// Helm would load (its Chart.yaml or values.yaml does not parse), it is a
// chart of its own, installable alone, and is rendered and checked.
func TestHelmAttackSubchartOfBrokenParent(t *testing.T) {
	for name, parent := range map[string]map[string]string{
		"chart":  {"x/Chart.yaml": "name: [x\n"},
		"values": {"x/Chart.yaml": "name: x\n", "x/values.yaml": "a: [\n"},
	} {
		files := map[string]string{
			"x/charts/evil/Chart.yaml":         "name: evil\n",
			"x/charts/evil/templates/pod.yaml": "{{/* x */}}\n" + privilegedPod,
		}
		maps.Copy(files, parent)
		if got := detectFS(t, chart(files), "k8s-privileged"); !slices.Equal(got, []string{"x/charts/evil/templates/pod.yaml:11 k8s-privileged"}) {
			t.Errorf("%s: findings %v, want the subchart's privileged pod", name, got)
		}
	}
}

// TestHelmAttackUpgradeOnly: what a chart renders only on an upgrade, or
// only where lookup finds an object (as on any real cluster), is checked
// too: a template that asks is rendered both ways, and so is one whose
// enclosing {{ if }} asks.
func TestHelmAttackUpgradeOnly(t *testing.T) {
	for name, tmpl := range map[string]string{
		"upgrade":       "{{- if .Release.IsUpgrade }}\n" + privilegedPod + "{{- end }}\n",
		"revision":      "{{ if gt .Release.Revision 1 }}" + privilegedPod + "{{ end }}",
		"not install":   "{{ if not .Release.IsInstall }}" + privilegedPod + "{{ end }}",
		"lookup":        "{{ if lookup \"v1\" \"Namespace\" \"\" \"default\" }}" + privilegedPod + "{{ end }}",
		"no lookup":     "{{ if not (lookup \"v1\" \"Namespace\" \"\" \"default\") }}" + privilegedPod + "{{ end }}",
		"lookup list":   "{{ range (lookup \"v1\" \"Namespace\" \"\" \"\").items }}" + privilegedPod + "{{ end }}",
		"install (any)": "{{/* x */}}" + privilegedPod,
	} {
		fsys := chart(map[string]string{"c/Chart.yaml": "name: c\n", "c/templates/pod.yaml": tmpl})
		if got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged"); err != nil || len(got) != 1 {
			t.Errorf("%s: findings %v (%v), want the privileged pod once", name, got, err)
		}
	}
}

// packChart returns files as a gzipped tar.
func packChart(t *testing.T, files map[string][]byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(gz)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestHelmAttackNestedAndLargePackedSubcharts: a packed subchart inside a
// packed subchart (as helm package leaves a chart with dependencies) is
// rendered and its findings named through both archives; a packed
// subchart larger than the renderer reads is reported as a limit, not
// passed over.
func TestHelmAttackNestedAndLargePackedSubcharts(t *testing.T) {
	inner := packChart(t, map[string][]byte{
		"inner/Chart.yaml":         []byte("name: inner\n"),
		"inner/templates/pod.yaml": []byte("{{/* x */}}\n" + privilegedPod),
	}, gzip.DefaultCompression)
	outer := packChart(t, map[string][]byte{
		"outer/Chart.yaml":             []byte("name: outer\n"),
		"outer/charts/inner-1.0.0.tgz": inner,
	}, gzip.DefaultCompression)
	fsys := chart(map[string]string{"c/Chart.yaml": "name: c\n"})
	fsys["c/charts/outer-1.0.0.tgz"] = &fstest.MapFile{Data: outer}
	got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged")
	if want := []string{"c/charts/outer-1.0.0.tgz!outer/charts/inner-1.0.0.tgz!inner/templates/pod.yaml:11"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("nested: findings %v (%v), want %v", got, err, want)
	}

	noise := make([]byte, maxPackedChartBytes+1<<20)
	if _, err := rand.NewChaCha8([32]byte{1}).Read(noise); err != nil {
		t.Fatal(err)
	}
	big := packChart(t, map[string][]byte{
		"big/Chart.yaml":         []byte("name: big\n"),
		"big/templates/pod.yaml": []byte("{{/* x */}}\n" + privilegedPod),
		"big/zz-noise.bin":       noise,
	}, gzip.BestSpeed)
	fsys = chart(map[string]string{"c/Chart.yaml": "name: c\n"})
	fsys["c/charts/big-1.0.0.tgz"] = &fstest.MapFile{Data: big}
	if _, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged"); !errors.Is(err, misconfig.ErrChartLimit) {
		t.Errorf("large: error %v, want a limit error", err)
	}
}

// TestHelmAttackTemplateExtensions: Helm deploys what renders from every
// file under templates/ but partials (_*) and NOTES.txt, whatever its
// extension, so a pod in templates/pod.json, pod.tpl or pod (no
// extension) is checked; one in NOTES.txt or a partial is not deployed.
func TestHelmAttackTemplateExtensions(t *testing.T) {
	files := map[string]string{"c/Chart.yaml": "name: c\n"}
	for _, name := range []string{"pod.json", "pod.tpl", "pod", "pod.yaml.j2", "NOTES.txt", "_pod.tpl"} {
		files["c/templates/"+name] = "{{/* x */}}\n" + privilegedPod
	}
	got, err := detectChart(chart(files), "c/Chart.yaml", "k8s-privileged")
	want := []string{"c/templates/pod.json:11", "c/templates/pod.tpl:11", "c/templates/pod.yaml.j2:11", "c/templates/pod:11"}
	slices.Sort(got)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("findings %v (%v), want %v", got, err, want)
	}
}

// TestHelmAttackRequirementsYAML: a Helm 2 style chart's dependencies,
// aliases and conditions come from requirements.yaml, so a subchart
// aliased there renders with the parent's section for the alias.
func TestHelmAttackRequirementsYAML(t *testing.T) {
	fsys := chart(map[string]string{
		"c/Chart.yaml":                    "apiVersion: v1\nname: c\nversion: 1.0.0\n",
		"c/requirements.yaml":             "dependencies:\n  - name: app\n    alias: loud\n",
		"c/values.yaml":                   "loud:\n  privileged: true\n",
		"c/charts/app/Chart.yaml":         "name: app\n",
		"c/charts/app/values.yaml":        "privileged: false\n",
		"c/charts/app/templates/pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Chart.Name }}\nspec:\n  containers:\n    - name: a\n      securityContext:\n        privileged: {{ .Values.privileged }}\n",
	})
	if got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged"); err != nil || len(got) != 1 {
		t.Errorf("findings %v (%v), want the aliased subchart's privileged pod", got, err)
	}
}

// TestHelmAttackPackedChartInTree: a chart committed only as a packed
// .tgz (dist/web-1.0.0.tgz, which helm install takes as it is) is
// rendered from the archive and checked, its findings named as archive
// members; one under a chart's charts/ is left to its parent.
func TestHelmAttackPackedChartInTree(t *testing.T) {
	packed := packChart(t, map[string][]byte{
		"web/Chart.yaml":         []byte("name: web\n"),
		"web/values.yaml":        []byte("privileged: true\n"),
		"web/templates/pod.yaml": []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: a\n      securityContext:\n        privileged: {{ .Values.privileged }}\n"),
	}, gzip.DefaultCompression)
	fsys := fstest.MapFS{"dist/web-1.0.0.tgz": {Data: packed}}
	d := &misconfig.Detector{Root: fsys, RenderChart: renderHelmChart}
	var got []string
	err := d.Detect(context.Background(), &scan.File{Path: "dist/web-1.0.0.tgz!web/Chart.yaml", Data: []byte("name: web\n")}, func(f scan.Finding) {
		if f.RuleID == "k8s-privileged" {
			got = append(got, fmt.Sprintf("%s:%d", f.File, f.Line))
		}
	})
	if want := []string{"dist/web-1.0.0.tgz!web/templates/pod.yaml:9"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("findings %v (%v), want %v", got, err, want)
	}
}

// TestHelmAttackUnvendoredDependency: a chart whose dependencies are
// declared but not vendored (helm dependency build not run, as in most
// chart repositories) still has its own templates checked when they read
// the dependency's values; the chart's own missing values still fail.
func TestHelmAttackUnvendoredDependency(t *testing.T) {
	fsys := chart(map[string]string{
		"c/Chart.yaml":         "name: c\ndependencies:\n  - name: postgresql\n    repository: oci://registry-1.docker.io/bitnamicharts\n",
		"c/templates/pod.yaml": "# {{ .Values.postgresql.primary.service.ports.postgresql }} {{ upper .Values.postgresql.auth.username }} {{ $.Values.postgresql.tls.certFilename }}\n" + privilegedPod,
		"c/templates/own.yaml": "# {{ .Values.mine.deeper.field }}\n" + privilegedPod,
	})
	got, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged")
	if want := []string{"c/templates/pod.yaml:11"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("findings %v (%v), want %v", got, err, want)
	}
}

// TestHelmAttackTooManyAliases: a chart that lists more subchart copies
// than the renderer renders is reported as over a limit, not passed with
// the copies past the limit unchecked.
func TestHelmAttackTooManyAliases(t *testing.T) {
	var deps strings.Builder
	deps.WriteString("name: c\ndependencies:\n")
	for i := range maxCharts + 5 {
		fmt.Fprintf(&deps, "  - name: app\n    alias: a%d\n", i)
	}
	fsys := chart(map[string]string{
		"c/Chart.yaml":                   deps.String(),
		"c/charts/app/Chart.yaml":        "name: app\n",
		"c/charts/app/templates/cm.yaml": "kind: ConfigMap\nmetadata: {name: {{ .Chart.Name }}}\n",
	})
	if _, err := detectChart(fsys, "c/Chart.yaml", "k8s-privileged"); !errors.Is(err, misconfig.ErrChartLimit) {
		t.Errorf("error %v, want a limit error", err)
	}
}

// TestHelmAttackDeepSubcharts: subcharts nested deeper than the renderer
// goes are reported as over a limit, not passed unchecked, and the rest of
// the chart is still checked.
func TestHelmAttackDeepSubcharts(t *testing.T) {
	files := map[string]string{}
	dir := "c"
	for i := range maxSubchartDepth + 2 {
		files[dir+"/Chart.yaml"] = fmt.Sprintf("name: c%d\n", i)
		dir += fmt.Sprintf("/charts/c%d", i+1)
	}
	files[dir+"/Chart.yaml"] = "name: deep\n"
	files[dir+"/templates/pod.yaml"] = "{{/* x */}}\n" + privilegedPod
	files["c/templates/pod.yaml"] = "{{/* x */}}\n" + privilegedPod
	got, err := detectChart(chart(files), "c/Chart.yaml", "k8s-privileged")
	if !errors.Is(err, misconfig.ErrChartLimit) {
		t.Errorf("error %v, want a limit error", err)
	}
	if want := []string{"c/templates/pod.yaml:11"}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want what could be rendered (%v)", got, want)
	}
}
