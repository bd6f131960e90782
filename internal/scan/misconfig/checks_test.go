package misconfig

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fixture is one section of testdata/checks/*.txt: a file that must make
// every listed check fire (bad) or none of them (good).
type fixture struct {
	bad    bool
	file   string // file name the detector sees (main.tf, pod.yaml, Dockerfile…)
	checks []string
	src    string
	where  string
}

// loadFixtures reads sections headed "-- bad|good NAME: id id… --".
func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	paths, err := filepath.Glob("testdata/checks/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	var out []fixture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var cur *fixture
		for i, line := range strings.SplitAfter(string(b), "\n") {
			if h, ok := strings.CutPrefix(strings.TrimSpace(line), "-- "); ok && strings.HasSuffix(h, " --") {
				h = strings.TrimSuffix(h, " --")
				kind, rest, _ := strings.Cut(h, " ")
				name, ids, found := strings.Cut(rest, ":")
				if (kind != "bad" && kind != "good") || !found {
					t.Fatalf("%s:%d: bad header %q", p, i+1, line)
				}
				out = append(out, fixture{bad: kind == "bad", file: strings.TrimSpace(name), checks: strings.Fields(ids), where: p + ":" + strconv.Itoa(i+1)})
				cur = &out[len(out)-1]
				continue
			}
			if cur != nil {
				cur.src += line
			}
		}
	}
	return out
}

// TestCheckFixtures runs every check against a bad file it must flag and a
// good file it must not; a check without both fails the test.
func TestCheckFixtures(t *testing.T) {
	fixtures := loadFixtures(t)
	haveBad, haveGood := map[string]bool{}, map[string]bool{}
	for _, fx := range fixtures {
		var got []string
		for _, g := range detect(t, fx.file, fx.src) {
			id, _, _ := strings.Cut(g, "@")
			got = append(got, id)
		}
		for _, id := range fx.checks {
			if _, ok := checks[id]; !ok {
				t.Errorf("%s: unknown check %s", fx.where, id)
				continue
			}
			if fx.bad {
				haveBad[id] = true
				if !slices.Contains(got, id) {
					t.Errorf("%s: %s did not fire on its bad fixture (got %v)", fx.where, id, got)
				}
			} else {
				haveGood[id] = true
				if slices.Contains(got, id) {
					t.Errorf("%s: %s fired on its good fixture", fx.where, id)
				}
			}
		}
	}
	for _, c := range Checks() {
		if !haveBad[c.ID] || !haveGood[c.ID] {
			t.Errorf("check %s has no bad and good fixture in testdata/checks (bad %v, good %v)", c.ID, haveBad[c.ID], haveGood[c.ID])
		}
	}
}
