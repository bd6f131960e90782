package misconfig

import (
	"slices"
	"strings"
	"testing"
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
