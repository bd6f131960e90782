package misconfig

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Terraform checks are data: a resource type and a condition the resource
// must meet, written in a small language evaluated over the parsed HCL (see
// parseCond). Keeping them as one line each is what lets this package carry
// the few hundred checks of the CIS benchmarks and trivy-checks without an
// embedded policy engine: OPA and trivy's IaC packages would add tens of MiB
// to the binary and several times the scan time (docs/ARCHITECTURE.md §8).
//
// The condition language, in order of binding:
//
//	each path: c      (only as the whole condition) every nested block at
//	                  path meets c (which may use unless), evaluated inside it
//	false             never holds: declaring the resource is the finding
//	c unless e        (only at the top) c holds, or the exemption e does;
//	                  the evidence reported is always c's
//	c1 || c2          either holds
//	c1 && c2          both hold
//	@type.attr: c     some resource of type whose attr refers to this one meets c
//	                  (attr "*": any attribute; "any": no reference needed)
//	!path             path (attribute or nested block) is absent
//	!@type.attr       no resource of type refers to this one
//	path              path is present and not false, "", 0 or empty
//	path == v         every value at path equals v; absent fails
//	path != v         no value at path equals v; absent passes
//	path in a,b,c     every value at path is one of a, b, c; absent fails
//	path !in a,b,c    no value at path is one of a, b, c; absent passes
//	path >= n, <= n   numeric bound; absent fails
//	path ~ re         some value at path matches re (Go syntax); absent fails
//	path !~ re        no value at path matches re; absent passes
//
// A path walks nested blocks and object attributes with dots
// (`server_side_encryption.enabled`); a repeated block yields every
// instance. A value that needs something the file does not define (a
// module output, a data source) is unknown, and an unknown value never
// makes a finding: the check errs towards silence, not noise.

// tfCheck is one Terraform check.
type tfCheck struct {
	id    string
	types []string // resource types; "data.http" for data sources
	cond  cond
}

var tfChecks = map[string][]*tfCheck{} // by resource type

// tf declares a Terraform check: id (interlock's), ref (CIS / AVD), the
// resource types (comma-separated), the condition a good resource meets,
// the title (why it matters) and the fix.
func tf(id, ref string, sev scan.Severity, types, condition, why, fix string) {
	c, err := parseCond(condition)
	if err != nil {
		panic(fmt.Sprintf("misconfig: check %s: %v", id, err))
	}
	defRef(id, ref, sev, why, fix)
	tc := &tfCheck{id: id, types: strings.Split(types, ","), cond: c}
	for _, t := range tc.types {
		tfChecks[t] = append(tfChecks[t], tc)
	}
}

// tfResource is one resource or data block of a file.
type tfResource struct {
	typ, name string // name is "type.label" ("data.type.label" for data)
	block     *hclsyntax.Block
}

// tfFile is what conditions evaluate against: the module's resources (the
// file's own, which are checked, and its sibling files', which are only
// referred to) and an evaluation context with the variables' defaults and
// the locals.
type tfFile struct {
	resources []*tfResource // every resource of the module
	own       []*tfResource // the scanned file's
	ctx       *hcl.EvalContext
}

var tfFuncs = map[string]function.Function{
	"jsonencode": stdlib.JSONEncodeFunc,
	"lower":      stdlib.LowerFunc,
	"upper":      stdlib.UpperFunc,
	"tolist":     stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"toset":      stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"concat":     stdlib.ConcatFunc,
	"format":     stdlib.FormatFunc,
	"join":       stdlib.JoinFunc,
}

// loadTF builds the evaluation view of body, one file of a module whose
// other files are siblings (nil when the module is not known).
func loadTF(body *hclsyntax.Body, siblings []*hclsyntax.Body) *tfFile {
	f := &tfFile{}
	vars := map[string]cty.Value{}
	locals := map[string]cty.Value{}
	var blocks []*hclsyntax.Block
	for _, sb := range append([]*hclsyntax.Body{body}, siblings...) {
		blocks = append(blocks, sb.Blocks...)
	}
	for i, b := range blocks {
		own := i < len(body.Blocks)
		switch {
		case b.Type == "resource" && len(b.Labels) >= 2:
			f.resources = append(f.resources, &tfResource{typ: b.Labels[0], name: b.Labels[0] + "." + b.Labels[1], block: b})
			if own {
				f.own = append(f.own, f.resources[len(f.resources)-1])
			}
		case b.Type == "data" && len(b.Labels) >= 2:
			f.resources = append(f.resources, &tfResource{typ: "data." + b.Labels[0], name: "data." + b.Labels[0] + "." + b.Labels[1], block: b})
			if own {
				f.own = append(f.own, f.resources[len(f.resources)-1])
			}
		case b.Type == "variable" && len(b.Labels) == 1:
			if a, ok := b.Body.Attributes["default"]; ok {
				if v, d := a.Expr.Value(nil); !d.HasErrors() {
					vars[b.Labels[0]] = v
				}
			}
		}
	}
	f.ctx = &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}, Functions: tfFuncs}
	// Other resources' literal attributes, so `user = aws_iam_user.u.name`
	// resolves; attributes known only after apply (ids, ARNs) stay unknown.
	byType := map[string]map[string]cty.Value{}
	for _, r := range f.resources {
		if strings.HasPrefix(r.typ, "data.") {
			continue
		}
		attrs := map[string]cty.Value{}
		for name, a := range r.block.Body.Attributes {
			if v, d := a.Expr.Value(nil); !d.HasErrors() && v.IsWhollyKnown() {
				attrs[name] = v
			}
		}
		if byType[r.typ] == nil {
			byType[r.typ] = map[string]cty.Value{}
		}
		byType[r.typ][r.block.Labels[1]] = cty.ObjectVal(attrs)
	}
	for typ, m := range byType {
		f.ctx.Variables[typ] = cty.ObjectVal(m)
	}
	// Locals may refer to variables and to earlier locals.
	for _, b := range blocks {
		if b.Type != "locals" {
			continue
		}
		for name, a := range b.Body.Attributes {
			if v, d := a.Expr.Value(f.ctx); !d.HasErrors() {
				locals[name] = v
			}
		}
	}
	f.ctx.Variables["local"] = cty.ObjectVal(locals)
	return f
}

// value is one value found at a path: known is false when it depends on
// something outside the file.
type value struct {
	v     cty.Value
	known bool
	block bool // a nested block rather than an attribute
	line  int
}

// lookup returns every value at path under body.
func (f *tfFile) lookup(body *hclsyntax.Body, path []string) []value {
	if len(path) == 0 {
		return nil
	}
	var out []value
	if a, ok := body.Attributes[path[0]]; ok {
		v, d := a.Expr.Value(f.ctx)
		known := !d.HasErrors() && v.IsWhollyKnown()
		line := a.SrcRange.Start.Line
		if !known {
			return []value{{line: line}}
		}
		return descend(v, path[1:], line)
	}
	typ, selKey, selVal := splitSelector(path[0])
	for _, b := range body.Blocks {
		if b.Type != typ || b.Type == "dynamic" {
			continue
		}
		if selKey != "" {
			if v, _, ok := stringAttr(b.Body, selKey); !ok || !strings.EqualFold(v, selVal) {
				continue
			}
		}
		if len(path) == 1 {
			out = append(out, value{known: true, block: true, line: b.DefRange().Start.Line})
			continue
		}
		out = append(out, f.lookup(b.Body, path[1:])...)
	}
	// A dynamic "name" block may produce the block: unknown.
	for _, b := range body.Blocks {
		if b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ {
			out = append(out, value{line: b.DefRange().Start.Line})
		}
	}
	return out
}

// splitSelector splits a path segment `block[key=value]`, which selects
// the nested blocks whose attribute key is value (database_flags by name).
func splitSelector(seg string) (typ, key, val string) {
	typ, sel, found := strings.Cut(seg, "[")
	if !found {
		return seg, "", ""
	}
	key, val, _ = strings.Cut(strings.TrimSuffix(sel, "]"), "=")
	return typ, key, val
}

// splitPath splits a dotted path, keeping selectors (which may hold dots
// or spaces) whole.
func splitPath(p string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				out = append(out, p[start:i])
				start = i + 1
			}
		}
	}
	return append(out, p[start:])
}

// descend walks the rest of a path into an object or list value.
func descend(v cty.Value, path []string, line int) []value {
	if v.IsNull() {
		if len(path) == 0 {
			return []value{{v: v, known: true, line: line}}
		}
		return nil
	}
	if len(path) == 0 {
		return []value{{v: v, known: true, line: line}}
	}
	ty := v.Type()
	switch {
	case ty.IsObjectType() || ty.IsMapType():
		if ty.IsObjectType() && !ty.HasAttribute(path[0]) {
			return nil
		}
		if ty.IsMapType() && !v.HasIndex(cty.StringVal(path[0])).True() {
			return nil
		}
		if ty.IsObjectType() {
			return descend(v.GetAttr(path[0]), path[1:], line)
		}
		return descend(v.Index(cty.StringVal(path[0])), path[1:], line)
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		var out []value
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, descend(e, path, line)...)
		}
		return out
	}
	return nil
}

// cond is a parsed condition: ok reports whether r meets it, and when it
// does not, the line and evidence to report.
type cond interface {
	eval(f *tfFile, r *tfResource) (ok bool, line int, evidence string)
}

type orCond []cond
type andCond []cond

func (c orCond) eval(f *tfFile, r *tfResource) (bool, int, string) {
	// The first alternative is the substance and names the evidence;
	// exemptions are written after "unless".
	line, ev := 0, ""
	for i, x := range c {
		ok, l, e := x.eval(f, r)
		if ok {
			return true, 0, ""
		}
		if i == 0 {
			line, ev = l, e
		}
	}
	return false, line, ev
}

func (c andCond) eval(f *tfFile, r *tfResource) (bool, int, string) {
	for _, x := range c {
		if ok, l, e := x.eval(f, r); !ok {
			return false, l, e
		}
	}
	return true, 0, ""
}

// relCond holds when some resource of typ whose attr refers to r meets inner.
type relCond struct {
	typ, attr string
	inner     cond
}

func (c relCond) eval(f *tfFile, r *tfResource) (bool, int, string) {
	for _, o := range f.resources {
		if o.typ != c.typ || (c.attr != "any" && !refersTo(o.block.Body, c.attr, r)) {
			continue
		}
		if c.inner == nil {
			return true, 0, ""
		}
		if ok, _, _ := c.inner.eval(f, o); ok {
			return true, 0, ""
		}
	}
	return false, r.block.DefRange().Start.Line, "no " + c.typ + " for " + r.name
}

// refersTo reports whether attr (a dotted path; "*" means any attribute)
// mentions r by address, by a literal equal to its name or bucket label.
func refersTo(body *hclsyntax.Body, attr string, r *tfResource) bool {
	// A literal may name the resource too: bucket = "my-logs".
	var names []string
	for _, k := range []string{"name", "bucket"} {
		if v, _, ok := stringAttr(r.block.Body, k); ok && v != "" {
			names = append(names, v)
		}
	}
	check := func(a *hclsyntax.Attribute) bool {
		for _, t := range a.Expr.Variables() {
			if addr := traversalAddr(t); addr == r.name {
				return true
			}
		}
		if v, d := a.Expr.Value(nil); !d.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			return slices.Contains(names, v.AsString())
		}
		return false
	}
	if attr == "*" {
		found := false
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if a, ok := n.(*hclsyntax.Attribute); ok && check(a) {
				found = true
			}
			return nil
		})
		return found
	}
	path := strings.Split(attr, ".")
	for _, b := range body.Blocks {
		if len(path) > 1 && b.Type == path[0] && refersTo(b.Body, strings.Join(path[1:], "."), r) {
			return true
		}
	}
	a, ok := body.Attributes[path[0]]
	return ok && len(path) == 1 && check(a)
}

// traversalAddr renders the resource address a traversal starts with:
// "aws_s3_bucket.b" for aws_s3_bucket.b.id, "data.x.y" for data sources.
func traversalAddr(t hcl.Traversal) string {
	var parts []string
	for _, s := range t {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		}
		if len(parts) == 2 && parts[0] != "data" || len(parts) == 3 {
			break
		}
	}
	return strings.Join(parts, ".")
}

type op int

const (
	opPresent op = iota
	opAbsent
	opEq
	opNe
	opIn
	opNotIn
	opGe
	opLe
	opMatch
	opNotMatch
)

type atom struct {
	path []string
	op   op
	vals []string
	num  float64
	re   *regexp.Regexp
}

func (c atom) eval(f *tfFile, r *tfResource) (bool, int, string) {
	vals := f.lookup(r.block.Body, c.path)
	name := strings.Join(c.path, ".")
	line := r.block.DefRange().Start.Line
	for _, v := range vals {
		if !v.known {
			return true, 0, "" // depends on something outside the file
		}
	}
	switch c.op {
	case opAbsent:
		for _, v := range vals {
			if v.block || !v.v.IsNull() {
				return false, v.line, name + " is set"
			}
		}
		return true, 0, ""
	case opPresent:
		if len(vals) == 0 {
			return false, line, name + " not set"
		}
		for _, v := range vals {
			if !v.block && !truthy(v.v) {
				return false, v.line, name + " = " + show(v.v)
			}
		}
		return true, 0, ""
	case opNe, opNotIn, opNotMatch:
		for _, v := range vals {
			if v.block {
				continue
			}
			for _, s := range scalars(v.v) {
				if c.matches(s) {
					return false, v.line, name + " = " + show(v.v)
				}
			}
		}
		return true, 0, ""
	}
	// opEq, opIn, opGe, opLe, opMatch: absent fails; every value must pass
	// (for opMatch: some value must match).
	if len(vals) == 0 {
		return false, line, name + " not set"
	}
	any := false
	for _, v := range vals {
		ss := scalars(v.v)
		if len(ss) == 0 && c.op != opMatch {
			return false, v.line, name + " = " + show(v.v)
		}
		for _, s := range ss {
			m := c.matches(s)
			if c.op == opMatch {
				any = any || m
			} else if !m {
				return false, v.line, name + " = " + show(v.v)
			}
		}
	}
	if c.op == opMatch && !any {
		return false, vals[0].line, name + " = " + truncate(show(vals[0].v), 60)
	}
	return true, 0, ""
}

// matches reports whether scalar s satisfies the comparison (for the
// negated operators: whether s is what they forbid).
func (c atom) matches(s string) bool {
	switch c.op {
	case opEq, opNe, opIn, opNotIn:
		for _, w := range c.vals {
			if strings.EqualFold(s, w) {
				return true
			}
		}
		return false
	case opGe, opLe:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return false
		}
		if c.op == opGe {
			return n >= c.num
		}
		return n <= c.num
	case opMatch, opNotMatch:
		if c.re.MatchString(s) {
			return true
		}
		// user_data is often base64 (user_data_base64, base64encode):
		// match the decoded text too.
		if d, ok := base64Text(s); ok {
			return c.re.MatchString(d)
		}
	}
	return false
}

// base64Text decodes s when it is base64 of printable text.
func base64Text(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 16 || len(s)%4 != 0 || strings.ContainsAny(s, " \n\t") {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			return "", false
		}
	}
	return string(b), true
}

// scalars flattens a value into strings: lists yield their elements.
func scalars(v cty.Value) []string {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return []string{v.AsString()}
	case ty == cty.Bool:
		return []string{strconv.FormatBool(v.True())}
	case ty == cty.Number:
		return []string{v.AsBigFloat().Text('f', -1)}
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, scalars(e)...)
		}
		return out
	}
	return nil
}

func truthy(v cty.Value) bool {
	if v.IsNull() || !v.IsKnown() {
		return false
	}
	switch ty := v.Type(); {
	case ty == cty.Bool:
		return v.True()
	case ty == cty.String:
		return v.AsString() != ""
	case ty == cty.Number:
		return !v.RawEquals(cty.Zero)
	case ty.IsListType() || ty.IsTupleType() || ty.IsSetType() || ty.IsMapType() || ty.IsObjectType():
		return v.LengthInt() > 0
	}
	return true
}

func show(v cty.Value) string {
	ss := scalars(v)
	if v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
		return strconv.Quote(truncate(v.AsString(), 60))
	}
	if len(ss) == 1 {
		return ss[0]
	}
	if len(ss) > 1 {
		return "[" + truncate(strings.Join(ss, ", "), 60) + "]"
	}
	return "null"
}

// eachCond applies inner to every nested block at path.
type eachCond struct {
	path  string
	inner cond
}

func (c eachCond) eval(f *tfFile, r *tfResource) (bool, int, string) {
	var blocks []*hclsyntax.Block
	var walk func(b *hclsyntax.Body, path []string)
	walk = func(b *hclsyntax.Body, path []string) {
		for _, nb := range b.Blocks {
			if nb.Type != path[0] {
				continue
			}
			if len(path) == 1 {
				blocks = append(blocks, nb)
			} else {
				walk(nb.Body, path[1:])
			}
		}
	}
	walk(r.block.Body, strings.Split(c.path, "."))
	for _, b := range blocks {
		if ok, l, e := c.inner.eval(f, &tfResource{typ: r.typ, name: r.name, block: b}); !ok {
			return false, l, c.path + "." + e
		}
	}
	return true, 0, ""
}

type falseCond struct{}

func (falseCond) eval(_ *tfFile, r *tfResource) (bool, int, string) {
	return false, r.block.DefRange().Start.Line, r.typ + " is declared"
}

// unlessCond holds when cond does or exempt does; it reports cond's evidence.
type unlessCond struct{ cond, exempt cond }

func (c unlessCond) eval(f *tfFile, r *tfResource) (bool, int, string) {
	if ok, _, _ := c.exempt.eval(f, r); ok {
		return true, 0, ""
	}
	return c.cond.eval(f, r)
}

// parseCond parses the condition language described at the top of this file.
func parseCond(s string) (cond, error) {
	if rest, ok := strings.CutPrefix(strings.TrimSpace(s), "each "); ok {
		path, inner, found := strings.Cut(rest, ":")
		if !found {
			return nil, fmt.Errorf("%q: want each path: condition", s)
		}
		c, err := parseCond(inner)
		if err != nil {
			return nil, err
		}
		return eachCond{path: strings.TrimSpace(path), inner: c}, nil
	}
	if main, exempt, found := strings.Cut(s, " unless "); found {
		c, err := parseCond(main)
		if err != nil {
			return nil, err
		}
		e, err := parseCond(exempt)
		if err != nil {
			return nil, err
		}
		return unlessCond{c, e}, nil
	}
	if strings.TrimSpace(s) == "false" {
		return falseCond{}, nil
	}
	var ors orCond
	for alt := range strings.SplitSeq(s, "||") {
		var ands andCond
		parts := strings.Split(alt, "&&")
		for i := 0; i < len(parts); i++ {
			part := strings.TrimSpace(parts[i])
			// A related-resource condition takes the rest of the conjunction:
			// in "@t.a: x && y", y belongs to the other resource.
			if (strings.HasPrefix(part, "@") || strings.HasPrefix(part, "!@")) && strings.Contains(part, ":") {
				part = strings.TrimSpace(strings.Join(parts[i:], "&&"))
				i = len(parts)
			}
			c, err := parseAtom(part)
			if err != nil {
				return nil, err
			}
			ands = append(ands, c)
		}
		if len(ands) == 1 {
			ors = append(ors, ands[0])
		} else {
			ors = append(ors, ands)
		}
	}
	if len(ors) == 1 {
		return ors[0], nil
	}
	return ors, nil
}

var atomRe = regexp.MustCompile(`^(!?)((?:[A-Za-z0-9_.\-]|\[[^\]]*\])+)\s*(?:(==|!=|>=|<=|!in|in|!~|~)\s*(.*))?$`)

// notCond holds when inner does not.
type notCond struct{ inner cond }

func (c notCond) eval(f *tfFile, r *tfResource) (bool, int, string) {
	if ok, _, _ := c.inner.eval(f, r); ok {
		return false, r.block.DefRange().Start.Line, "related resource present"
	}
	return true, 0, ""
}

func parseAtom(s string) (cond, error) {
	if rest, ok := strings.CutPrefix(s, "!@"); ok {
		c, err := parseAtom("@" + rest)
		return notCond{c}, err
	}
	if strings.HasPrefix(s, "@") {
		head, rest, found := strings.Cut(s[1:], ":")
		i := strings.LastIndexByte(head, '.')
		if i < 0 {
			return nil, fmt.Errorf("%q: want @type.attr: condition", s)
		}
		rc := relCond{typ: head[:i], attr: head[i+1:]}
		if strings.HasPrefix(head, "data.") {
			rc.typ = head[:i]
		}
		if found && strings.TrimSpace(rest) != "" {
			inner, err := parseCond(rest)
			if err != nil {
				return nil, err
			}
			rc.inner = inner
		}
		return rc, nil
	}
	m := atomRe.FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("cannot parse %q", s)
	}
	a := atom{path: splitPath(m[2])}
	arg := strings.TrimSpace(m[4])
	switch m[3] {
	case "":
		a.op = opPresent
		if m[1] == "!" {
			a.op = opAbsent
		}
		return a, nil
	case "==":
		a.op, a.vals = opEq, []string{strings.Trim(arg, `"`)}
	case "!=":
		a.op, a.vals = opNe, []string{strings.Trim(arg, `"`)}
	case "in", "!in":
		a.op = opIn
		if m[3] == "!in" {
			a.op = opNotIn
		}
		for v := range strings.SplitSeq(arg, ",") {
			a.vals = append(a.vals, strings.Trim(strings.TrimSpace(v), `"`))
		}
	case ">=", "<=":
		n, err := strconv.ParseFloat(arg, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", s, err)
		}
		a.op, a.num = opGe, n
		if m[3] == "<=" {
			a.op = opLe
		}
	case "~", "!~":
		re, err := regexp.Compile(arg)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", s, err)
		}
		a.op, a.re = opMatch, re
		if m[3] == "!~" {
			a.op = opNotMatch
		}
	}
	if m[1] == "!" {
		return nil, fmt.Errorf("%q: ! only negates a bare path", s)
	}
	return a, nil
}

// runTFChecks applies every data-driven check to the file's resources.
func runTFChecks(f *tfFile, r *reporter) {
	for _, res := range f.own {
		for _, c := range tfChecks[res.typ] {
			if ok, line, ev := c.cond.eval(f, res); !ok {
				if line == 0 {
					line = res.block.DefRange().Start.Line
				}
				r.add(c.id, line, ev, res.name)
			}
		}
	}
}
