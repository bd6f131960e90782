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
// default values and returns each rendered template by its path in fsys.
// It MUST honour ctx and MUST bound its output: a chart is untrusted input.
type ChartRenderer func(ctx context.Context, fsys fs.FS, dir string) (map[string]string, error)

// helmChart renders the chart whose Chart.yaml is at chartPath in fsys and
// checks each rendered manifest. Findings point at the template file with
// line 0 (a rendered line has no exact template line).
func helmChart(ctx context.Context, render ChartRenderer, fsys fs.FS, chartPath string, r *reporter) {
	dir := path.Dir(chartPath)
	rendered, err := render(ctx, fsys, dir)
	if err != nil {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(rendered)) {
		sub := &reporter{f: &scan.File{Path: name, Data: []byte(rendered[name]), Commit: r.f.Commit, Author: r.f.Author, Date: r.f.Date}, emit: func(fd scan.Finding) {
			fd.Line, fd.Column = 0, 0
			fd.Message += " [rendered with the chart's default values]"
			r.emit(fd)
		}}
		kubernetes(sub.f.Data, sub)
	}
}

// isHelmTemplate reports whether a YAML file is a chart template, which is
// checked only through its chart (its raw text is not YAML).
func isHelmTemplate(p string, data []byte) bool {
	return (strings.HasPrefix(p, "templates/") || strings.Contains(p, "/templates/")) && bytes.Contains(data, []byte("{{"))
}
