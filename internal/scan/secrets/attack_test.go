package secrets

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestAttackStringSyntaxes: credentials written in string and value
// syntaxes the assignment tokenizer must read (each a way to hide a
// secret from a scanner that knows only "key = value"), and placeholders
// in those syntaxes that must stay quiet. Every case must hold on its own:
// the corpus test allows 5 % misses, this one none.
func TestAttackStringSyntaxes(t *testing.T) {
	g := fakeGen{rand.New(rand.NewPCG(99, 14))}
	pw, tok := g.pick(alnum, 20), g.pick(alnum, 32)
	d := NewDetector(bundledSet(t), Options{})
	for _, tt := range []struct {
		name, path, text string
		leak             bool
	}{
		{"yaml literal block", "values.yaml", "auth:\n  password: |\n    " + pw + "\n", true},
		{"yaml folded block", "values.yaml", "auth:\n  api_token: >-\n    " + tok + "\n  user: x\n", true},
		{"python f-string", "settings.py", `DB_PASSWORD = f"` + pw + `"`, true},
		{"python bytes", "app.py", `app.secret_key = b'` + tok + `'`, true},
		{"python raw string", "app.py", `API_TOKEN = r"` + tok + `"`, true},
		{"toml multi-line basic", "config.toml", "[db]\npassword = \"\"\"" + pw + "\"\"\"\n", true},
		{"toml multi-line literal", "config.toml", "[db]\npassword = '''" + pw + "'''\n", true},
		{"f-string placeholder in a URL", "db.py", `dsn = f"postgres://admin:{db_password}@db.internal/app"`, false},
		{"format placeholder in a URL", "db.py", `dsn = "postgresql://admin:{password}@{host}/app".format(password=p, host=h)`, false},
		{"f-string interpolating", "db.py", `API_TOKEN = f"tk9Q{tenant_id}Zr7{region}Wm2"`, false},
		{"yaml block holding a template", "values.yaml", "auth:\n  password: |\n    {{ .Values.password }}\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := detect(t, d, tt.path, tt.text)
			if found := len(got) > 0; found != tt.leak {
				var why []string
				dx := NewDetector(bundledSet(t), Options{Explain: func(e Explanation) { why = append(why, e.RuleID+": "+e.Reason) }})
				detect(t, dx, tt.path, tt.text)
				t.Errorf("found = %v (%v), want %v; explain:\n%s", found, got, tt.leak, strings.Join(why, "\n"))
			}
		})
	}
}
