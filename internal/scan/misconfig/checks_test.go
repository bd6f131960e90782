package misconfig

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/interlock-dev/interlock/internal/scan"
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

// TestTerraformModuleAcrossFiles checks that a resource configured by a
// resource in another file of the same directory is read with it when the
// scanned directory is known, and not mixed with other directories.
func TestTerraformModuleAcrossFiles(t *testing.T) {
	root := fstest.MapFS{
		"infra/bucket.tf":     {Data: []byte("resource \"aws_s3_bucket\" \"b\" {\n  bucket = \"data\"\n}\n")},
		"infra/encryption.tf": {Data: []byte("resource \"aws_s3_bucket_server_side_encryption_configuration\" \"b\" {\n  bucket = aws_s3_bucket.b.id\n  rule {\n    apply_server_side_encryption_by_default {\n      sse_algorithm = \"aws:kms\"\n    }\n  }\n}\n")},
		"other/bucket.tf":     {Data: []byte("resource \"aws_s3_bucket\" \"b\" {\n  bucket = \"data\"\n}\n")},
	}
	scanFile := func(d *Detector, p string) []string {
		var got []string
		if err := d.Detect(context.Background(), &scan.File{Path: p, Data: root[p].Data}, func(f scan.Finding) { got = append(got, f.RuleID) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	d := &Detector{Root: root}
	if got := scanFile(d, "infra/bucket.tf"); slices.Contains(got, "aws-s3-encryption") {
		t.Errorf("encryption configured in a sibling file was not seen: %v", got)
	}
	if got := scanFile(d, "other/bucket.tf"); !slices.Contains(got, "aws-s3-encryption") {
		t.Errorf("another directory's encryption configuration was used: %v", got)
	}
	if got := scanFile(New(), "infra/bucket.tf"); !slices.Contains(got, "aws-s3-encryption") {
		t.Errorf("without the scanned directory the file should be read alone: %v", got)
	}
	if got := scanFile(d, "infra/encryption.tf"); slices.Contains(got, "aws-s3-encryption") || slices.Contains(got, "aws-s3-logging") {
		t.Errorf("a sibling's resources were reported from this file: %v", got)
	}
}
