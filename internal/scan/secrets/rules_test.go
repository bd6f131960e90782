package secrets

import (
	"context"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// unsplice removes the "@@" splice markers that keep fake example tokens in
// rules.yaml from looking like live credentials.
func unsplice(s string) string { return strings.ReplaceAll(s, "@@", "") }

func bundledSet(t testing.TB) *RuleSet {
	t.Helper()
	rules, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func detect(t testing.TB, d *Detector, path, text string) []scan.Finding {
	t.Helper()
	var got []scan.Finding
	f := &scan.File{Path: path, Data: []byte(text)}
	if err := d.Detect(context.Background(), f, func(f scan.Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	return got
}

// candidates returns every finding of every rule on text, before one
// finding per location is chosen: a rule's examples must be found by that
// rule even where a more specific rule wins the location.
func candidates(t testing.TB, d *Detector, path, text string) []scan.Finding {
	t.Helper()
	found, err := d.find(context.Background(), &scan.File{Path: path, Data: []byte(text)}, true)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]scan.Finding, len(found))
	for i, g := range found {
		out[i] = g.f
	}
	return out
}

func hasRule(fs []scan.Finding, id string) bool {
	for _, f := range fs {
		if f.RuleID == id {
			return true
		}
	}
	return false
}

func TestBundledRuleCount(t *testing.T) {
	rules, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < 150 {
		t.Errorf("bundled rules = %d, want at least 150", len(rules))
	}
}

// TestRuleExamples checks, for every bundled rule, that each example is
// found by that rule and each counterexample is not. Rules without an
// explicit counterexample are checked against their example with the
// secret cut short, which must not match either.
func TestRuleExamples(t *testing.T) {
	rs := bundledSet(t)
	var explained []Explanation
	d := NewDetector(rs, Options{Explain: func(e Explanation) { explained = append(explained, e) }})
	for _, r := range rs.Rules() {
		t.Run(r.ID, func(t *testing.T) {
			if r.Binary {
				t.Skip("a binary rule: its examples are built by TestPKCS12File")
			}
			if len(r.Examples) == 0 {
				t.Fatal("rule has no examples")
			}
			if len(r.Counterexamples) == 0 && !r.Generic {
				t.Fatal("rule has no counterexamples")
			}
			path := "config/app.env"
			if r.ExamplePath != "" {
				path = r.ExamplePath
			}
			for _, ex := range r.Examples {
				explained = nil
				got := candidates(t, d, path, unsplice(ex))
				if !hasRule(got, r.ID) {
					t.Errorf("example not found:\n%s\nfindings: %v\nexplain: %v", unsplice(ex), got, explained)
				}
				if len(detect(t, d, path, unsplice(ex))) == 0 {
					t.Errorf("example found but nothing reported:\n%s", unsplice(ex))
				}
				for _, f := range got {
					if strings.Contains(unsplice(ex), f.Match) && len(f.Match) > 12 {
						t.Errorf("finding %s carries an unredacted match %q", f.RuleID, f.Match)
					}
				}
			}
			if r.Path != "" && len(r.Examples) > 0 {
				if got := candidates(t, d, "config/app.env", unsplice(r.Examples[0])); hasRule(got, r.ID) {
					t.Errorf("example found outside the rule's path %s", r.Path)
				}
			}
			for _, cex := range r.Counterexamples {
				if got := candidates(t, d, path, unsplice(cex)); hasRule(got, r.ID) {
					t.Errorf("counterexample found:\n%s", unsplice(cex))
				}
			}
		})
	}
}

// TestBundledRulesCompile compiles every bundled regex (the scanner
// compiles them lazily) and checks the secret group.
func TestBundledRulesCompile(t *testing.T) {
	data := bundledRules
	if _, err := Parse(data); err != nil {
		t.Fatal(err)
	}
}

func TestMergeUserRules(t *testing.T) {
	base, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	user, err := Parse([]byte(`rules:
- id: acme-internal-token
  name: ACME internal token
  family: saas
  severity: critical
  keywords: [acme_]
  regex: '\b(acme_[a-z0-9]{24})\b'
- id: jwt
  disabled: true
`))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(Merge(base, user))
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(rs, Options{})
	// interlock:allow generic-api-key fixture for a user-defined rule
	got := detect(t, d, "x.env", "TOKEN=acme_k3j4h5g6f7d8s9a0q1w2e3r4\n")
	if !hasRule(got, "acme-internal-token") {
		t.Errorf("user rule not applied: %v", got)
	}
	for _, r := range rs.Rules() {
		if r.ID == "jwt" {
			t.Error("disabled rule still present")
		}
	}
	if _, err := Parse([]byte("rules:\n- id: bad\n  keywords: [x1]\n  regex: '(('\n")); err == nil {
		t.Error("Parse accepted an invalid regex")
	}
	if _, err := Parse([]byte("rules:\n- id: bad\n  regex: 'x'\n  colour: red\n")); err == nil {
		t.Error("Parse accepted an unknown field")
	}
}
