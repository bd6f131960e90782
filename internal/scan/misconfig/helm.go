package misconfig

import (
	"bytes"
	"context"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

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
// a template that [TemplateMayHoldChecked] says no check reads.
type ChartRenderer func(ctx context.Context, fsys fs.FS, dir string) (map[string]RenderedTemplate, error)

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
func helmChart(ctx context.Context, render ChartRenderer, fsys fs.FS, chartPath string, r *reporter) {
	dir := path.Dir(chartPath)
	if isVendoredSubchart(fsys, dir) {
		return // rendered through its parent, with the parent's values
	}
	rendered, err := render(ctx, fsys, dir)
	if err != nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(rendered)) {
		rt := rendered[name]
		sub := &reporter{f: &scan.File{Path: name, Data: dropUncheckedDocs([]byte(rt.Output)), Commit: r.f.Commit, Author: r.f.Author, Date: r.f.Date}, emit: func(fd scan.Finding) {
			line := 0
			if fd.Line >= 1 && fd.Line <= len(rt.Lines) {
				line = rt.Lines[fd.Line-1]
			}
			fd.Line, fd.Column = line, 0
			fd.Message += " [rendered with the chart's default values]"
			r.emit(fd)
		}}
		if hasTopKind(sub.f.Data) {
			kubernetes(sub.f.Data, sub)
		}
	}
}

// isVendoredSubchart reports whether dir is a chart under another chart's
// charts/ directory, which Helm renders only as part of its parent.
func isVendoredSubchart(fsys fs.FS, dir string) bool {
	parent := path.Dir(dir)
	if path.Base(parent) != "charts" {
		return false
	}
	_, err := fs.Stat(fsys, path.Join(path.Dir(parent), "Chart.yaml"))
	return err == nil
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

// topKinds returns the values of up to n top-level "kind:" lines of a
// YAML document ("kind:" at the start of a line), found with
// bytes.Index rather than a regexp: this runs over every YAML file.
func topKinds(doc []byte, n int) []string {
	var out []string
	for off := 0; len(out) < n; {
		i := bytes.Index(doc[off:], []byte("kind:"))
		if i < 0 {
			break
		}
		i += off
		off = i + len("kind:")
		if i > 0 && doc[i-1] != '\n' {
			continue
		}
		end := bytes.IndexByte(doc[off:], '\n')
		if end < 0 {
			end = len(doc) - off
		}
		v := string(doc[off : off+end])
		if c := strings.Index(v, " #"); c >= 0 {
			v = v[:c]
		}
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

// literalKind returns the kind a top-level kind line names, or "" when
// its value is not a plain name (a template expression, say).
func literalKind(v string) string {
	v = strings.Trim(v, `"'`)
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return ""
		}
	}
	return v
}

// TemplateMayHoldChecked reports whether a chart template can render an
// object some check reads: false only when every top-level kind line of
// the template names, literally, a kind in uncheckedKinds. A template
// with no kind line (one that includes its whole manifest, or extraDeploy
// lists) or a templated kind may make anything and is rendered.
func TemplateMayHoldChecked(src []byte) bool {
	ks := topKinds(src, 1<<20)
	if len(ks) == 0 {
		return true
	}
	for _, v := range ks {
		if k := literalKind(v); k == "" || !uncheckedKinds[k] {
			return true
		}
	}
	return false
}

// hasTopKind reports whether data has a top-level kind line, which every
// manifest has: most YAML (values files, CI configs) has none, and is
// then passed over without a regexp or a decoder reading all of it.
func hasTopKind(data []byte) bool { return len(topKinds(data, 1)) > 0 }

// dropUncheckedDocs blanks the documents of a multi-document YAML stream
// whose kind no check reads, keeping every newline so that line numbers of
// the rest do not move; the YAML decoder then skips them as empty. It
// returns data itself when there is nothing to drop.
func dropUncheckedDocs(data []byte) []byte {
	var out []byte
	start := 0 // start of the current document
	flush := func(end int) {
		doc := data[start:end]
		drop := false
		if ks := topKinds(doc, 2); len(ks) == 1 {
			k := literalKind(ks[0])
			drop = k != "" && uncheckedKinds[k]
		}
		if !drop {
			if out != nil {
				out = append(out, doc...)
			}
			return
		}
		if out == nil {
			out = append(make([]byte, 0, len(data)), data[:start]...)
		}
		for _, c := range doc {
			if c == '\n' {
				out = append(out, '\n')
			}
		}
	}
	for i := 0; i < len(data); {
		j := bytes.IndexByte(data[i:], '\n')
		lineEnd := len(data)
		if j >= 0 {
			lineEnd = i + j + 1
		}
		line := data[i:lineEnd]
		if i > start && bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || line[3] == ' ' || line[3] == '\n' || line[3] == '\r' || line[3] == '\t') {
			flush(i)
			start = i
		}
		i = lineEnd
	}
	flush(len(data))
	if out == nil {
		return data
	}
	return out
}
