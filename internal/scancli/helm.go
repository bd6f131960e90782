package scancli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing/fstest"
	"text/template"
	"text/template/parse"

	"github.com/BurntSushi/toml"
	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan/misconfig"
)

// renderHelmChart is the [misconfig.ChartRenderer] `interlock scan` uses:
// Go text/template with Sprig's functions (the library Helm itself uses)
// and Helm's own few (include, tpl, toYaml, required, lookup…). Helm's SDK
// would render more faithfully, but it links the Kubernetes client
// libraries (tens of MiB) for what a scanner needs: what the chart deploys
// with its defaults. Subcharts under charts/ (directories or packed
// .tgz) are rendered with their values coalesced with the parent's;
// library charts' helpers are loaded. It lives here, not in internal/scan, because
// Sprig reaches database/sql/driver (see sevenzip.go for the same reason).

// Chart limits: a template that renders more than this, or nests include
// deeper, is abandoned (a chart is not trusted input).
const (
	maxRenderedBytes = 4 << 20
	maxIncludeDepth  = 64
	maxChartFiles    = 2000
	maxLoop          = 100000
)

// maxSteps bounds the loop iterations and template calls (each counted
// as callSteps: a call costs more) of one template's rendering:
// text/template cannot be interrupted, so nested ranges or a template
// that calls itself twice would otherwise run for hours (countLoops). The
// charts of a bitnami checkout need under 2,000 per template.
const (
	maxSteps  = 200_000
	callSteps = 8
)

// maxSubchartDepth bounds charts/ nesting, and maxCharts the charts of
// one tree rendered, aliased copies included (a chart is not trusted
// input).
const (
	maxSubchartDepth = 5
	maxCharts        = 256
)

// helmChart is one chart of the tree being rendered: the chart scanned
// or one of its subcharts under charts/.
type helmChart struct {
	fsys    fs.FS  // the scanned tree, or a packed subchart's contents
	archive string // path of the packed subchart (.tgz) in the scanned tree, or ""
	dir     string // directory in fsys
	prefix  string // Helm's template name prefix: "parent" or "parent/charts/sub"
	meta    map[string]any
	values  map[string]any
	files   []string // template files, paths in fsys
	subs    []*helmChart
}

// display returns the path findings name for p, a path in c.fsys: a
// member of a packed subchart is "charts/db-1.0.0.tgz!db/templates/x.yaml",
// as archive members are everywhere in a scan.
func (c *helmChart) display(p string) string {
	if c.archive == "" {
		return p
	}
	return c.archive + "!" + p
}

// join returns p inside the chart's directory.
func (c *helmChart) join(p string) string {
	if c.dir == "." || c.dir == "" {
		return p
	}
	return c.dir + "/" + p
}

// loadHelmChart reads the chart in dir: Chart.yaml, values.yaml (each
// parsed once per scan: a vendored subchart is rendered only through its
// parent), its template list and its subcharts.
func loadHelmChart(fsys fs.FS, archive, dir, prefix string, depth int, budget *chartBudget) (*helmChart, error) {
	c := &helmChart{fsys: fsys, archive: archive, dir: dir, meta: map[string]any{}, values: map[string]any{}}
	b, err := fs.ReadFile(fsys, c.join("Chart.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(b, &c.meta); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	// A Helm 2 style chart (apiVersion v1) lists its dependencies, with
	// their conditions and aliases, in requirements.yaml.
	if _, ok := c.meta["dependencies"]; !ok {
		if b, err := fs.ReadFile(fsys, c.join("requirements.yaml")); err == nil {
			var req struct {
				Dependencies []any `yaml:"dependencies"`
			}
			if yaml.Unmarshal(b, &req) == nil && len(req.Dependencies) > 0 {
				c.meta["dependencies"] = req.Dependencies
			}
		}
	}
	name, _ := c.meta["name"].(string)
	if prefix == "" {
		prefix = name
	}
	c.prefix = prefix
	if b, err := fs.ReadFile(fsys, c.join("values.yaml")); err == nil {
		if err := yaml.Unmarshal(blankCommentLines(b), &c.values); err != nil {
			// Blanking is only a shortcut: values it cannot read are
			// read as written, as Helm reads them.
			c.values = map[string]any{}
			if err := yaml.Unmarshal(b, &c.values); err != nil {
				return nil, fmt.Errorf("values.yaml: %w", err)
			}
		}
		if c.values == nil {
			c.values = map[string]any{}
		}
	}
	err = fs.WalkDir(fsys, c.join("templates"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if budget.files--; budget.files < 0 {
			return overLimit("more than %d files in the chart", maxChartFiles)
		}
		// Helm renders every file under templates/ and deploys what
		// renders from each, whatever its extension, but partials (_*)
		// and NOTES.txt.
		if !d.IsDir() {
			c.files = append(c.files, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if depth >= maxSubchartDepth {
		if ents, _ := fs.ReadDir(fsys, c.join("charts")); len(ents) > 0 && budget.limit == nil {
			budget.limit = overLimit("subcharts nested deeper than %d", maxSubchartDepth)
		}
		return c, nil
	}
	// Subcharts vendored as directories, or packed as the .tgz archives
	// helm dependency build leaves.
	ents, _ := fs.ReadDir(fsys, c.join("charts"))
	for _, e := range ents {
		var sub *helmChart
		var err error
		switch p := c.join("charts/" + e.Name()); {
		case e.IsDir():
			if _, err := fs.Stat(fsys, p+"/Chart.yaml"); err != nil {
				continue
			}
			sub, err = loadHelmChart(fsys, archive, p, prefix+"/charts/"+e.Name(), depth+1, budget)
		case strings.HasSuffix(e.Name(), ".tgz") || strings.HasSuffix(e.Name(), ".tar.gz"):
			// A packed chart may hold packed subcharts of its own (helm
			// package keeps charts/*.tgz): their members are named
			// outer.tgz!outer/charts/inner.tgz!inner/….
			var mem fs.FS
			var sdir string
			shown := p
			if archive != "" {
				shown = archive + "!" + p
			}
			if mem, sdir, err = unpackChart(fsys, p, shown, budget); err == nil {
				sub, err = loadHelmChart(mem, shown, sdir, "", depth+1, budget)
			}
			if sub != nil {
				name, _ := sub.meta["name"].(string)
				sub.prefix = prefix + "/charts/" + name
			}
		default:
			continue
		}
		if errors.Is(err, misconfig.ErrChartLimit) {
			// The rest of the tree is rendered; the chart is reported.
			if budget.limit == nil {
				budget.limit = err
			}
			continue
		}
		if err != nil || sub == nil {
			continue // a broken subchart does not hide its parent
		}
		c.subs = append(c.subs, sub)
	}
	return c, nil
}

// overLimit returns an error that says which limit a chart went past,
// wrapping misconfig.ErrChartLimit so that the scan reports the chart as
// not fully checked.
func overLimit(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{misconfig.ErrChartLimit}, args...)...)
}

// maxPackedChartBytes bounds what a packed subchart may unpack to.
const maxPackedChartBytes = 32 << 20

// chartBudget is what the charts of one tree may still read: files
// (templates and packed members) and unpacked bytes (packed subcharts,
// nested ones included).
type chartBudget struct {
	files int
	bytes int64
	limit error // the first limit a subchart went past
}

// maxTreeUnpackedBytes bounds what all the packed subcharts of one tree
// may unpack to, entries passed over included.
const maxTreeUnpackedBytes = 8 * maxPackedChartBytes

// unpackChart reads a packed chart (a gzipped tar whose top directory
// holds Chart.yaml) into memory and returns it with that directory. Only
// regular files are kept; sizes and counts are bounded, as for any
// archive the scanner opens, and going past a bound is a limit error
// (the chart is reported as not fully checked), never a silent skip.
// shown is p as findings name it.
func unpackChart(fsys fs.FS, p, shown string, budget *chartBudget) (fs.FS, string, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(&boundedReader{r: f, left: maxPackedChartBytes, name: shown})
	if err != nil {
		return nil, "", err
	}
	// fstest.MapFS is the standard library's in-memory fs.FS (the
	// package does not import testing).
	mem := fstest.MapFS{}
	total, top := 0, ""
	// Everything unpacked counts, entries passed over included: a
	// gigabyte of zeros in a skipped entry is a bomb all the same.
	unpacked := &boundedReader{r: gz, left: min(2*maxPackedChartBytes, budget.bytes), name: shown}
	start := unpacked.left
	defer func() { budget.bytes -= start - unpacked.left }()
	tr := tar.NewReader(unpacked)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", err
		}
		if budget.files--; budget.files < 0 {
			return nil, "", overLimit("more than %d files in the chart", maxChartFiles)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag != tar.TypeReg || !fs.ValidPath(name) {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, maxPackedChartBytes-int64(total)+1))
		if err != nil {
			return nil, "", err
		}
		if total += len(data); total > maxPackedChartBytes {
			return nil, "", overLimit("packed subchart %s unpacks to more than %d bytes", shown, maxPackedChartBytes)
		}
		mem[name] = &fstest.MapFile{Data: data, Mode: 0o444}
		if dir, base := path.Split(name); base == "Chart.yaml" && strings.Count(dir, "/") == 1 {
			top = strings.TrimSuffix(dir, "/")
		}
	}
	if top == "" {
		return nil, "", errors.New("no Chart.yaml at the top of the packed chart")
	}
	return mem, top, nil
}

// boundedReader fails with a limit error once more than left bytes have
// been read through it.
type boundedReader struct {
	r    io.Reader
	left int64
	name string
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, overLimit("packed subchart %s is larger than the renderer reads", b.name)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// blankCommentLines blanks values.yaml's comment lines before it is
// parsed (misconfig.BlankYAMLComments).
func blankCommentLines(src []byte) []byte { return misconfig.BlankYAMLComments(src) }

// chartValues is what .Chart holds: Chart.yaml with capitalised keys.
func (c *helmChart) chartValues() map[string]any {
	chart := map[string]any{}
	for k, v := range c.meta {
		if k != "" {
			chart[strings.ToUpper(k[:1])+k[1:]] = v
		}
	}
	return chart
}

// enabledSubcharts returns c's subcharts that Helm would render, with
// their values coalesced the way Helm does: the subchart's values.yaml,
// overridden by the parent's section named after the subchart (its alias
// when it has one), with the parent's globals over the subchart's; the
// parent's section becomes those values, so that the parent's templates
// see the subchart's defaults. A
// chart listed under several aliases is rendered once per alias. As in
// Helm, a dependency is left out when its tags are all false, unless its
// condition (the first of its comma-separated paths that holds a boolean
// in the parent's values) is true; a false condition leaves it out
// whatever its tags. Library charts are left out.
func (c *helmChart) enabledSubcharts() []*helmChart {
	deps, _ := c.meta["dependencies"].([]any)
	var out []*helmChart
	for _, sub := range c.subs {
		subName, _ := sub.meta["name"].(string)
		if t, _ := sub.meta["type"].(string); t == "library" {
			continue
		}
		var listed []map[string]any
		for _, d := range deps {
			if dm, _ := d.(map[string]any); dm != nil && dm["name"] == subName {
				listed = append(listed, dm)
			}
		}
		if len(listed) == 0 {
			listed = []map[string]any{{}} // in charts/ but not listed: rendered
		}
		for _, dm := range listed {
			section := subName
			if a, _ := dm["alias"].(string); a != "" {
				section = a
			}
			if !c.dependencyEnabled(dm) {
				continue
			}
			vals := coalesceValues(sub.values, asMap(c.values[section]))
			global := coalesceValues(asMap(sub.values["global"]), asMap(c.values["global"]))
			vals["global"] = global
			// The parent sees the subchart's values, defaults included,
			// as .Values.<section>, as in Helm.
			c.values[section] = vals
			s := *sub
			s.values = vals
			if section != subName {
				s.meta = maps.Clone(sub.meta)
				s.meta["name"] = section
			}
			out = append(out, &s)
		}
	}
	return out
}

// dependencyEnabled applies a Chart.yaml dependency's tags, then its
// condition, against c's values, in Helm's order.
func (c *helmChart) dependencyEnabled(dm map[string]any) bool {
	enabled := true
	if tags, _ := dm["tags"].([]any); len(tags) > 0 {
		tagValues, _ := c.values["tags"].(map[string]any)
		set, on := false, false
		for _, t := range tags {
			if v, ok := tagValues[fmt.Sprint(t)].(bool); ok {
				set, on = true, on || v
			}
		}
		if set && !on {
			enabled = false
		}
	}
	if cond, _ := dm["condition"].(string); cond != "" {
		for p := range strings.SplitSeq(cond, ",") {
			if v, ok := valueAt(c.values, strings.TrimSpace(p)).(bool); ok {
				return v
			}
		}
	}
	return enabled
}

// valueAt follows a dotted path ("postgresql.enabled") through values.
func valueAt(values map[string]any, p string) any {
	var cur any = values
	for k := range strings.SplitSeq(p, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// coalesceValues returns base overridden by over, maps merged key by key
// and a null in over deleting the key, as Helm coalesces values. Neither
// argument is modified.
func coalesceValues(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	maps.Copy(out, base)
	for k, v := range over {
		if v == nil {
			delete(out, k)
			continue
		}
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = coalesceValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// libraryHelpers returns the helper files of c's library dependencies
// (bitnami's "common", say): from charts/ when vendored, else from a
// sibling directory of the same name, as in a monorepo of charts. Every
// _*.tpl under its templates/ is a helper.
func (c *helmChart) libraryHelpers() []string {
	fsys := c.fsys
	var helpers []string
	deps, _ := c.meta["dependencies"].([]any)
	for _, d := range deps {
		dm, _ := d.(map[string]any)
		dep, _ := dm["name"].(string)
		if dep == "" || strings.ContainsAny(dep, "/\\") || dep == ".." {
			continue
		}
		for _, cand := range []string{c.join("charts/" + dep + "/templates"), path.Join(path.Dir(c.dir), dep, "templates")} {
			if !fs.ValidPath(cand) {
				continue
			}
			// Helpers live in subdirectories too (common's
			// validations/_validations.tpl).
			var found []string
			_ = fs.WalkDir(fsys, cand, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "_") && path.Ext(p) == ".tpl" && len(found) < maxChartFiles {
					found = append(found, p)
				}
				return nil
			})
			if len(found) > 0 {
				helpers = append(helpers, found...)
				break
			}
		}
	}
	return helpers
}

// renderHelmChart renders the templates of the chart in dir, and of its
// enabled subcharts, keyed by the template's path (relative to the scan
// root). Templates that can only make objects no check reads
// ([misconfig.TemplateMayHoldChecked]) are neither parsed nor run, unless
// they define named templates.
func renderHelmChart(ctx context.Context, fsys fs.FS, dir string) (map[string]misconfig.RenderedTemplate, error) {
	budget := chartBudget{files: maxChartFiles, bytes: maxTreeUnpackedBytes}
	var top *helmChart
	var err error
	if archive, member, packed := strings.Cut(dir, "!"); packed {
		// A packed chart in the scanned tree (misconfig.isPackedChart):
		// rendered from the archive, its findings named as its members.
		mem, sdir, err := unpackChart(fsys, archive, archive, &budget)
		if err != nil {
			return nil, err
		}
		if sdir != member {
			return nil, fmt.Errorf("%s: the chart is %s, not %s", archive, sdir, member)
		}
		top, err = loadHelmChart(mem, archive, sdir, "", 0, &budget)
		if err != nil {
			return nil, err
		}
	} else if top, err = loadHelmChart(fsys, "", dir, "", 0, &budget); err != nil {
		return nil, err
	}
	// Every chart of the tree with the values it renders with: the
	// parent, then its enabled subcharts, recursively.
	charts := []*helmChart{top}
	subsOf := map[*helmChart][]*helmChart{}
	limit := budget.limit // the first limit the chart went past
	for i := 0; i < len(charts); i++ {
		subs := charts[i].enabledSubcharts()
		if len(charts)+len(subs) > maxCharts {
			// Rendered as far as the limit goes, and reported.
			subs = subs[:max(0, maxCharts-len(charts))]
			if limit == nil {
				limit = overLimit("more than %d charts (subcharts and their aliases) in one tree", maxCharts)
			}
		}
		subsOf[charts[i]] = subs
		charts = append(charts, subs...)
	}

	root := template.New(top.prefix)
	lazy := map[string]string{} // template name -> source, parsed on first include
	depth := 0
	funcs := helmFuncs()
	steps := 0 // loop iterations and template calls of the template being rendered
	step := func(n int) error {
		if steps += n; steps > maxSteps {
			return overLimit("a template loops or calls templates more than %d times", maxSteps)
		}
		return nil
	}
	funcs[loopFunc] = func(v any) (any, error) {
		n := 1
		switch rv := reflect.ValueOf(v); rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			n = int(min(rv.Int(), maxSteps+1))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			n = int(min(rv.Uint(), maxSteps+1))
		case reflect.Slice, reflect.Array, reflect.Map, reflect.String:
			n = rv.Len()
		}
		if n > maxLoop {
			return nil, overLimit("a range over %d items, over the renderer's limit of %d", n, maxLoop)
		}
		return v, step(max(n, 1))
	}
	funcs[callFunc] = func(v any) (any, error) { return v, step(callSteps) }
	// consulted records that a template asked about the cluster or the
	// release (lookup, .Release.IsUpgrade…): it is then rendered a second
	// time as an upgrade of a release on a cluster where lookup finds
	// things, so that what only an upgrade or an existing object renders is
	// checked too.
	consulted, upgrade := false, false
	funcs["lookup"] = func(apiVersion, kind, namespace, name string) map[string]any {
		consulted = true
		if !upgrade {
			return map[string]any{}
		}
		obj := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name, "namespace": namespace}, "data": map[string]any{}, "spec": map[string]any{}}
		if name == "" {
			return map[string]any{"apiVersion": apiVersion, "kind": kind + "List", "items": []any{obj}}
		}
		return obj
	}
	funcs["include"] = func(name string, data any) (string, error) {
		if err := step(callSteps); err != nil {
			return "", err
		}
		if depth++; depth > maxIncludeDepth {
			return "", overLimit("include nested deeper than %d", maxIncludeDepth)
		}
		defer func() { depth-- }()
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if src, ok := lazy[name]; ok {
			// A template file no check reads (a Secret, a Service)
			// included whole, as checksum annotations do.
			delete(lazy, name)
			if _, err := parseInto(root, name, src, funcs); err != nil {
				return "", err
			}
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
		if err := step(callSteps); err != nil {
			return "", err
		}
		if depth++; depth > maxIncludeDepth {
			return "", overLimit("tpl nested deeper than %d", maxIncludeDepth)
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
			if t, err = parseInto(root, fmt.Sprintf("tpl#%d", len(tpls)), text, funcs); err != nil {
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

	// Library helpers first, then subcharts' templates, deepest first,
	// then the parent's, so that the parent's definitions win as in Helm.
	seenHelper := map[string]bool{}
	for _, c := range slices.Backward(charts) {
		for _, f := range c.libraryHelpers() {
			if seenHelper[c.display(f)] {
				continue
			}
			seenHelper[c.display(f)] = true
			b, err := fs.ReadFile(c.fsys, f)
			if err != nil {
				continue
			}
			// A library chart (bitnami's common, say) serves every chart
			// of a monorepo: parse its helpers once per scan.
			trees, err := parsedHelpers(f, b, funcs)
			if err != nil {
				continue
			}
			for name, tree := range trees {
				_, _ = root.AddParseTree(name, tree)
			}
		}
	}
	type job struct {
		c     *helmChart
		file  string
		tname string
		src   string
	}
	var jobs []job
	parsed := map[string]bool{} // charts are shared between enabled copies
	for _, c := range slices.Backward(charts) {
		if parsed[c.display(c.dir)] {
			continue
		}
		parsed[c.display(c.dir)] = true
		for _, f := range c.files {
			base := path.Base(f)
			run := !strings.HasPrefix(base, "_") && !strings.HasSuffix(base, "NOTES.txt")
			b, err := fs.ReadFile(c.fsys, f)
			if err != nil {
				continue
			}
			if run && !misconfig.TemplateMayHoldChecked(b) {
				run = false
			}
			// Helm names templates "<chart>/templates/…".
			tname := c.prefix + "/" + strings.TrimPrefix(f, c.join(""))
			if !run && !strings.HasPrefix(base, "_") && !bytes.Contains(b, []byte("define")) {
				// No check reads what it makes and it defines nothing:
				// parsed only if another template includes it.
				lazy[tname] = string(b)
				continue
			}
			if run && !bytes.Contains(b, []byte("define")) {
				// Parsed when run (or included), unless its enclosing
				// {{ if }} is false with the chart's values: a third of
				// a chart's templates (ingress, metrics, autoscaling…)
				// are off by default.
				lazy[tname] = string(b)
				jobs = append(jobs, job{c: c, file: f, tname: tname, src: string(b)})
				continue
			}
			if _, err := parseInto(root, tname, string(b), funcs); err != nil {
				continue // a template Helm would refuse: skip it
			}
			if run {
				jobs = append(jobs, job{c: c, file: f, tname: tname, src: string(b)})
			}
		}
	}
	release := helmRelease{consulted: &consulted}
	capabilities := map[string]any{"KubeVersion": map[string]any{"Version": "v1.33.0", "Major": "1", "Minor": "33", "GitVersion": "v1.33.0"}, "APIVersions": apiVersions{}, "HelmVersion": map[string]any{"Version": "v3.18.0"}}
	out := map[string]misconfig.RenderedTemplate{}
	for _, c := range charts {
		data := map[string]any{
			"Values":       c.values,
			"Chart":        c.chartValues(),
			"Release":      release,
			"Capabilities": capabilities,
			"Files":        chartFiles{fsys: c.fsys, dir: c.dir},
		}
		// .Subcharts (Helm 3.6): each enabled subchart's own top-level
		// objects, by name (its alias when it has one).
		subcharts := map[string]any{}
		for _, sub := range subsOf[c] {
			name, _ := sub.meta["name"].(string)
			subcharts[name] = map[string]any{"Values": sub.values, "Chart": sub.chartValues(), "Release": release, "Capabilities": capabilities, "Files": chartFiles{fsys: sub.fsys, dir: sub.dir}}
		}
		data["Subcharts"] = subcharts
		for _, j := range jobs {
			if j.c.display(j.c.dir) != c.display(c.dir) {
				continue
			}
			if ctx.Err() != nil {
				return out, nil
			}
			data["Template"] = map[string]any{"Name": j.tname, "BasePath": c.prefix + "/templates"}
			steps = 0
			if src, ok := lazy[j.tname]; ok {
				if g := topGuard(src); g != "" && !guardHolds(root, g, data) {
					continue // renders nothing with these values
				}
				delete(lazy, j.tname)
				if _, err := parseInto(root, j.tname, src, funcs); err != nil {
					continue // a template Helm would refuse: skip it
				}
			}
			t := root.Lookup(j.tname)
			if t == nil {
				continue
			}
			var rt misconfig.RenderedTemplate
			consulted = false
			for _, upgrade = range []bool{false, true} {
				if upgrade && !consulted {
					break
				}
				data["Release"] = helmRelease{upgrade: upgrade, consulted: &consulted}
				var w *lineWriter
				var err error
				for try := 0; ; try++ {
					steps = 0
					w = newLineWriter(t.Tree, j.src)
					if err = t.Execute(w, data); err == nil || try == maxFills || !c.fillMissingDependency(err) {
						break
					}
				}
				if err != nil {
					if limit == nil && errors.Is(err, misconfig.ErrChartLimit) {
						limit = err
					}
					continue
				}
				r := misconfig.RenderedTemplate{Output: strings.ReplaceAll(w.b.String(), "<no value>", ""), Lines: w.lines}
				if rt.Output != "" && r.Output != rt.Output {
					r = appendRendered(rt, r)
				} else if r.Output == rt.Output {
					continue
				}
				rt = r
			}
			upgrade = false
			data["Release"] = release
			if rt.Output == "" {
				continue
			}
			if prev, ok := out[c.display(j.file)]; ok {
				// The same template rendered for another alias of its chart.
				rt = appendRendered(prev, rt)
			}
			out[c.display(j.file)] = rt
		}
	}
	return out, limit
}

// maxFills bounds the re-renderings of one template for the values of
// dependencies that are not vendored (fillMissingDependency).
const maxFills = 16

// missingValue finds, in a template error, the values path whose lack
// stopped it: a field read on nothing, or nothing where a string was
// needed.
var missingValue = regexp.MustCompile(`at <\$?\.Values((?:\.\w+)+)>: (?:nil pointer evaluating interface \{\}\.\w+|wrong type for value; expected string; got interface \{\})`)

// fillMissingDependency makes room, in c's values, for what a template
// read from a dependency that is declared but not vendored (helm
// dependency build not run, as in most chart repositories): Helm would
// render it with the dependency's values, which are not there, and the
// template would otherwise fail and pass unchecked. The maps on the path
// are created and a missing string is "". It reports whether it changed
// anything (the template is then rendered again).
func (c *helmChart) fillMissingDependency(err error) bool {
	m := missingValue.FindStringSubmatch(err.Error())
	if m == nil {
		return false
	}
	keys := strings.Split(strings.TrimPrefix(m[1], "."), ".")
	if !c.missingDependency(keys[0]) {
		return false
	}
	nilRead := strings.Contains(m[0], "nil pointer")
	cur, changed := c.values, false
	for i, k := range keys {
		last := i == len(keys)-1
		switch v := cur[k].(type) {
		case map[string]any:
			if last {
				return changed
			}
			cur = v
		case nil:
			if last {
				// A field read on nothing needed only the maps above it;
				// a missing string is "".
				if !nilRead {
					cur[k], changed = "", true
				}
				return changed
			}
			next := map[string]any{}
			cur[k], cur, changed = next, next, true
		default:
			return changed
		}
	}
	return changed
}

// missingDependency reports whether section names a dependency of c
// (by name or alias) that has no chart under charts/.
func (c *helmChart) missingDependency(section string) bool {
	deps, _ := c.meta["dependencies"].([]any)
	for _, d := range deps {
		dm, _ := d.(map[string]any)
		name, _ := dm["name"].(string)
		alias, _ := dm["alias"].(string)
		if section != name && section != alias {
			continue
		}
		for _, sub := range c.subs {
			if sub.meta["name"] == name {
				return false
			}
		}
		return true
	}
	return false
}

// appendRendered returns b's output as further documents after a's, with
// the template lines of both.
func appendRendered(a, b misconfig.RenderedTemplate) misconfig.RenderedTemplate {
	out := a.Output
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	n := strings.Count(out, "\n")
	lines := make([]int, n, n+1+len(b.Lines))
	copy(lines, a.Lines)
	lines = append(lines, 0) // the "---" line
	lines = append(lines, b.Lines...)
	return misconfig.RenderedTemplate{Output: out + "---\n" + b.Output, Lines: lines}
}

// Functions countLoops puts into templates' pipelines.
const (
	loopFunc = "interlockLoop"
	callFunc = "interlockCall"
)

// parseInto parses src as template name into root's set, as
// root.New(name).Parse(src) does, with its loops counted (countLoops).
func parseInto(root *template.Template, name, src string, funcs template.FuncMap) (*template.Template, error) {
	trees, err := parse.Parse(name, src, "", "", funcs, builtinNames)
	if err != nil {
		return nil, err
	}
	var t *template.Template
	for n, tree := range trees {
		countLoops(tree)
		nt, err := root.AddParseTree(n, tree)
		if err != nil {
			return nil, err
		}
		if n == name {
			t = nt
		}
	}
	return t, nil
}

// countLoops rewrites a parsed template so that each {{ range X }} runs
// over X | interlockLoop and each {{ template "n" X }} is called with
// X | interlockCall: the renderer then counts iterations and calls and
// stops a template past maxLoop or maxSteps. text/template has no hook
// for either, and cannot be interrupted from outside.
func countLoops(tree *parse.Tree) {
	pipe := func(p *parse.PipeNode, fn string) {
		p.Cmds = append(p.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: p.Pos, Args: []parse.Node{parse.NewIdentifier(fn).SetTree(tree).SetPos(p.Pos)}})
	}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.RangeNode:
			pipe(n.Pipe, loopFunc)
			walk(n.List)
			walk(n.ElseList)
		case *parse.IfNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			if n.Pipe != nil {
				pipe(n.Pipe, callFunc)
			}
		}
	}
	if tree != nil {
		walk(tree.Root)
	}
}

// helmRelease is .Release for an install (or, with upgrade, an upgrade)
// of "release-name" into "default". Asking whether it is an install or an
// upgrade, or its revision, sets *consulted.
type helmRelease struct {
	upgrade   bool
	consulted *bool
}

// Name is .Release.Name.
func (helmRelease) Name() string { return "release-name" }

// Namespace is .Release.Namespace.
func (helmRelease) Namespace() string { return "default" }

// Service is .Release.Service.
func (helmRelease) Service() string { return "Helm" }

// IsInstall is .Release.IsInstall.
func (r helmRelease) IsInstall() bool { *r.consulted = true; return !r.upgrade }

// IsUpgrade is .Release.IsUpgrade.
func (r helmRelease) IsUpgrade() bool { *r.consulted = true; return r.upgrade }

// Revision is .Release.Revision.
func (r helmRelease) Revision() int {
	*r.consulted = true
	if r.upgrade {
		return 2
	}
	return 1
}

// guardHolds evaluates a template's enclosing {{ if }} condition. It
// reports true when the condition cannot be evaluated on its own, so that
// the template is then parsed and run whole, and when it asks about the
// release or the cluster (see helmRelease), whose answer differs between
// an install and an upgrade.
func guardHolds(root *template.Template, cond string, data any) bool {
	t, err := root.New("interlock-guard").Parse("{{ if " + cond + " }}1{{ end }}")
	if err != nil {
		return true
	}
	var b bytes.Buffer
	r, _ := data.(map[string]any)["Release"].(helmRelease)
	if r.consulted != nil {
		*r.consulted = false
	}
	if err := t.Execute(&limitedBuffer{b: &b}, data); err != nil {
		return true
	}
	return b.Len() > 0 || r.consulted != nil && *r.consulted
}

// topGuard returns the condition of an {{ if COND }} … {{ end }} that
// encloses all of a template's output (only whitespace and comments
// outside it, no {{ else }} at its level), or "" when there is none or
// the template is not plain enough to tell: then it is parsed and run.
// Only the actions' keywords are read, not parsed, so anything unusual
// (a "}}" in a string, a define) gives "".
func topGuard(src string) string {
	if strings.Contains(src, "define") || strings.Contains(src, "block") {
		return ""
	}
	cond, depth, closed := "", 0, false
	for rest := src; ; {
		open := strings.Index(rest, "{{")
		text := rest
		if open >= 0 {
			text = rest[:open]
		}
		if depth == 0 && strings.TrimSpace(text) != "" {
			return "" // output outside the if
		}
		if open < 0 {
			break
		}
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			return ""
		}
		action := rest[open+2 : open+end]
		rest = rest[open+end+2:]
		action = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(action, "-"), "-"))
		if strings.HasPrefix(action, "/*") && strings.HasSuffix(action, "*/") {
			continue
		}
		if strings.Count(action, `"`)%2 != 0 || strings.Count(action, "`")%2 != 0 || strings.Contains(action, "{{") {
			return ""
		}
		// The keyword ends at the first character that is not a letter:
		// a tab, a newline or "(" separates it as well as a space does.
		n := strings.IndexFunc(action, func(r rune) bool { return r < 'a' || r > 'z' })
		if n < 0 {
			n = len(action)
		}
		word, args := action[:n], action[n:]
		switch {
		case depth == 0 && (closed || word != "if"):
			return "" // a second top-level action, or one that is not the if
		case depth == 0:
			cond = strings.TrimSpace(args)
			depth = 1
		case word == "if" || word == "range" || word == "with":
			depth++
		case word == "else" && depth == 1:
			return ""
		case word == "end":
			if depth--; depth == 0 {
				closed = true
			}
		}
	}
	if !closed || cond == "" {
		return ""
	}
	return cond
}

// lineWriter collects a template's output and, for each output line, the
// template line that wrote it. text/template writes each piece of literal
// text as the TextNode's own byte slice, so the slice's first byte
// identifies the node and its position; anything else written (an
// action's result) belongs to the line of the action, which is where the
// previous literal text ended. No library maps output to source lines.
type lineWriter struct {
	b       bytes.Buffer
	texts   map[*byte]textPos
	lines   []int
	cur     int
	pending bool
}

// textPos is where a TextNode's text starts in its template, and the line
// of what follows it (the next action, past whitespace {{- trims).
type textPos struct{ line, after int }

func newLineWriter(tree *parse.Tree, src string) *lineWriter {
	w := &lineWriter{texts: map[*byte]textPos{}, cur: 1, pending: true}
	if tree == nil || tree.Root == nil {
		return w
	}
	var nl []int // offsets of newlines in src
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			nl = append(nl, i)
		}
	}
	lineOf := func(off int) int {
		n, _ := slices.BinarySearch(nl, off)
		return n + 1
	}
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.TextNode:
			start := int(n.Pos)
			if len(n.Text) == 0 || start < 0 || start+len(n.Text) > len(src) {
				return
			}
			end := start + len(n.Text)
			for end < len(src) && strings.IndexByte(" \t\r\n", src[end]) >= 0 {
				end++
			}
			w.texts[&n.Text[0]] = textPos{line: lineOf(start), after: lineOf(end)}
		case *parse.IfNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.List)
			walk(n.ElseList)
		}
	}
	walk(tree.Root)
	return w
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.b.Len()+len(p) > maxRenderedBytes {
		return 0, overLimit("a template renders more than %d bytes", maxRenderedBytes)
	}
	tp, isText := w.texts[&p[0]]
	line := w.cur
	if isText {
		line = tp.line
	}
	for rest := p; ; {
		if w.pending {
			w.lines = append(w.lines, line)
			w.pending = false
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if isText {
			line++
		}
		w.pending = true
		if rest = rest[i+1:]; len(rest) == 0 {
			break
		}
	}
	if isText {
		w.cur = tp.after
	}
	return w.b.Write(p)
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
	for _, tree := range trees {
		countLoops(tree)
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
			return overLimit("count %d over the renderer's limit of %d", n, maxLoop)
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
	// Sprig compiles the pattern on every call; charts call these in
	// loops with a handful of patterns.
	compiled := map[string]*regexp.Regexp{}
	compile := func(pattern string) (*regexp.Regexp, error) {
		if re, ok := compiled[pattern]; ok {
			return re, nil
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, err
		}
		if len(compiled) < 256 {
			compiled[pattern] = re
		}
		return re, nil
	}
	f["regexMatch"] = func(pattern, s string) (bool, error) {
		re, err := compile(pattern)
		if err != nil {
			return false, err
		}
		return re.MatchString(s), nil
	}
	f["regexFind"] = func(pattern, s string) (string, error) {
		re, err := compile(pattern)
		if err != nil {
			return "", err
		}
		return re.FindString(s), nil
	}
	f["regexReplaceAll"] = func(pattern, s, repl string) (string, error) {
		re, err := compile(pattern)
		if err != nil {
			return "", err
		}
		return re.ReplaceAllString(s, repl), nil
	}
	f["regexReplaceAllLiteral"] = func(pattern, s, repl string) (string, error) {
		re, err := compile(pattern)
		if err != nil {
			return "", err
		}
		return re.ReplaceAllLiteralString(s, repl), nil
	}
	f["toYaml"] = helmToYAML
	f["mustToYaml"] = func(v any) (string, error) {
		b, err := yaml.Marshal(v)
		if err != nil {
			return "", err
		}
		return strings.TrimSuffix(string(b), "\n"), nil
	}
	f["toYamlPretty"] = func(v any) string {
		var b bytes.Buffer
		e := yaml.NewEncoder(&b)
		e.SetIndent(2)
		if err := e.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
	f["toToml"] = func(v any) string {
		var b bytes.Buffer
		if err := toml.NewEncoder(&b).Encode(v); err != nil {
			return err.Error()
		}
		return b.String()
	}
	f["fromToml"] = func(s string) map[string]any {
		m := map[string]any{}
		if _, err := toml.Decode(s, &m); err != nil {
			m = map[string]any{"Error": err.Error()}
		}
		return m
	}
	f["fromJson"] = func(s string) map[string]any {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJsonArray"] = func(s string) []any {
		var a []any
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			a = []any{err.Error()}
		}
		return a
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
	// required and fail stop a chart rendered with its defaults, where the
	// user sets the value at install: the manifest deployed then is the one
	// rendered past them, so they render nothing and stop nothing here (a
	// template that used them to stop would otherwise pass unchecked).
	f["required"] = func(_ string, v any) any { return v }
	f["fail"] = func(string) string { return "" }
	f["lookup"] = func(string, string, string, string) map[string]any { return map[string]any{} }
	return f
}

// helmToYAML is Helm's toYaml: the YAML of v without its last newline,
// or "" when v has none.
func helmToYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// apiVersions answers .Capabilities.APIVersions.Has: every API is
// assumed present, as on a current cluster.
type apiVersions []string

// Has implements Helm's .Capabilities.APIVersions.Has.
func (apiVersions) Has(string) bool { return true }

// chartFiles is .Files: the chart's files outside templates/, charts/,
// Chart.yaml and values.yaml, read on demand, with Helm's methods. A
// template whose .Files call the renderer lacked would fail, and what it
// makes would pass unchecked.
type chartFiles struct {
	fsys fs.FS
	dir  string
}

// Get returns a chart file's content, or "" when there is none.
func (c chartFiles) Get(name string) string { return string(c.GetBytes(name)) }

// GetBytes returns a chart file's content, or nil.
func (c chartFiles) GetBytes(name string) []byte {
	p := path.Join(c.dir, name)
	if !fs.ValidPath(p) {
		return nil
	}
	b, err := fs.ReadFile(c.fsys, p)
	if err != nil || len(b) > maxRenderedBytes {
		return nil
	}
	return b
}

// Lines returns a chart file's lines.
func (c chartFiles) Lines(name string) []string { return helmFiles{name: c.GetBytes(name)}.Lines(name) }

// Glob returns the chart's files whose path (relative to the chart)
// matches pattern, in Helm's glob syntax ("*" within a directory, "**"
// across, {a,b}, [ab], ?). What it reads is bounded like a template's
// output.
func (c chartFiles) Glob(pattern string) (helmFiles, error) {
	re, err := globRegexp(pattern)
	if err != nil {
		return nil, err
	}
	out := helmFiles{}
	total, n := 0, 0
	err = fs.WalkDir(c.fsys, c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, c.dir), "/")
		if c.dir == "." || c.dir == "" {
			rel = p
		}
		if d.IsDir() {
			if rel == "templates" || rel == "charts" {
				return fs.SkipDir
			}
			return nil
		}
		if rel == "Chart.yaml" || rel == "values.yaml" || !re.MatchString(rel) {
			return nil
		}
		if n++; n > maxChartFiles {
			return overLimit("more than %d files in the chart", maxChartFiles)
		}
		b, err := fs.ReadFile(c.fsys, p)
		if err != nil {
			return nil
		}
		if total += len(b); total > maxRenderedBytes {
			return overLimit("a template renders more than %d bytes", maxRenderedBytes)
		}
		out[rel] = b
		return nil
	})
	return out, err
}

// helmFiles is what .Files.Glob returns: files by path, with Helm's
// methods.
type helmFiles map[string][]byte

// Get returns a file's content.
func (f helmFiles) Get(name string) string { return string(f[name]) }

// GetBytes returns a file's content.
func (f helmFiles) GetBytes(name string) []byte { return f[name] }

// Glob narrows the set to the paths matching pattern.
func (f helmFiles) Glob(pattern string) (helmFiles, error) {
	re, err := globRegexp(pattern)
	if err != nil {
		return nil, err
	}
	out := helmFiles{}
	for k, v := range f {
		if re.MatchString(k) {
			out[k] = v
		}
	}
	return out, nil
}

// AsConfig is the files as a ConfigMap's data: base name to content.
func (f helmFiles) AsConfig() string {
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return helmToYAML(m)
}

// AsSecrets is the files as a Secret's data: base name to base64.
func (f helmFiles) AsSecrets() string {
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = base64.StdEncoding.EncodeToString(v)
	}
	return helmToYAML(m)
}

// Lines returns a file's lines, without a last empty one.
func (f helmFiles) Lines(name string) []string {
	s := string(f[name])
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// globRegexp compiles a glob in the syntax Helm's .Files.Glob takes
// (gobwas/glob with "/" as separator).
func globRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	depth := 0 // inside {…}
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; {
		case c == '*' && i+1 < len(pattern) && pattern[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '{':
			b.WriteString("(?:")
			depth++
		case c == '}' && depth > 0:
			b.WriteString(")")
			depth--
		case c == ',' && depth > 0:
			b.WriteString("|")
		case c == '[':
			j := strings.IndexByte(pattern[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("glob %q: unclosed [", pattern)
			}
			class := pattern[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j
		case c == '\\' && i+1 < len(pattern):
			i++
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// limitedBuffer stops a runaway template.
type limitedBuffer struct{ b *bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > maxRenderedBytes {
		return 0, overLimit("a template renders more than %d bytes", maxRenderedBytes)
	}
	return l.b.Write(p)
}
