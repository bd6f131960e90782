package misconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Helm charts are checked as Kubernetes manifests after rendering their
// templates with the chart's own values.yaml, the way `helm template`
// would. The renderer is plugged in by the caller (internal/scancli uses
// Go text/template with Sprig, the function library Helm itself uses):
// Sprig reaches database/sql/driver through a decimal type, which this
// package must never link (deps_test.go), as 7z reaches net/http.

// ChartRenderer renders the chart in directory dir of fsys with its
// default values, and its subcharts under charts/ with theirs, and
// returns each rendered template by its path in fsys. It MUST honour ctx
// and MUST bound its output: a chart is untrusted input. It may leave out
// a template that [TemplateMayHoldChecked] says no check reads. When one
// of its limits stops it from rendering a template (or a subchart) it
// returns what it rendered and an error wrapping [ErrChartLimit]: the
// chart was not fully checked, and the scan says so instead of passing
// what the limit hid. Any other error means a chart Helm would refuse.
type ChartRenderer func(ctx context.Context, fsys fs.FS, dir string) (map[string]RenderedTemplate, error)

// ErrChartLimit marks a chart the renderer did not render whole because
// it went past one of the renderer's limits (output, files, nesting,
// loop counts).
var ErrChartLimit = errors.New("chart goes past the renderer's limits, so it was not fully checked")

// RenderedTemplate is one template's output and where each of its lines
// came from, so that a finding points at the template, not at text the
// user never sees.
type RenderedTemplate struct {
	Output string
	// Lines[i] is the template line that wrote output line i+1: the line
	// of the literal text, or of the action ({{ include … }}, {{ toYaml …
	// }}) whose result it is. 0 or a short slice means unknown.
	Lines []int
}

// helmChart renders the chart whose Chart.yaml is at chartPath in fsys and
// checks each rendered manifest. Findings point at the template file and
// the template line that produced the flagged resource or field.
// It returns the renderer's limit error, if any (see [ChartRenderer]).
func helmChart(ctx context.Context, render ChartRenderer, fsys fs.FS, chartPath string, r *reporter) error {
	dir := path.Dir(chartPath)
	if archive, _, packed := strings.Cut(chartPath, "!"); packed {
		// A packed chart under a chart's charts/ is that chart's subchart.
		dir = archive + "!" + strings.TrimPrefix(dir[len(archive)+1:], "./")
		if isVendoredSubchart(fsys, strings.TrimSuffix(strings.TrimSuffix(archive, ".tgz"), ".tar.gz")) {
			return nil
		}
	} else if isVendoredSubchart(fsys, dir) {
		return nil // rendered through its parent, with the parent's values
	}
	rendered, err := render(ctx, fsys, dir)
	if err != nil && !errors.Is(err, ErrChartLimit) {
		return nil // a chart Helm would refuse
	}
	for _, name := range slices.Sorted(maps.Keys(rendered)) {
		rt := rendered[name]
		data, mayHold := dropUnchecked([]byte(rt.Output))
		if !mayHold {
			continue
		}
		// A template rendered more than once (as an install and as an
		// upgrade) reports each finding once.
		seen := map[string]bool{}
		sub := &reporter{f: &scan.File{Path: name, Data: data, Commit: r.f.Commit, Author: r.f.Author, Date: r.f.Date}, emit: func(fd scan.Finding) {
			line := 0
			if fd.Line >= 1 && fd.Line <= len(rt.Lines) {
				line = rt.Lines[fd.Line-1]
			}
			key := fmt.Sprintf("%s\x00%d\x00%s", fd.RuleID, line, fd.Message)
			if line > 0 && seen[key] {
				return
			}
			seen[key] = true
			fd.Line, fd.Column = line, 0
			fd.Message += " [rendered with the chart's default values]"
			r.emit(fd)
		}}
		kubernetes(sub.f.Data, sub)
	}
	return err
}

// isPackedChart reports whether p names the Chart.yaml at the top of a
// packed chart in the scanned tree ("dist/web-1.0.0.tgz!web/Chart.yaml"),
// which helm install takes as it is: the renderer renders it from the
// archive.
func isPackedChart(p string) bool {
	archive, member, ok := strings.Cut(p, "!")
	return ok && !strings.Contains(member, "!") && strings.Count(strings.TrimPrefix(member, "./"), "/") == 1 &&
		(strings.HasSuffix(archive, ".tgz") || strings.HasSuffix(archive, ".tar.gz"))
}

// isVendoredSubchart reports whether dir is a chart under another chart's
// charts/ directory, which Helm renders only as part of its parent.
// A parent that is no chart Helm would load (its Chart.yaml or
// values.yaml does not parse) renders nothing, so the chart under it is
// then one of its own, installable alone, and is rendered as such.
func isVendoredSubchart(fsys fs.FS, dir string) bool {
	parent := path.Dir(dir)
	if path.Base(parent) != "charts" {
		return false
	}
	for _, f := range []string{"Chart.yaml", "values.yaml"} {
		b, err := fs.ReadFile(fsys, path.Join(path.Dir(parent), f))
		if err != nil {
			if f == "Chart.yaml" {
				return false
			}
			continue
		}
		var m map[string]any
		if yaml.Unmarshal(BlankYAMLComments(b), &m) != nil && yaml.Unmarshal(b, &m) != nil {
			return false
		}
	}
	return true
}

// isHelmTemplate reports whether a YAML file is a chart template, which is
// checked only through its chart (its raw text is not YAML).
func isHelmTemplate(p string, data []byte) bool {
	return (strings.HasPrefix(p, "templates/") || strings.Contains(p, "/templates/")) && bytes.Contains(data, []byte("{{"))
}

// uncheckedKinds are the kinds of object no check of this package reads.
// Their documents are not decoded and chart templates that only make them
// are not rendered: on a charts tree that is most of the YAML (CRDs of a
// megabyte, Services, Secrets whose passwords are generated). A check
// that starts reading one of these kinds MUST remove it from this list
// (TestUncheckedKindsHaveNoChecks enforces it for the kinds tested).
var uncheckedKinds = map[string]bool{
	"CustomResourceDefinition": true, "Service": true, "Secret": true, "PersistentVolumeClaim": true,
	"PersistentVolume": true, "PodDisruptionBudget": true, "HorizontalPodAutoscaler": true,
	"VerticalPodAutoscaler": true, "ServiceMonitor": true, "PodMonitor": true, "PrometheusRule": true,
	"Certificate": true, "Issuer": true, "ClusterIssuer": true, "StorageClass": true, "PriorityClass": true,
	"APIService": true, "Endpoints": true, "EndpointSlice": true, "LimitRange": true, "ResourceQuota": true,
	"BackendConfig": true, "FrontendConfig": true, "ManagedCertificate": true, "Namespace": true,
}

// literalKind returns the kind a top-level kind line names, or "" when
// its value is not a plain name (a template expression, say).
func literalKind(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return v
}

// TemplateMayHoldChecked reports whether a chart template can render an
// object some check reads: false only when each of its documents names,
// on a top-level kind line, literally a kind in uncheckedKinds, its lines
// (actions left out) are plain YAML (see topLevel), and no line starts
// with an action that writes (an include, a value, tpl): what that writes
// may be a whole document. A template with no kind line (one that
// includes its whole manifest, or extraDeploy lists) or a templated kind
// may make anything and is rendered.
func TemplateMayHoldChecked(src []byte) bool {
	stripped, writesAtLineStart := stripActions(src)
	if writesAtLineStart {
		return true
	}
	named := false
	for doc := range yamlDocs(stripped) {
		kinds, plain := topLevel(doc)
		if !plain {
			return true
		}
		if len(kinds) == 0 {
			if hasContent(doc) {
				return true // a document this reading cannot name
			}
			continue
		}
		for _, v := range kinds {
			if k := literalKind(v); k == "" || !uncheckedKinds[k] {
				return true
			}
		}
		named = true
	}
	return !named
}

// hasContent reports whether a YAML document has a line other than
// blanks, comments and its "---" marker.
func hasContent(doc []byte) bool {
	for line := range bytes.Lines(doc) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' && !isDocStart(line) {
			return true
		}
	}
	return false
}

// stripActions returns a template's text with its {{ }} actions cut out
// (newlines kept), and whether a line starts with an action that writes
// output rather than one that only steers (if, range, end, a variable, a
// comment).
func stripActions(src []byte) ([]byte, bool) {
	if !bytes.Contains(src, []byte("{{")) {
		return src, false
	}
	out := make([]byte, 0, len(src))
	for {
		i := bytes.Index(src, []byte("{{"))
		if i < 0 {
			return append(out, src...), false
		}
		out = append(out, src[:i]...)
		j := bytes.Index(src[i:], []byte("}}"))
		if j < 0 {
			return out, true // not a template Helm would run; render it
		}
		action := src[i+2 : i+j]
		if atLineStart(out) && writes(action) {
			return out, true
		}
		out = append(out, bytes.Repeat([]byte{'\n'}, bytes.Count(action, []byte{'\n'}))...)
		src = src[i+j+2:]
	}
}

// atLineStart reports whether text ends a line: an action there writes at
// column 0, where a whole manifest (an include, extraDeploy) is written.
// An action further in may write a document too, after a newline of its
// own; that is left to rendering's other checks (README: Helm limits).
func atLineStart(text []byte) bool {
	return len(text) == 0 || text[len(text)-1] == '\n'
}

// declaration matches an action that declares or assigns variables
// ("$x := …", "$i, $e = …"), which writes nothing.
var declaration = regexp.MustCompile(`^\$\w*(?:\s*,\s*\$\w*)?\s*:?=`)

// writes reports whether an action's text may write lines at column 0:
// anything but a comment, a variable declaration, a control keyword or a
// pipeline that ends in indent or nindent.
func writes(action []byte) bool {
	a := bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimPrefix(action, []byte("-")), []byte("-")))
	if bytes.HasPrefix(a, []byte("/*")) || declaration.Match(a) {
		return false
	}
	n := 0
	for n < len(a) && a[n] >= 'a' && a[n] <= 'z' {
		n++
	}
	switch string(a[:n]) {
	case "if", "else", "end", "range", "with", "define", "break", "continue":
		return false
	}
	// What indent or nindent writes has no line at column 0.
	last := a[bytes.LastIndexByte(a, '|')+1:]
	if f := bytes.Fields(last); len(f) == 2 && (string(f[0]) == "nindent" || string(f[0]) == "indent") && f[1][0] >= '1' && f[1][0] <= '9' {
		return false
	}
	return true
}

// yamlDocs yields the documents of a YAML stream, split at "---" lines.
func yamlDocs(data []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		start := 0
		for i := 0; i < len(data); {
			j := bytes.IndexByte(data[i:], '\n')
			lineEnd := len(data)
			if j >= 0 {
				lineEnd = i + j + 1
			}
			if i > start && isDocStart(data[i:lineEnd]) {
				if !yield(data[start:i]) {
					return
				}
				start = i
			}
			i = lineEnd
		}
		yield(data[start:])
	}
}

func isDocStart(line []byte) bool {
	return bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || line[3] == ' ' || line[3] == '\n' || line[3] == '\r' || line[3] == '\t')
}

// dropUncheckedDocs blanks the documents of a multi-document YAML stream
// whose kind no check reads, keeping every newline so that line numbers of
// the rest do not move; the YAML decoder then skips them as empty. Only a
// plain document (see topLevel) with one top-level kind line is dropped.
// It returns data itself when there is nothing to drop.
func dropUncheckedDocs(data []byte) []byte {
	out, _ := dropUnchecked(data)
	return out
}

// dropUnchecked is dropUncheckedDocs that also reports whether what is
// left may hold a manifest: a top-level kind, or YAML that is not plain
// enough to tell without decoding it (topLevel). Both in the same pass.
func dropUnchecked(data []byte) (_ []byte, mayHold bool) {
	var out []byte
	start := 0 // start of the current document
	for doc := range yamlDocs(data) {
		drop := false
		ks, plain := topLevel(doc)
		if plain && len(ks) == 1 {
			k := literalKind(ks[0])
			drop = k != "" && uncheckedKinds[k]
		}
		mayHold = mayHold || !drop && (!plain || len(ks) > 0)
		switch {
		case drop && out == nil:
			out = append(make([]byte, 0, len(data)), data[:start]...)
			fallthrough
		case drop:
			out = append(out, bytes.Repeat([]byte{'\n'}, bytes.Count(doc, []byte{'\n'}))...)
		case out != nil:
			out = append(out, doc...)
		}
		start += len(doc)
	}
	if out == nil {
		return data, mayHold
	}
	return out, mayHold
}
