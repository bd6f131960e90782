package secrets

import (
	"bytes"
	"cmp"
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Explanation tells why a candidate was dropped. It carries the redacted
// candidate only.
type Explanation struct {
	File   string
	Line   int
	RuleID string
	Match  string // redacted
	Reason string
}

// Options configures a [Detector]. The zero value is valid.
type Options struct {
	// Explain, if set, receives every dropped candidate with the reason.
	Explain func(Explanation)
}

// Detector is a [scan.Detector] for secrets.
type Detector struct {
	rs   *RuleSet
	opts Options
}

// NewDetector returns a detector over rs.
func NewDetector(rs *RuleSet, opts Options) *Detector { return &Detector{rs: rs, opts: opts} }

// Name implements [scan.Detector].
func (d *Detector) Name() string { return "secrets" }

type window struct {
	start, end int
	// For generic rules, the keyword hit the window was opened for: the
	// match's key must contain it.
	hitStart, hitEnd int
}

// maxSecretLen bounds single-line secrets; longer matches are data.
const maxSecretLen = 2048

// maxMergedWindow bounds how far windows of a single-line rule are merged.
const maxMergedWindow = 64

// Detect implements [scan.Detector].
func (d *Detector) Detect(ctx context.Context, f *scan.File, emit func(scan.Finding)) error {
	// A key store whose bytes hold no NUL passes for text (the scanner's
	// binary test is git's: a NUL in the first 8 KiB): the binary rules
	// look at a file that starts as a DER SEQUENCE all the same.
	if len(f.Data) > 0 && f.Data[0] == 0x30 && len(d.rs.binRules) > 0 {
		if err := d.DetectBinary(ctx, f, emit); err != nil {
			return err
		}
	}
	found, err := d.find(ctx, f, true)
	if err != nil {
		return err
	}
	emitFound(d.rs.rules, found, emit)
	return nil
}

// find runs every rule whose keywords occur in f, and in the values of f
// that it decodes (see decodeSpans), and returns the spans of the
// candidates that pass validation. With build unset (redaction) it skips
// building findings and explanations.
func (d *Detector) find(ctx context.Context, f *scan.File, build bool) ([]spanFinding, error) {
	found, err := d.findPlain(ctx, f, build)
	if err != nil {
		return nil, err
	}
	dec, err := d.findDecoded(ctx, f, build)
	if err != nil {
		return nil, err
	}
	return append(found, dec...), nil
}

// findPlain is find on the text of f as it is.
func (d *Detector) findPlain(ctx context.Context, f *scan.File, build bool) ([]spanFinding, error) {
	data := f.Data
	rs := d.rs
	// Current open window per rule; flushed when a hit falls outside it.
	cur := make([]window, len(rs.rules))
	for i := range cur {
		cur[i].start = -1
	}
	seen := map[[2]int]bool{} // (rule, secret offset)
	var found []spanFinding
	n := 0
	var err error
	flush := func(ri int) {
		w := cur[ri]
		if w.start < 0 || err != nil {
			return
		}
		cur[ri].start = -1
		n++
		if n%64 == 0 && ctx.Err() != nil {
			err = ctx.Err()
			return
		}
		d.runRule(f, ri, w, seen, &found, build)
	}
	// A rule limited to some paths (nuget.config, Terraform files) opens
	// no window in other files; its path is checked on its first keyword
	// hit only, and remembered.
	type pathCheck struct {
		rule int
		off  bool
	}
	var checked []pathCheck
	offPath := func(ri int) bool {
		for _, c := range checked {
			if c.rule == ri {
				return c.off
			}
		}
		off := !rs.rules[ri].pathRe.MatchString(f.Path)
		checked = append(checked, pathCheck{ri, off})
		return off
	}
	add := func(ri, s, e int) {
		if rs.rules[ri].pathRe != nil && offPath(ri) {
			return
		}
		r := &rs.rules[ri]
		ws, we := max(0, s-r.Window), min(len(data), e+r.Window)
		if !r.Multiline {
			ws, we = clipLine(data, s, e, ws, we)
			for extra := r.Lines - 1; extra > 0 && we < len(data); extra-- {
				next := min(len(data), we+1+r.Window)
				if i := bytes.IndexByte(data[we+1:next], '\n'); i >= 0 {
					next = we + 1 + i
				}
				we = next
			}
		}
		if r.Generic {
			// The key is the identifier around the keyword. Skip hits
			// that no assignment follows (most mentions of "token" in
			// code), and start the window just before the identifier so
			// the regex matches at once instead of scanning the line.
			ok, valueBelow := assignmentFollows(data, e, r.Lines > 1)
			if !ok {
				return
			}
			if valueBelow && r.Lines <= 1 {
				// <apiToken>\n  value\n</apiToken>: take in the next line.
				next := min(len(data), we+1+r.Window)
				if i := bytes.IndexByte(data[min(we+1, len(data)):next], '\n'); i >= 0 {
					next = we + 1 + i
				}
				we = next
			}
			i := s
			for i > ws && isIdentByte(data[i-1]) {
				i--
			}
			back := 1
			if r.Lines > 1 {
				back = 24 // room for a "- name: " prefix
			}
			ws = max(ws, i-back)
		}
		c := &cur[ri]
		// Merge overlapping windows, but keep single-line windows small
		// (Go's regexp uses its fast backtracker only on short inputs)
		// unless the hit lies inside the current window already, as with
		// overlapping hits in a run of repeated characters.
		if c.start >= 0 && ws <= c.end && !r.Generic && (r.Multiline || s < c.end || max(c.end, we)-c.start <= maxMergedWindow) {
			c.end = max(c.end, we)
			return
		}
		flush(ri)
		cur[ri] = window{start: ws, end: we, hitStart: s, hitEnd: e}
	}
	rs.kw.find(data, func(p, s, e int) {
		for _, kr := range rs.kwRules[p] {
			if kr.exact != "" && string(data[s:e]) != kr.exact {
				continue
			}
			add(kr.rule, s, e)
		}
	})
	if len(rs.digitRules) > 0 && err == nil {
		digitRuns(data, 13, func(s, e int) {
			// Most long numbers fail Luhn; skip them before any regex.
			if !luhn(onlyDigits(data[s:e])) {
				return
			}
			for _, ri := range rs.digitRules {
				flush(ri)
				cur[ri] = window{start: max(0, s-1), end: min(len(data), e+1)}
			}
		})
	}
	for ri := range cur {
		if err != nil {
			break
		}
		flush(ri)
	}
	if err != nil {
		return nil, err
	}
	return found, nil
}

// clipLine narrows [ws,we) to the line(s) containing [s,e).
func clipLine(data []byte, s, e, ws, we int) (int, int) {
	if i := bytes.LastIndexByte(data[ws:s], '\n'); i >= 0 {
		ws += i + 1
	}
	if i := bytes.IndexByte(data[e:we], '\n'); i >= 0 {
		we = e + i
	}
	return ws, we
}

// digitRuns calls fn for each run of minDigits to 19 digits (the longest
// card number), allowing single spaces or dashes between digits; longer
// runs are not card numbers.
//
// A run of minDigits digits spans at least minDigits bytes, so it contains
// one of the probe positions minDigits-1, 2*minDigits-1, ...; only around
// probes that land on a digit is the run measured.
func digitRuns(data []byte, minDigits int, fn func(s, e int)) {
	isD := func(c byte) bool { return c >= '0' && c <= '9' }
	isSep := func(c byte) bool { return c == ' ' || c == '-' }
	done := 0 // data[:done] already examined
	for p := minDigits - 1; p < len(data); p += minDigits {
		if p < done || !isD(data[p]) && !(isSep(data[p]) && p > 0 && isD(data[p-1])) {
			continue
		}
		s := p
		for s > done && (isD(data[s-1]) || isSep(data[s-1]) && s-2 >= done && isD(data[s-2])) {
			s--
		}
		e := p
		for e+1 < len(data) && (isD(data[e+1]) || isSep(data[e+1]) && e+2 < len(data) && isD(data[e+2])) {
			e++
		}
		digitRunsSlow(data[s:e+1], minDigits, func(a, b int) { fn(s+a, s+b) })
		done = e + 1
	}
}

// digitRunsSlow is digitRuns by a plain scan.
func digitRunsSlow(data []byte, minDigits int, fn func(s, e int)) {
	start, digits, last := -1, 0, -1
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c >= '0' && c <= '9':
			if start < 0 {
				start, digits = i, 0
			}
			digits++
			last = i
		case (c == ' ' || c == '-') && start >= 0 && last == i-1:
		default:
			if start >= 0 && digits >= minDigits && digits <= 19 {
				fn(start, last+1)
			}
			start = -1
		}
	}
	if start >= 0 && digits >= minDigits && digits <= 19 {
		fn(start, last+1)
	}
}

func (d *Detector) runRule(f *scan.File, ri int, w window, seen map[[2]int]bool, found *[]spanFinding, build bool) {
	r := &d.rs.rules[ri]
	chunk := f.Data[w.start:w.end]
	var matches [][]int
	if r.Generic {
		// One window per keyword hit, starting at its identifier: the
		// first match is the assignment of that identifier.
		m := r.re.get().FindSubmatchIndex(chunk)
		if ki := r.re.groups.key; m != nil && ki > 0 && m[2*ki] >= 0 &&
			w.start+m[2*ki] <= w.hitStart && w.hitEnd <= w.start+m[2*ki+1] {
			matches = [][]int{m}
		}
	} else {
		matches = r.re.get().FindAllSubmatchIndex(chunk, -1)
	}
	for _, m := range matches {
		ss, se := secretSpan(r, m)
		if ss < 0 {
			continue
		}
		abs := w.start + ss
		if seen[[2]int{ri, abs}] {
			continue
		}
		seen[[2]int{ri, abs}] = true
		secret := string(chunk[ss:se])
		full := string(chunk[m[0]:m[1]])
		var a assignment
		if r.Generic {
			a = assignmentOf(&r.re.groups, chunk, m)
		} else if ki := r.re.groups.key; ki > 0 && m[2*ki] >= 0 {
			a.key = string(chunk[m[2*ki]:m[2*ki+1]])
		}
		if reason := d.reject(f, r, secret, full, a, abs, w.start+m[0], w.start+m[1]); reason != "" {
			if build && d.opts.Explain != nil {
				line, _ := f.LineCol(abs)
				d.opts.Explain(Explanation{File: f.Path, Line: line, RuleID: r.ID, Match: scan.Redact(secret), Reason: reason})
			}
			continue
		}
		if !build {
			*found = append(*found, spanFinding{rule: ri, start: abs, end: abs + len(secret), generic: r.Generic && r.Value == ""})
			continue
		}
		fd := f.NewFinding(abs)
		fd.Kind = scan.KindSecret
		fd.RuleID = r.ID
		fd.Severity = r.Severity
		fd.Match = scan.Redact(secret)
		fd.Fingerprint = scan.Fingerprint(secret)
		fd.Message = r.Message
		if fd.Message == "" {
			fd.Message = r.Name + " found"
		}
		fd.Fix = r.Fix
		if fd.Fix == "" {
			fd.Fix = "Revoke and rotate this credential, then remove it from the file (and its history); load it from a secret store or environment at run time."
		}
		*found = append(*found, spanFinding{f: fd, rule: ri, start: abs, end: abs + len(secret), generic: r.Generic && r.Value == ""})
	}
}

// spanFinding is a finding with the byte span of its secret.
type spanFinding struct {
	f          scan.Finding // zero when found for redaction
	rule       int
	start, end int
	generic    bool
	decoded    bool // found in the decoded form of the span
}

// emitFound reports one finding per location: of the findings whose
// secrets overlap, only the most specific is reported. A finding on the
// decoded form of a value beats one on its encoded text (it names the
// secret better); then a provider's token format beats a keyed provider
// rule, which beats a syntax rule (an Authorization header, a curl flag),
// which beats the generic assignment rules; then the longer secret, the
// earlier secret, and the rule listed first. SARIF and JSON consumers count
// results per location, and two rules naming one secret are one leak.
func emitFound(rules []Rule, found []spanFinding, emit func(scan.Finding)) {
	if len(found) == 1 {
		emit(found[0].f)
		return
	}
	for i, keep := range oneFindingPerLocation(rules, found) {
		if keep {
			emit(found[i].f)
		}
	}
}

// oneFindingPerLocation marks, for each finding, whether it is the one
// reported at its location (see emitFound). Findings are grouped into runs
// of overlapping spans first, so a file with many findings costs
// O(n log n), not a comparison of every pair.
func oneFindingPerLocation(rules []Rule, found []spanFinding) []bool {
	keep := make([]bool, len(found))
	byStart := make([]int, len(found))
	for i := range byStart {
		byStart[i] = i
	}
	slices.SortFunc(byStart, func(i, j int) int {
		return cmp.Or(cmp.Compare(found[i].start, found[j].start), cmp.Compare(found[i].end, found[j].end), cmp.Compare(i, j))
	})
	better := func(i, j int) int {
		a, b := &found[i], &found[j]
		if a.decoded != b.decoded {
			if a.decoded {
				return -1
			}
			return 1
		}
		return cmp.Or(
			cmp.Compare(rules[b.rule].specificity(), rules[a.rule].specificity()),
			cmp.Compare(b.end-b.start, a.end-a.start),
			cmp.Compare(a.start, b.start),
			cmp.Compare(a.rule, b.rule),
			cmp.Compare(i, j))
	}
	for lo := 0; lo < len(byStart); {
		hi, end := lo+1, found[byStart[lo]].end
		for hi < len(byStart) && found[byStart[hi]].start < end {
			end = max(end, found[byStart[hi]].end)
			hi++
		}
		run := byStart[lo:hi]
		lo = hi
		if len(run) == 1 {
			keep[run[0]] = true
			continue
		}
		slices.SortFunc(run, better)
		var kept []int
		for _, i := range run {
			g := &found[i]
			if !slices.ContainsFunc(kept, func(k int) bool { return found[k].start < g.end && g.start < found[k].end }) {
				kept = append(kept, i)
				keep[i] = true
			}
		}
	}
	return keep
}

// secretSpan picks the secret's span from a submatch index.
func secretSpan(r *Rule, m []int) (int, int) {
	if r.SecretGroup > 0 {
		return m[2*r.SecretGroup], m[2*r.SecretGroup+1]
	}
	names := r.re.get().SubexpNames()
	for g := 1; 2*g+1 < len(m); g++ {
		if n := names[g]; n == "key" || n == "kq" || n == "op" {
			continue // the tokenizer's parts, not the value
		}
		if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
			return m[2*g], m[2*g+1]
		}
	}
	return m[0], m[1]
}

// reject returns why a candidate is not reported, or "".
func (d *Detector) reject(f *scan.File, r *Rule, secret, full string, a assignment, vs, ms, me int) string {
	if r.pathRe != nil && !r.pathRe.MatchString(f.Path) {
		return "not in a file this rule applies to (" + r.Path + ")"
	}
	if len(secret) > maxSecretLen && !r.Multiline {
		return "longer than any credential format (data, not a token)"
	}
	if r.Generic {
		if why := genericContext(f, r, a, secret, vs, me); why != "" {
			return why
		}
	}
	for _, a := range r.allow {
		if a.MatchString(secret) {
			return "matches the rule's allow list (known placeholder)"
		}
	}
	if why := placeholder(secret, !r.Random); why != "" {
		return why
	}
	if r.Family == "database" && wellKnownPasswords[strings.ToLower(secret)] {
		return "a well-known default password: reported as a default credential where it configures a product"
	}
	if r.Entropy > 0 {
		if e := entropy(secret); e < r.Entropy {
			return "entropy " + ftoa(e) + " below the rule's threshold " + ftoa(r.Entropy)
		}
	}
	switch r.Validate {
	case "luhn":
		if why := validCard(f, secret, f.Data, ms, me); why != "" {
			return why
		}
	case "bech32":
		if !validBech32(secret) {
			return "Bech32 checksum does not verify"
		}
	case "github-crc32":
		if !validGitHubToken(secret) {
			return "GitHub token checksum (CRC32 suffix) does not verify"
		}
	case "pem":
		if why := validPEM(full); why != "" {
			return why
		}
	case "jwt":
		if why := validJWT(secret); why != "" {
			return why
		}
	case "basic-auth":
		if why := validBasicAuth(f, secret); why != "" {
			return why
		}
	case "google-api-key":
		if why := firebaseClientKey(f, vs); why != "" {
			return why
		}
	case "userinfo":
		if why := validUserinfo(f, secret); why != "" {
			return why
		}
	}
	return ""
}

// knownExamples are credentials published in vendor documentation.
var knownExamples = []string{
	"AKIAIOSFODNN7EXAMPLE",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
	"AKIAI44QH8DHBEXAMPLE",
	"ASIAIOSFODNN7EXAMPLE",
	"JBSWY3DPEHPK3PXP", // the TOTP secret of the Google Authenticator docs
	"33f!!lloppa",      // the nuget.config reference's sample passwords
	"hal+9ooo_da!sY",
}

// wellKnownPasswords are vendor defaults that the default-credential
// detector reports with their product; the database URL rules leave them.
var wellKnownPasswords = map[string]bool{
	"admin": true, "guest": true, "foobared": true, "postgres": true, "root": true, "password": true,
	"changeme": true, "minioadmin": true, "mysql": true, "oracle": true, "tiger": true, "neo4j": true,
	"cassandra": true, "toor": true, "admin123": true, "123456": true,
}

// placeholderWords mark a value as a template or a documentation stand-in.
var placeholderWords = []string{
	"example", "placeholder", "changeme", "change_me", "change-me", "your_", "your-", "yourkey", "yourtoken",
	"yoursecret", "yourpassword", "insert_", "insert-", "replace_me", "replaceme", "redacted", "dummy",
	"xxxxx", "*****", "....", "abc123", "abcdefgh", "####", "not-a-real", "not_a_real", "notareal", "<", ">", "${", "{{", "}}", "%s", "%(", "$(", "todo", "fixme", "sample",
}

// placeholder reports why secret is a placeholder or known example, or "".
// words=false skips the placeholder words found inside the value.
func placeholder(secret string, words bool) string {
	if slices.Contains(knownExamples, secret) {
		return "published documentation example"
	}
	low := strings.ToLower(secret)
	if nonValues[low] || nonValues[strings.Trim(low, "_-.")] {
		return "placeholder (the value is the word " + secret + ")"
	}
	for _, w := range placeholderWords {
		if words && strings.Contains(low, w) {
			return "placeholder (" + strings.TrimSpace(w) + ")"
		}
	}
	if envNameRe.MatchString(secret) {
		return "placeholder (an environment variable's name, " + secret + ")"
	}
	if formatVerbRe.MatchString(secret) {
		return "placeholder (a format string: " + formatVerbRe.FindString(secret) + ")"
	}
	if why := reference(secret); why != "" {
		return why // postgres://admin:{db_password}@… in an f-string or format string
	}
	if strings.HasSuffix(secret, "...") || strings.HasSuffix(secret, "…") {
		return "placeholder (elided with ...)"
	}
	if secret[0] == '[' && secret[len(secret)-1] == ']' || strings.Contains(secret, ":[") && strings.HasSuffix(secret, "]") {
		return "placeholder ([NAME])"
	}
	if (secret[0] == '$' || secret[0] == '%') && envRefRe.MatchString(secret) {
		return "placeholder (environment variable reference)"
	}
	if run := longestRun(secret); run >= 8 && 2*run >= len(secret) {
		return "placeholder (repeated character)"
	}
	return ""
}

// envNameRe matches a SCREAMING_SNAKE_CASE name such as DB_PASSWORD: the
// name of a variable standing where its value will go.
var envNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$`)

// formatVerbRe finds printf verbs (%s, %04d, %v): a value holding one is
// filled in at run time.
// Only the common verbs, so that percent-encoded bytes (%40) stay data.
var formatVerbRe = regexp.MustCompile(`%[sdvq](?:[^A-Za-z0-9]|$)|%0[0-9]d`)

var envRefRe = regexp.MustCompile(`^\$(?:\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][\w-]*)*)$|^%[A-Za-z_][A-Za-z0-9_]*%$`)

func longestRun(s string) int {
	best, cur := 0, 0
	for i := 0; i < len(s); i++ {
		if i > 0 && s[i] == s[i-1] {
			cur++
		} else {
			cur = 1
		}
		best = max(best, cur)
	}
	return best
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// assignmentFollows reports whether the identifier that contains the
// keyword ending at e is followed by an assignment (":", "=", "=>", ":="),
// after an optional closing quote or bracket; with nextLine, a line break
// also counts (a name: line followed by a value: line).
func assignmentFollows(data []byte, e int, nextLine bool) (ok, valueBelow bool) {
	j := e
	for j < len(data) && isIdentByte(data[j]) {
		j++
	}
	closer := byte(0)
	if j+1 < len(data) && data[j] == '\\' && data[j+1] == '"' {
		j++ // \"key\": inside a string
	}
	if j < len(data) && (data[j] == '"' || data[j] == '\'' || data[j] == '`' || data[j] == ']' || data[j] == '>') {
		closer = data[j]
		j++
	}
	j = skipBlanks(data, j)
	// A declared type between name and operator: Go's var x string = "…",
	// Java's String x = …, TypeScript's x: string = ….
	for _, t := range declTypes {
		if bytes.HasPrefix(data[j:], []byte(t)) && j+len(t) < len(data) && (data[j+len(t)] == ' ' || data[j+len(t)] == '\t') {
			j = skipBlanks(data, j+len(t))
			break
		}
	}
	if j >= len(data) {
		return false, false
	}
	next := byte(0)
	if j+1 < len(data) {
		next = data[j+1]
	}
	switch data[j] {
	case ':', '=':
		// key = <<EOT: the value is on the next line.
		k := j
		for k < len(data) && (data[k] == ':' || data[k] == '=') {
			k++
		}
		k = skipBlanks(data, k)
		// key: | or key: >- (a YAML block scalar): the value is on the
		// next line, as it is after a heredoc's key = <<EOT.
		blockScalar := data[j] == ':' && k > j+1 && k < len(data) && (data[k] == '|' || data[k] == '>')
		return true, blockScalar || k+1 < len(data) && data[k] == '<' && data[k+1] == '<'
	case '?', '.', '+': // Makefile ?=, PHP .=, +=
		return next == '=', false
	case '|':
		return next == '|', false
	case ',': // a call's arguments: setProperty("X_TOKEN", "…")
		return closer == '"' || closer == '\'', false
	case '\r', '\n':
		return nextLine || closer == '>', closer == '>'
	}
	return false, false
}

// declTypes are type names that may stand between a declared name and its
// initialiser.
var declTypes = []string{"string", "String", "str", "const", "final"}

func skipBlanks(data []byte, j int) int {
	for j < len(data) && (data[j] == ' ' || data[j] == '\t') {
		j++
	}
	return j
}

// assignment is what the generic rules' tokenizer read around a value: the
// key name, the character that closed the key (a quote, "]" or ">"), the
// operator, and how the value was written.
type assignment struct {
	key, keyCloser, op string
	quote              byte // '"', '\'', '`', '<' (heredoc) or 0 for a bare value
}

// assignmentOf reads the named groups of a generic rule's match.
func assignmentOf(g *assignGroups, chunk []byte, m []int) assignment {
	var a assignment
	group := func(i int) string {
		if i <= 0 || m[2*i] < 0 {
			return ""
		}
		return string(chunk[m[2*i]:m[2*i+1]])
	}
	a.key, a.keyCloser, a.op = group(g.key), group(g.kq), group(g.op)
	for _, v := range g.values {
		if m[2*v.index] >= 0 {
			a.quote = v.quote
		}
	}
	return a
}

func onlyDigits(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= '0' && c <= '9' {
			out = append(out, c)
		}
	}
	return string(out)
}
