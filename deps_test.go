package interlock_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/interlock-dev/interlock/"

// importRules writes DESIGN.md §3 down as a test: imports point down, and
// a package may import only the project packages listed for it (plus any
// outside module that is not banned). A package missing from this table
// fails the test, so a new package must take a place in the layering.
var importRules = map[string]struct {
	allow []string // project packages (module-relative) this one may import
	ban   []string // outside import paths this one must not reach, even indirectly
}{
	"cmd/interlock":            {allow: []string{"internal/cli"}},
	"internal/cli":             {allow: []string{"internal/witness", "internal/policy", "internal/app", "internal/apiclient", "internal/dpop", "internal/api/wire", "internal/config", "internal/scancli", "internal/scan", "internal/agent", "internal/tlog", "internal/pki"}},
	"internal/app":             {allow: []string{"internal/keepalive", "internal/elevate", "internal/training", "internal/detect", "internal/review", "internal/sso", "internal/passkey", "internal/console", "internal/notify", "internal/cluster", "internal/logwitness", "internal/change", "internal/api", "internal/agenthub", "internal/ops/exec", "internal/dpop", "internal/api/wire", "internal/store", "internal/config", "internal/ops", "internal/identity", "internal/policy", "internal/audit", "internal/kms", "internal/scan", "internal/tlog", "internal/pki"}},
	"internal/config":          {},
	"internal/passkey":         {allow: []string{"internal/audit", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/console":         {allow: []string{"internal/passkey", "internal/identity", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5", "github.com/cedar-policy/cedar-go"}},
	"internal/dpop":            {ban: []string{"database/sql"}},
	"internal/agenthub":        {allow: []string{"internal/api/wire", "internal/pki", "internal/tlog"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5", "github.com/cedar-policy/cedar-go"}},
	"internal/ops/exec":        {allow: []string{"internal/ops", "internal/audit", "internal/api/wire", "internal/redact"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/usererr":         {},
	"internal/keepalive":       {ban: []string{"net/http"}},
	"internal/redact":          {ban: []string{"database/sql", "net/http"}},
	"internal/api":             {allow: []string{"internal/elevate", "internal/training", "internal/review", "internal/sso", "internal/passkey", "internal/change", "internal/api/wire", "internal/dpop", "internal/agenthub", "internal/ops/exec", "internal/ops", "internal/identity", "internal/policy", "internal/audit", "internal/kms", "internal/scan", "internal/tlog", "internal/pki"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/api/wire":        {},
	"internal/apiclient":       {allow: []string{"internal/api/wire", "internal/pki", "internal/dpop"}, ban: []string{"modernc.org/sqlite", "github.com/cedar-policy/cedar-go"}},
	"internal/identity":        {allow: []string{"internal/dpop", "internal/audit", "internal/kms", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/policy":          {allow: []string{"internal/api/wire", "internal/audit"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/elevate":         {allow: []string{"internal/identity", "internal/policy", "internal/audit", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/training":        {allow: []string{"internal/identity", "internal/audit", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/review":          {allow: []string{"internal/elevate", "internal/identity", "internal/policy", "internal/audit", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/detect":          {allow: []string{"internal/audit"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5", "net/http"}},
	"internal/change":          {allow: []string{"internal/ops", "internal/policy", "internal/identity", "internal/audit", "internal/api/wire"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/ops":             {allow: []string{"internal/audit", "internal/policy", "internal/identity", "internal/kms", "internal/api/wire", "internal/scan"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/audit":           {allow: []string{"internal/tlog", "internal/kms"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/tlog":            {ban: []string{"database/sql", "net/http"}},
	"internal/kms":             {allow: []string{"internal/audit", "internal/tlog"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/scan":            {ban: []string{"database/sql", "net/http"}},
	"internal/scancli":         {allow: []string{"internal/scan"}},
	"internal/pki":             {ban: []string{"database/sql"}},
	"internal/agent":           {allow: []string{"internal/keepalive", "internal/apiclient", "internal/api/wire", "internal/pki", "internal/scan", "internal/redact", "internal/tlog"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5", "github.com/cedar-policy/cedar-go", "database/sql"}},
	"internal/store":           {allow: []string{"internal/elevate", "internal/training", "internal/sso", "internal/passkey", "internal/cluster", "internal/change", "internal/ops/exec", "internal/audit", "internal/identity", "internal/ops", "internal/kms", "internal/tlog", "internal/policy", "internal/api/wire"}},
	"internal/store/storetest": {allow: []string{"internal/elevate", "internal/training", "internal/sso", "internal/passkey", "internal/cluster", "internal/change", "internal/ops/exec", "internal/store", "internal/audit", "internal/identity", "internal/ops", "internal/kms", "internal/tlog", "internal/policy", "internal/api/wire"}},
	"internal/witness":         {allow: []string{"internal/tlog"}, ban: []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/notify":          {allow: []string{"internal/config"}, ban: []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/cluster":         {allow: []string{"internal/api/wire"}, ban: []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/sso":             {allow: []string{"internal/identity", "internal/audit", "internal/config", "internal/dpop"}, ban: []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
	"internal/logwitness":      {allow: []string{"internal/audit", "internal/tlog"}, ban: []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx/v5"}},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(p.ImportPath, module)
		if rel == strings.TrimSuffix(module, "/") || rel == p.ImportPath && p.ImportPath != strings.TrimSuffix(module, "/") {
			continue // the root test package
		}
		rule, ok := ruleFor(rel)
		if !ok {
			t.Errorf("%s has no entry in importRules: give it a place in DESIGN.md §3's layering", rel)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			target := strings.TrimPrefix(imp, module)
			if target != "internal/usererr" && !allowed(rule.allow, target) && !related(rel, target) {
				t.Errorf("%s imports %s, which DESIGN.md §3 does not allow", rel, target)
			}
		}
		deps, err := exec.Command("go", "list", "-deps", p.ImportPath).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p.ImportPath, err)
		}
		for _, d := range strings.Fields(string(deps)) {
			for _, b := range rule.ban {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s depends on %s, which it must never reach", rel, d)
				}
			}
		}
	}
}

// ruleFor finds the rule for a package, falling back to its nearest ruled
// ancestor so that sub-packages inherit their parent's place.
func ruleFor(rel string) (struct{ allow, ban []string }, bool) {
	for p := rel; p != "."; {
		if r, ok := importRules[p]; ok {
			return struct{ allow, ban []string }{r.allow, r.ban}, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return struct{ allow, ban []string }{}, false
}

func allowed(list []string, target string) bool {
	for _, a := range list {
		if target == a || strings.HasPrefix(target, a+"/") {
			return true
		}
	}
	return false
}

// related reports whether one package sits inside the other: a package may
// use its own sub-packages, and a sub-package its parent.
func related(a, b string) bool {
	return strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}
