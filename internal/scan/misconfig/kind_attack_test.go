package misconfig

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestKindHiddenFromPrefilter writes a privileged pod the ways YAML (and
// so kubectl) allows but a line-oriented "kind:" prefilter may not see:
// flow style without quotes, a space before the colon, quoted keys, the
// value on the next line or behind a tag, anchor or alias, a byte order
// mark, an indented root, and a pod behind a Service kind line that
// sits inside a flow mapping or a string. Each must be checked.
func TestKindHiddenFromPrefilter(t *testing.T) {
	spec := "spec: {containers: [{name: a, image: a, securityContext: {privileged: true}}]}\n"
	for name, src := range map[string]string{
		"flow unquoted":      "{apiVersion: v1, kind: Pod, metadata: {name: p}, " + strings.TrimSuffix(spec, "\n") + "}\n",
		"space before colon": "apiVersion: v1\nkind : Pod\nmetadata: {name: p}\n" + spec,
		"quoted key":         "apiVersion: v1\n\"kind\": Pod\nmetadata: {name: p}\n" + spec,
		"single quoted":      "apiVersion: v1\n'kind': 'Pod'\nmetadata: {name: p}\n" + spec,
		"next line":          "apiVersion: v1\nkind:\n  Pod\nmetadata: {name: p}\n" + spec,
		"folded":             "apiVersion: v1\nkind: >-\n  Pod\nmetadata: {name: p}\n" + spec,
		"tag":                "apiVersion: v1\nkind: !!str Pod\nmetadata: {name: p}\n" + spec,
		"anchor":             "apiVersion: v1\nkind: &k Pod\nmetadata: {name: p}\n" + spec,
		"alias":              "apiVersion: v1\nmetadata: {name: p, labels: {k: &k Pod}}\nkind: *k\n" + spec,
		"indented root":      "  apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  " + spec,
		"flow after marker":  "--- {apiVersion: v1, kind: Pod, metadata: {name: p}, " + strings.TrimSuffix(spec, "\n") + "}\n",
		"bom":                "\ufeffkind: Pod\napiVersion: v1\nmetadata: {name: p}\n" + spec,
		"escaped key":        "apiVersion: v1\n\"\\x6bind\": Pod\nmetadata: {name: p}\n" + spec,
		"service line in flow": "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"p\", \"labels\": {\n" +
			"kind: Service}},\n \"spec\": {\"containers\": [{\"name\": \"a\", \"image\": \"a\", \"securityContext\": {\"privileged\": true}}]}}\n",
		"service line in string": "apiVersion: v1\n\"kind\": Pod\nmetadata: {name: p}\nnote: \"a\n  b\nkind: Service\"\n" + spec,
	} {
		got := detect(t, "pod.yaml", src)
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "k8s-privileged@") }) {
			t.Errorf("%s: no k8s-privileged in %v", name, got)
		}
	}
}

// TestTemplateSkipNotFooled: a chart template that names only a Service
// is still rendered when an action at the start of a line may write a
// document of its own, or its text is not plain YAML; the usual Service
// template (actions inline or piped to nindent) is still skipped.
func TestTemplateSkipNotFooled(t *testing.T) {
	svc := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n"
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{svc + "  labels:\n    {{- include \"x.labels\" . | nindent 4 }}\nspec:\n  type: {{ .Values.type }}\n", false},
		{"{{- if .Values.on }}\n" + svc + "{{- end }}\n", false},
		{svc + "---\n{{ include \"x.pod\" . }}\n", true},
		{svc + "{{ .Values.extra }}\n", true},
		{svc + "---\n{{ \"kind\" }}: Pod\n", true},
		{svc + "---\napiVersion: v1\nmetadata: {}\n", true},
		{"{\"kind\": \"Pod\", \"x\": {\n" + svc + "}}\n", true},
	} {
		if got := TemplateMayHoldChecked([]byte(tt.src)); got != tt.want {
			t.Errorf("TemplateMayHoldChecked(%q) = %v, want %v", tt.src, got, tt.want)
		}
	}
}

// FuzzTopLevelMatchesYAML checks the line reading of topLevel against
// the YAML decoder: whenever it calls a document plain, the document's
// top-level kind, as the decoder (and so kubectl) reads it, is one of the
// kind lines it found.
func FuzzTopLevelMatchesYAML(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Pod\n",
		"a: \"x\n  kind: Service\"\n\"kind\": Pod\n",
		"{kind: Pod}\n",
		"a: |\n  kind: x\nkind: Service\n",
		"a: 'it''s\n  x'\nkind: Pod\n",
		"  kind: Pod\n",
		"kind: Service\na: [1,\n  2]\n",
		"a: &x b\n*x : c\nkind: Service\n",
		"? kind\n: Pod\n",
		"a: !!str \"x\n  y\"\nkind: Service\n",
		"a:\n  |\n  kind: Pod\n",
		"list:\n- a: \"b\n  c\"\nkind: Secret\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 1024 {
			return
		}
		kinds, plain := topLevel([]byte(src))
		if !plain {
			return
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil || len(doc.Content) == 0 {
			return
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k := deref(root.Content[i])
			if k.Kind != yaml.ScalarNode || k.Value != "kind" {
				continue
			}
			v := scalar(deref(root.Content[i+1]))
			found := false
			for _, kv := range kinds {
				if lk := literalKind(kv); lk == v || lk == "" {
					found = true
				}
			}
			if !found {
				t.Fatalf("plain %q: topLevel kinds %q, YAML's kind %q", src, kinds, v)
			}
		}
	})
}

// TestDuplicateKeysLastWins: a key written twice has its last value, as
// kubectl and Helm read YAML, so a safe first value does not hide an
// unsafe second one.
func TestDuplicateKeysLastWins(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      image: a:1\n      securityContext:\n        privileged: false\n        privileged: true\n", "k8s-privileged@10"},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n    - name: a\n      image: a:1\n      securityContext:\n        privileged: false\n      securityContext:\n        privileged: true\n", "k8s-privileged@11"},
		{"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: false\n  hostNetwork: true\n  containers:\n    - name: a\n      image: a:1\n", "k8s-host-namespace@6"},
		{"apiVersion: v1\nkind: Service\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers:\n    - name: a\n      image: a:1\n", "k8s-host-namespace@6"},
	} {
		got := detect(t, "pod.yaml", tc.src)
		if !slices.Contains(got, tc.want) {
			t.Errorf("%q: want %s in %v", tc.src, tc.want, got)
		}
	}
}

// TestAliasesAndMergeKeysInManifests: what kubectl reads through YAML
// aliases and merge keys is checked: a security context, a pod spec
// field or the kind itself that comes from an anchor.
func TestAliasesAndMergeKeysInManifests(t *testing.T) {
	for name, tc := range map[string]struct{ src, want string }{
		"aliased security context": {"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {x: &sc {privileged: true}}\nspec:\n  containers:\n    - name: a\n      image: a:1\n      securityContext: *sc\n", "k8s-privileged@5"},
		"aliased container":        {"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nx: &c {name: a, image: a:1, securityContext: {privileged: true}}\nspec:\n  containers: [*c]\n", "k8s-privileged@5"},
		"merged spec field":        {"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nx: &base {hostNetwork: true}\nspec:\n  <<: *base\n  containers: [{name: a, image: a:1}]\n", "k8s-host-namespace@4"},
		"merged kind":              {"x: &k {kind: Pod, apiVersion: v1}\n<<: *k\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: a:1, securityContext: {privileged: true}}]\n", "k8s-privileged@5"},
		"own key wins":             {"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nx: &base {hostNetwork: false}\nspec:\n  <<: *base\n  hostNetwork: true\n  containers: [{name: a, image: a:1}]\n", "k8s-host-namespace@7"},
	} {
		if got := detect(t, "pod.yaml", tc.src); !slices.Contains(got, tc.want) {
			t.Errorf("%s: want %s in %v", name, tc.want, got)
		}
	}
}

// TestListItemsChecked: kubectl applies each item of a List (kind List,
// PodList, DeploymentList…), so a privileged pod wrapped in one is
// checked like any other.
func TestListItemsChecked(t *testing.T) {
	for _, kind := range []string{"List", "PodList"} {
		src := "apiVersion: v1\nkind: " + kind + "\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: p}\n    spec:\n      containers:\n        - name: a\n          image: a:1\n          securityContext: {privileged: true}\n"
		if got := detect(t, "list.yaml", src); !slices.Contains(got, "k8s-privileged@11") {
			t.Errorf("%s: want k8s-privileged@11 in %v", kind, got)
		}
	}
}

// TestJSONManifestsChecked: a manifest written as a .json file, which
// kubectl applies as it does YAML, is checked, keys escaped or not.
func TestJSONManifestsChecked(t *testing.T) {
	for name, src := range map[string]string{
		"plain":   `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "a:1", "securityContext": {"privileged": true}}]}}`,
		"escaped": `{"apiVersion": "v1", "\u006bind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "a:1", "securityContext": {"privileged": true}}]}}`,
	} {
		if got := detect(t, "pod.json", src); !slices.Contains(got, "k8s-privileged@1") {
			t.Errorf("%s: want k8s-privileged@1 in %v", name, got)
		}
	}
	if got := detect(t, "package.json", `{"name": "x", "version": "1.0.0"}`); len(got) != 0 {
		t.Errorf("package.json: %v", got)
	}
}
