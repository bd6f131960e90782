// Package secrets detects leaked credentials with rules kept as data.
//
// The bundled rules live in rules.yaml (embedded); users add or override
// rules, matched by ID, with their own YAML file in the same format (see
// [Parse]). Every rule names keywords; one Aho-Corasick automaton over all
// keywords of all rules finds candidate positions in a single pass, and a
// rule's regular expression runs only in a window around its keyword hits.
// Candidates then pass offline checks: entropy, placeholder and known
// example recognition, and validation (GitHub CRC32 checksums, Luhn, PEM
// structure, JWT structure). Nothing is ever sent to a provider.
package secrets

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
)

//go:embed rules.yaml
var bundledRules []byte

// Rule is one secret detector, as written in a rules file.
type Rule struct {
	ID       string        `yaml:"id"`
	Name     string        `yaml:"name"`
	Family   string        `yaml:"family"` // cloud, source, chat, payment, database, key, jwt, registry, saas, ai, generic
	Severity scan.Severity `yaml:"severity"`
	// Keywords locate candidates: at least one must occur near a match.
	// A keyword that contains an upper-case letter matches exactly (token
	// prefixes such as "AKIA"); an all-lower-case keyword matches in any
	// case ("password"). A rule with the "digits" prefilter needs none.
	Keywords  []string `yaml:"keywords"`
	Prefilter string   `yaml:"prefilter"` // "" or "digits" (runs of 13+ digits)
	Regex     string   `yaml:"regex"`
	// SecretGroup is the capture group holding the secret; 0 means the
	// first non-empty group, or the whole match when there are none.
	SecretGroup int `yaml:"secret_group"`
	// Entropy is the minimum Shannon entropy (bits per byte) of the secret.
	Entropy float64 `yaml:"entropy"`
	// Validate names an offline check: luhn, github-crc32, pem, jwt,
	// basic-auth (base64 of user:password) or userinfo (user:password).
	Validate string `yaml:"validate"`
	// Window is how far, in bytes, around a keyword hit the regex looks;
	// default 320. Multiline rules are not clipped to the keyword's line.
	Window    int  `yaml:"window"`
	Multiline bool `yaml:"multiline"`
	// Lines, for rules that are not multiline, is how many lines from the
	// keyword's line on the window spans; default 1.
	Lines int `yaml:"lines"`
	// Generic marks assignment rules (password=…) that get context filters.
	// A generic rule without a regex uses the assignment tokenizer
	// (AssignmentRegex).
	Generic bool `yaml:"generic"`
	// Value, if set, makes a keyed provider rule: the value assigned to a
	// name that contains one of the keywords (discord_token = …) must
	// match this expression in full. The assignment tokenizer reads the
	// syntax, so the rule states only the provider and the value's shape.
	// Keyed rules are generic rules whose key need not be a credential
	// word (discord_client_id) and that count as specific when findings
	// overlap.
	Value string `yaml:"value"`
	// Binary marks a rule on binary files, which the text rules never see:
	// Path (optional) selects the files and Validate names the structure
	// check (pkcs12); it has no regex or keywords.
	Binary bool `yaml:"binary"`
	// Syntax marks a rule that recognises where a credential is written
	// (an Authorization header, a curl flag, user:password in a URL)
	// rather than whose it is. Where findings overlap it yields to a
	// provider's rule and outranks the generic assignment rules.
	Syntax bool `yaml:"syntax"`
	// Path, if set, is a regex the file's path must match (nuget.config).
	Path string `yaml:"path"`
	// ExamplePath is the path the tests give the examples (default
	// config/app.env); a rule with Path needs one that matches it.
	ExamplePath string `yaml:"example_path"`
	// Random marks a token whose body is random characters of a fixed
	// alphabet and length after a fixed prefix (Interlock's own tokens):
	// a placeholder word inside it ("todo", "dummy") is chance, not a
	// stand-in, so only the whole-value placeholder checks apply.
	Random bool `yaml:"random"`
	// Allow lists regexes; a secret matching any is a known placeholder.
	Allow []string `yaml:"allow"`
	// Source says where the token format comes from (the provider's
	// documentation); it is for the rule's maintainers and not reported.
	Source          string   `yaml:"source"`
	Message         string   `yaml:"message"`
	Fix             string   `yaml:"fix"`
	Examples        []string `yaml:"examples"`
	Counterexamples []string `yaml:"counterexamples"`
	Disabled        bool     `yaml:"disabled"`

	re      *lazyRegexp
	valueRe *regexp.Regexp
	pathRe  *regexp.Regexp
	allow   []*regexp.Regexp
}

// specificity ranks a rule for choosing one finding per location (see
// emitFound): 3 for a provider's token format, 2 for a keyed provider rule
// (Value), 1 for a syntax rule, 0 for a generic assignment rule.
func (r *Rule) specificity() int {
	switch {
	case r.Generic && r.Value == "":
		return 0
	case r.Syntax:
		return 1
	case r.Value != "":
		return 2
	}
	return 3
}

// AssignmentRegex is the assignment tokenizer of the generic and keyed
// rules, one expression for the syntaxes of many languages and formats:
//
//	key = value, key: value, key := value, key ::= / :::= / ?= (Makefile),
//	$key .= value (PHP), key += value, "key" => value, key || "default",
//	var key string = "…" (a declared type between name and operator),
//	"KEY", "value" (call arguments such as System.setProperty),
//	<key>\n value\n</key> (XML elements),
//
// with the value double-, single- or backtick-quoted (with a Python
// string prefix f"…", b'…', r"…"; or TOML's triple-quoted strings), in
// escaped quotes (\"…\" inside a JSON or code string), the first line of a
// heredoc (key = <<-EOT, Terraform, Ruby, shell) or of a YAML block scalar
// (key: | or key: >-, the value on the next lines) or bare (a bare value
// ends at a blank, quote, separator, or a \n escape inside a string). The
// named groups are read by assignmentOf: key, kq (what closed the key),
// op, and one of dq, sq, bq, eq, tq, tl, hd, yb, bare for the value.
const AssignmentRegex = `(?:^|[\s"'\x60{(,;\[.$<-])(?P<key>[A-Za-z0-9_.\-]+)(?P<kq>\\?["'\x60\]>]?)(?:[ \t]+(?:string|String|str|const|final))?[ \t]*(?P<op>:{1,3}=|\?=|\.=|\+=|=>|=|:|,|\|\||\r?\n)[ \t]*(?:"""(?P<tq>[^"\r\n]+)"""|'''(?P<tl>[^'\r\n]+)'''|[bBrRuUfF]{0,2}"(?P<dq>[^"\r\n]+)"|[bBrRuUfF]{0,2}'(?P<sq>[^'\r\n]+)'|\x60(?P<bq>[^\x60\r\n]+)\x60|\\"(?P<eq>[^"\\\r\n]+)\\"|<<[-~]?["']?[A-Za-z_][A-Za-z0-9_]*["']?[ \t]*\r?\n[ \t]*(?P<hd>[^\s"'<>]+)|[|>][-+0-9]{0,2}[ \t]*\r?\n[ \t]+(?P<yb>[^\s"'<>#]+)|(?P<bare>(?:[^\s"',;#)}\]<\\]|\\[^nrt])+))`

type rulesFile struct {
	Rules []Rule `yaml:"rules"`
}

// lazyRegexp compiles its expression on first use: a scan uses few of the
// bundled rules, and compiling them all costs start-up time.
type lazyRegexp struct {
	expr   string
	once   sync.Once
	re     *regexp.Regexp
	groups assignGroups
}

func (l *lazyRegexp) get() *regexp.Regexp {
	l.once.Do(func() { l.setRe(regexp.MustCompile(l.expr)) })
	return l.re
}

func (l *lazyRegexp) setRe(re *regexp.Regexp) {
	l.re = re
	l.groups = assignGroups{key: re.SubexpIndex("key"), kq: re.SubexpIndex("kq"), op: re.SubexpIndex("op")}
	for name, q := range map[string]byte{"dq": '"', "sq": '\'', "bq": '`', "eq": '"', "hd": '<', "tq": '"', "tl": '\'', "yb": '|'} {
		if i := re.SubexpIndex(name); i > 0 {
			l.groups.values = append(l.groups.values, valueGroup{i, q})
		}
	}
}

// assignGroups are the indexes of the tokenizer's named groups in a rule's
// regex (-1 when absent), looked up once per rule.
type assignGroups struct {
	key, kq, op int
	values      []valueGroup
}

type valueGroup struct {
	index int
	quote byte
}

// Bundled returns the rules shipped with interlock. Their regular
// expressions are compiled on first use (the tests compile them all).
func Bundled() ([]Rule, error) { return parse(bundledRules, false) }

// Parse decodes a rules file strictly (unknown keys are errors) and
// compiles every rule, so that errors in user rules surface at once.
func Parse(data []byte) ([]Rule, error) { return parse(data, true) }

func parse(data []byte, eager bool) ([]Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rf rulesFile
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("decode rules: %w", err)
	}
	seen := map[string]bool{}
	for i := range rf.Rules {
		r := &rf.Rules[i]
		if seen[r.ID] {
			return nil, fmt.Errorf("rule %q defined twice", r.ID)
		}
		seen[r.ID] = true
		if err := r.compile(eager); err != nil {
			return nil, err
		}
	}
	return rf.Rules, nil
}

func (r *Rule) compile(eager bool) error {
	if r.ID == "" {
		return errors.New("rule without id")
	}
	if r.Disabled {
		return nil
	}
	if r.Value != "" {
		r.Generic = true
		vre, err := regexp.Compile(`^(?:` + r.Value + `)$`)
		if err != nil {
			return fmt.Errorf("rule %s value: %w", r.ID, err)
		}
		r.valueRe = vre
	}
	if r.Path != "" {
		pre, err := regexp.Compile(r.Path)
		if err != nil {
			return fmt.Errorf("rule %s path: %w", r.ID, err)
		}
		r.pathRe = pre
	}
	if r.Binary {
		if r.Validate != "pkcs12" {
			return fmt.Errorf("rule %s: a binary rule needs validate: pkcs12", r.ID)
		}
		if r.Regex != "" || len(r.Keywords) > 0 || r.Generic {
			return fmt.Errorf("rule %s: a binary rule has no regex, keywords or value", r.ID)
		}
		r.re = &lazyRegexp{}
		return nil
	}
	if r.Regex == "" && r.Generic {
		r.Regex = AssignmentRegex
	}
	if r.Regex == "" {
		return fmt.Errorf("rule %s: no regex", r.ID)
	}
	if len(r.Keywords) == 0 && r.Prefilter == "" {
		return fmt.Errorf("rule %s: needs keywords or a prefilter", r.ID)
	}
	if r.Prefilter != "" && r.Prefilter != "digits" {
		return fmt.Errorf("rule %s: unknown prefilter %q", r.ID, r.Prefilter)
	}
	switch r.Validate {
	case "", "luhn", "github-crc32", "pem", "jwt", "basic-auth", "userinfo", "google-api-key", "bech32":
	default:
		return fmt.Errorf("rule %s: unknown validation %q", r.ID, r.Validate)
	}
	r.re = &lazyRegexp{expr: r.Regex}
	if eager {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return fmt.Errorf("rule %s: %w", r.ID, err)
		}
		if r.SecretGroup > re.NumSubexp() {
			return fmt.Errorf("rule %s: secret_group %d but regex has %d groups", r.ID, r.SecretGroup, re.NumSubexp())
		}
		r.re.setRe(re)
		r.re.once.Do(func() {})
	}
	r.allow = r.allow[:0]
	for _, a := range r.Allow {
		are, err := regexp.Compile(a)
		if err != nil {
			return fmt.Errorf("rule %s allow: %w", r.ID, err)
		}
		r.allow = append(r.allow, are)
	}
	for _, k := range r.Keywords {
		if len(k) < 2 {
			return fmt.Errorf("rule %s: keyword %q too short", r.ID, k)
		}
	}
	if r.Window <= 0 {
		r.Window = 320
	}
	if r.Generic {
		for i, k := range r.Keywords {
			r.Keywords[i] = strings.ToLower(k)
		}
	}
	return nil
}

// Merge returns base with each rule of extra added, replacing a base rule
// with the same ID. A rule with disabled: true removes the base rule.
func Merge(base, extra []Rule) []Rule {
	out := slices.Clone(base)
	for _, e := range extra {
		i := slices.IndexFunc(out, func(r Rule) bool { return r.ID == e.ID })
		switch {
		case i >= 0 && e.Disabled:
			out = slices.Delete(out, i, i+1)
		case i >= 0:
			out[i] = e
		case !e.Disabled:
			out = append(out, e)
		}
	}
	return out
}

// RuleSet is a compiled set of rules with its keyword automaton.
type RuleSet struct {
	rules      []Rule
	kw         *keywordMatcher
	kwRules    [][]kwRule // keyword index -> rules
	digitRules []int
	binRules   []int // rules on binary files
}

// kwRule ties a keyword to a rule; exact is set when the keyword must
// match case-sensitively.
type kwRule struct {
	rule  int
	exact string
}

// Compile builds the keyword automaton over rules.
func Compile(rules []Rule) (*RuleSet, error) {
	rs := &RuleSet{}
	kwIndex := map[string]int{}
	var kws []string
	for _, r := range rules {
		if r.Disabled {
			continue
		}
		if r.re == nil {
			if err := r.compile(true); err != nil {
				return nil, err
			}
		}
		ri := len(rs.rules)
		rs.rules = append(rs.rules, r)
		if r.Prefilter == "digits" {
			rs.digitRules = append(rs.digitRules, ri)
		}
		if r.Binary {
			rs.binRules = append(rs.binRules, ri)
			continue
		}
		for _, k := range r.Keywords {
			k = strings.ToLower(k)
			ki, ok := kwIndex[k]
			if !ok {
				ki = len(kws)
				kwIndex[k] = ki
				kws = append(kws, k)
				rs.kwRules = append(rs.kwRules, nil)
			}
			kr := kwRule{rule: ri}
			if orig := r.Keywords[slices.IndexFunc(r.Keywords, func(o string) bool { return strings.ToLower(o) == k })]; orig != k {
				kr.exact = orig
			}
			if !slices.Contains(rs.kwRules[ki], kr) {
				rs.kwRules[ki] = append(rs.kwRules[ki], kr)
			}
		}
	}
	rs.kw = newKeywordMatcher(kws)
	return rs, nil
}

// Rules returns the compiled rules.
func (rs *RuleSet) Rules() []Rule { return rs.rules }
