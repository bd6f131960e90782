package scancli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

// renderHelmChart is the [misconfig.ChartRenderer] `interlock scan` uses:
// Go text/template with Sprig's functions (the library Helm itself uses)
// and Helm's own few (include, tpl, toYaml, required, lookup…). Helm's SDK
// would render more faithfully, but it links the Kubernetes client
// libraries (tens of MiB) for what a scanner needs: what the chart deploys
// with its defaults. Subcharts under charts/ are not rendered; library
// charts' helpers are loaded. It lives here, not in internal/scan, because
// Sprig reaches database/sql/driver (see sevenzip.go for the same reason).

// Chart limits: a template that renders more than this, or nests include
// deeper, is abandoned (a chart is not trusted input).
const (
	maxRenderedBytes = 4 << 20
	maxIncludeDepth  = 64
	maxChartFiles    = 2000
	maxLoop          = 100000
)

// bigRange finds `range N` over an integer literal too large to iterate:
// text/template cannot be interrupted, so such templates are not run.
var bigRange = regexp.MustCompile(`range\s+(?:\$\w+\s*:?=\s*)?[0-9]{6,}`)

// renderChart renders every template of the chart in dir, keyed by the
// template's path (relative to the scan root).
func renderHelmChart(ctx context.Context, fsys fs.FS, dir string) (map[string]string, error) {
	join := func(p string) string {
		if dir == "." || dir == "" {
			return p
		}
		return dir + "/" + p
	}
	meta := map[string]any{}
	if b, err := fs.ReadFile(fsys, join("Chart.yaml")); err != nil {
		return nil, err
	} else if err := yaml.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	values := map[string]any{}
	if b, err := fs.ReadFile(fsys, join("values.yaml")); err == nil {
		if err := yaml.Unmarshal(b, &values); err != nil {
			return nil, fmt.Errorf("values.yaml: %w", err)
		}
	}
	chart := map[string]any{}
	for k, v := range meta {
		if k != "" {
			chart[strings.ToUpper(k[:1])+k[1:]] = v
		}
	}
	name, _ := chart["Name"].(string)

	root := template.New(name)
	var files []string
	err := fs.WalkDir(fsys, join("templates"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if len(files) > maxChartFiles {
			return errors.New("too many templates")
		}
		if !d.IsDir() {
			switch path.Ext(p) {
			case ".yaml", ".yml", ".tpl", ".txt", ".json":
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Library charts' helpers (bitnami's "common", say): from charts/ when
	// vendored, else from a sibling directory of the same name, as in a
	// monorepo of charts.
	var helpers []string
	deps, _ := meta["dependencies"].([]any)
	for _, d := range deps {
		dm, _ := d.(map[string]any)
		dep, _ := dm["name"].(string)
		if dep == "" || strings.ContainsAny(dep, "/\\") || dep == ".." {
			continue
		}
		for _, cand := range []string{join("charts/" + dep + "/templates"), path.Join(path.Dir(dir), dep, "templates")} {
			if !fs.ValidPath(cand) {
				continue
			}
			found, _ := fs.Glob(fsys, cand+"/_*.tpl")
			if len(found) > 0 {
				helpers = append(helpers, found...)
				break
			}
		}
	}
	depth := 0
	funcs := helmFuncs()
	funcs["include"] = func(name string, data any) (string, error) {
		if depth++; depth > maxIncludeDepth {
			return "", errors.New("include nested too deep")
		}
		defer func() { depth-- }()
		if err := ctx.Err(); err != nil {
			return "", err
		}
		var b bytes.Buffer
		if err := root.ExecuteTemplate(&limitedBuffer{b: &b}, name, data); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	// tpl templates are parsed once into the chart's set (Helm clones the
	// set per call, which costs seconds on charts that call tpl a lot).
	tpls := map[string]*template.Template{}
	funcs["tpl"] = func(text string, data any) (string, error) {
		if depth++; depth > maxIncludeDepth {
			return "", errors.New("tpl nested too deep")
		}
		defer func() { depth-- }()
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if !strings.Contains(text, "{{") {
			return text, nil // most values passed to tpl hold no template
		}
		t, ok := tpls[text]
		if !ok {
			var err error
			if t, err = root.New(fmt.Sprintf("tpl#%d", len(tpls))).Parse(text); err != nil {
				return "", err
			}
			tpls[text] = t
		}
		var b bytes.Buffer
		if err := t.Execute(&limitedBuffer{b: &b}, data); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	root.Funcs(funcs).Option("missingkey=zero")
	for _, f := range helpers {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			continue
		}
		// A library chart (bitnami's common, say) serves every chart of a
		// monorepo: parse its helpers once.
		trees, err := parsedHelpers(f, b, funcs)
		if err != nil {
			continue
		}
		for name, tree := range trees {
			_, _ = root.AddParseTree(name, tree)
		}
	}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil || bigRange.Match(b) {
			continue
		}
		// Helm names templates "<chart>/templates/…".
		if _, err := root.New(name + "/" + strings.TrimPrefix(f, join(""))).Parse(string(b)); err != nil {
			continue // a template Helm would refuse: skip it
		}
	}
	data := map[string]any{
		"Values":       values,
		"Chart":        chart,
		"Release":      map[string]any{"Name": "release-name", "Namespace": "default", "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Capabilities": map[string]any{"KubeVersion": map[string]any{"Version": "v1.33.0", "Major": "1", "Minor": "33", "GitVersion": "v1.33.0"}, "APIVersions": apiVersions{}, "HelmVersion": map[string]any{"Version": "v3.18.0"}},
		"Files":        chartFiles{fsys: fsys, dir: dir},
	}
	out := map[string]string{}
	for _, f := range files {
		base := path.Base(f)
		if strings.HasPrefix(base, "_") || (path.Ext(f) != ".yaml" && path.Ext(f) != ".yml") {
			continue
		}
		tname := name + "/" + strings.TrimPrefix(f, join(""))
		if root.Lookup(tname) == nil {
			continue
		}
		data["Template"] = map[string]any{"Name": tname, "BasePath": name + "/templates"}
		var b bytes.Buffer
		if ctx.Err() != nil {
			break
		}
		if err := root.ExecuteTemplate(&limitedBuffer{b: &b}, tname, data); err != nil {
			continue
		}
		out[f] = strings.ReplaceAll(b.String(), "<no value>", "")
	}
	return out, nil
}

// helperCache holds parsed library-chart helpers by content.
// Parse trees are not modified by execution, so charts share them.
var helperCache sync.Map // string -> map[string]*parse.Tree

func parsedHelpers(name string, src []byte, funcs template.FuncMap) (map[string]*parse.Tree, error) {
	// Keyed by content: a monorepo vendors the same library into every
	// chart's charts/ directory.
	sum := sha256.Sum256(src)
	key := string(sum[:])
	if v, ok := helperCache.Load(key); ok {
		return v.(map[string]*parse.Tree), nil
	}
	trees, err := parse.Parse(name, string(src), "", "", funcs, builtinNames)
	if err != nil {
		return nil, err
	}
	helperCache.Store(key, trees)
	return trees, nil
}

// builtinNames lets parse.Parse accept text/template's built-in functions.
var builtinNames = map[string]any{
	"and": true, "call": true, "html": true, "index": true, "slice": true, "js": true, "len": true, "not": true,
	"or": true, "print": true, "printf": true, "println": true, "urlquery": true,
	"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "ne": true,
}

// helmFuncs is Sprig's function map without the functions that read the
// environment (a rendered chart must not carry the scanner's secrets),
// plus Helm's own conversion functions.
func helmFuncs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	// Key and certificate generation costs seconds per call (RSA) and the
	// result is random anyway: render a placeholder instead.
	cert := func(...any) map[string]any {
		return map[string]any{"Cert": "interlock-placeholder-certificate", "Key": "interlock-placeholder-key"}
	}
	for _, n := range []string{"genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey", "buildCustomCert"} {
		f[n] = cert
	}
	f["genPrivateKey"] = func(string) string { return "interlock-placeholder-key" }
	// Functions that allocate in proportion to an argument are capped, so
	// a chart cannot make the scanner allocate gigabytes (until 1e9).
	capped := func(n int) error {
		if n > maxLoop {
			return fmt.Errorf("count %d over the renderer's limit of %d", n, maxLoop)
		}
		return nil
	}
	until, untilStep, repeat := f["until"].(func(int) []int), f["untilStep"].(func(int, int, int) []int), f["repeat"].(func(int, string) string)
	f["until"] = func(n int) ([]int, error) {
		if err := capped(n); err != nil {
			return nil, err
		}
		return until(n), nil
	}
	seq := f["seq"].(func(...int) string)
	f["seq"] = func(p ...int) (string, error) {
		for _, n := range p {
			if err := capped(max(n, -n)); err != nil {
				return "", err
			}
		}
		return seq(p...), nil
	}
	f["untilStep"] = func(start, stop, step int) ([]int, error) {
		if err := capped(stop - start); err != nil || step == 0 {
			return nil, err
		}
		return untilStep(start, stop, step), nil
	}
	f["repeat"] = func(n int, s string) (string, error) {
		if err := capped(n * max(1, len(s)) / 64); err != nil {
			return "", err
		}
		return repeat(n, s), nil
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randNumeric", "randAscii"} {
		fn := f[name].(func(int) string)
		f[name] = func(n int) (string, error) {
			if err := capped(n); err != nil {
				return "", err
			}
			return fn(n), nil
		}
	}
	f["toYaml"] = func(v any) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	f["fromYaml"] = func(s string) map[string]any {
		m := map[string]any{}
		_ = yaml.Unmarshal([]byte(s), &m)
		return m
	}
	f["fromYamlArray"] = func(s string) []any {
		var a []any
		_ = yaml.Unmarshal([]byte(s), &a)
		return a
	}
	f["toJson"] = f["toRawJson"]
	f["required"] = func(msg string, v any) (any, error) {
		if v == nil || v == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	f["lookup"] = func(...string) map[string]any { return map[string]any{} }
	return f
}

// apiVersions answers .Capabilities.APIVersions.Has: every API is
// assumed present, as on a current cluster.
type apiVersions []string

// Has implements Helm's .Capabilities.APIVersions.Has.
func (apiVersions) Has(string) bool { return true }

// chartFiles answers .Files.Get for files inside the chart.
type chartFiles struct {
	fsys fs.FS
	dir  string
}

// Get returns a chart file's content, or "" when there is none.
func (c chartFiles) Get(name string) string {
	p := path.Join(c.dir, name)
	if !fs.ValidPath(p) {
		return ""
	}
	b, err := fs.ReadFile(c.fsys, p)
	if err != nil || len(b) > maxRenderedBytes {
		return ""
	}
	return string(b)
}

// limitedBuffer stops a runaway template.
type limitedBuffer struct{ b *bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > maxRenderedBytes {
		return 0, errors.New("rendered template too large")
	}
	return l.b.Write(p)
}
