package deps

import (
	"archive/zip"
	stdcmp "cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

func TestCompare(t *testing.T) {
	for _, tt := range []struct {
		eco, typ, a, b string
		want           int
	}{
		{"Go", "SEMVER", "v1.4.1", "1.4.2", -1},
		{"Go", "SEMVER", "1.10.0", "1.9.9", 1},
		{"npm", "SEMVER", "2.0.0-beta.1", "2.0.0", -1},
		{"npm", "SEMVER", "2.0.0-beta.2", "2.0.0-beta.10", -1},
		{"PyPI", "ECOSYSTEM", "2.0.0rc1", "2.0.0", -1},
		{"PyPI", "ECOSYSTEM", "2.0.0.dev1", "2.0.0a1", -1},
		{"PyPI", "ECOSYSTEM", "2.0.0.post1", "2.0.0", 1},
		{"PyPI", "ECOSYSTEM", "1.10", "1.9.5", 1},
		{"PyPI", "ECOSYSTEM", "1!0.1", "2.0", 1},
		{"PyPI", "ECOSYSTEM", "1.0", "1.0.0", 0},
		{"Debian", "ECOSYSTEM", "1.2.10", "1.2.9", 1},
		{"npm", "SEMVER", "0", "0.0.1", -1},
	} {
		if got := Compare(tt.eco, tt.typ, tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%s %s, %q, %q) = %d, want %d", tt.eco, tt.typ, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	db, err := LoadOSV("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	if db.Len() != 5 {
		t.Errorf("loaded %d records, want 5 (withdrawn ones are skipped)", db.Len())
	}
	for _, tt := range []struct {
		eco, name, version string
		want               []string
	}{
		{"PyPI", "fake-web", "1.9", []string{"PYSEC-0000-0001"}},
		{"PyPI", "fake.web", "2.0.0b3", []string{"PYSEC-0000-0001"}},
		{"PyPI", "fake-web", "2.0.0rc1", nil},
		{"npm", "fake-merge", "1.2.3", []string{"GHSA-fake-fake-0001"}},
		{"npm", "fake-merge", "1.2.4", nil},
		{"npm", "fake-merge", "2.1.0", []string{"GHSA-fake-fake-0001"}},
		{"npm", "fake-merge", "2.1.1", nil},
		{"npm", "fake-merge", "0.9.0", nil},
		{"Go", "example.com/fakeparse", "v1.4.1", []string{"GO-0000-0001"}},
		{"Go", "example.com/fakeparse", "v1.4.2", nil},
		{"Go", "example.com/fakeparse", "v1.5.0", []string{"GO-0000-0001"}},
		{"Go", "example.com/fakeparse", "v1.5.1", nil},
		{"crates.io", "fakecrate", "0.2.9", []string{"RUSTSEC-0000-0001"}},
		{"crates.io", "fakecrate", "0.3.6", []string{"RUSTSEC-0000-0001"}},
		{"crates.io", "fakecrate", "0.2.8", nil},
	} {
		var got []string
		for _, v := range db.Lookup(tt.eco, tt.name, tt.version) {
			got = append(got, v.ID)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Lookup(%s %s %s) (-want +got):\n%s", tt.eco, tt.name, tt.version, diff)
		}
	}
}

func TestLoadZip(t *testing.T) {
	zp := filepath.Join(t.TempDir(), "all.zip")
	f, err := os.Create(zp)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	data, _ := os.ReadFile("testdata/osv/npm/GHSA-fake-0001.json")
	w, _ := zw.Create("GHSA-fake-fake-0001.json")
	w.Write(data)
	zw.Close()
	f.Close()
	db, err := LoadOSV(zp)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(db.Lookup("npm", "fake-merge", "1.0.0")); got != 1 {
		t.Errorf("zip lookup found %d records, want 1", got)
	}
}

func TestDetector(t *testing.T) {
	db, err := LoadOSV("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	d := New(db)
	files := map[string]string{
		"go.mod": "module example.com/app\n\ngo 1.22\n\nrequire (\n\texample.com/fakeparse v1.4.0\n\texample.com/other v1.0.0\n)\n\ntoolchain go1.21.3\n",
		"web/package-lock.json": `{"lockfileVersion": 3, "packages": {"": {"name": "web"},
  "node_modules/fake-merge": {"version": "1.2.0"},
  "node_modules/a/node_modules/fake-merge": {"version": "1.2.4"}}}`,
		"requirements.txt": "# pinned\nFake_Web[extra]==1.0 ; python_version >= '3.8'\nrequests>=2\n",
		"poetry.lock":      "[[package]]\nname = \"fake-web\"\nversion = \"3.0\"\n",
		"Cargo.lock":       "version = 3\n\n[[package]]\nname = \"fakecrate\"\nversion = \"0.3.1\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
	}
	type hit struct {
		File, Rule, Match string
		Line              int
		Sev               scan.Severity
	}
	var got []hit
	for name, content := range files {
		f := &scan.File{Path: name, Data: []byte(content)}
		d.Detect(context.Background(), f, func(fd scan.Finding) {
			got = append(got, hit{fd.File, fd.RuleID, fd.Match, fd.Line, fd.Severity})
			if fd.Kind != scan.KindVulnerableDep || fd.Fix == "" || fd.Fingerprint == "" {
				t.Errorf("incomplete finding %+v", fd)
			}
		})
	}
	want := []hit{
		{"Cargo.lock", "RUSTSEC-0000-0001", "fakecrate@0.3.1", 4, scan.SeverityMedium},
		{"go.mod", "GO-0000-0001", "example.com/fakeparse@v1.4.0", 6, scan.SeverityHigh},
		{"go.mod", "GO-0000-0002", "stdlib@1.21.3", 10, scan.SeverityHigh},
		{"requirements.txt", "PYSEC-0000-0001", "Fake_Web@1.0", 2, scan.SeverityHigh},
		{"web/package-lock.json", "GHSA-fake-fake-0001", "fake-merge@1.2.0", 2, scan.SeverityCritical},
	}
	slices.SortFunc(got, func(a, b hit) int { return stdcmp.Or(strings.Compare(a.File, b.File), a.Line-b.Line) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func FuzzManifests(f *testing.F) {
	f.Add("go.mod", "module m\nrequire x v1.0.0\n")
	f.Add("package-lock.json", `{"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}`)
	f.Add("requirements.txt", "a==1.0\nb[x]==2 ; os_name=='nt'\n")
	f.Add("poetry.lock", "[[package]]\nname = \"a\"\nversion = \"1\"\n")
	f.Add("Cargo.lock", "[[package]]\nname = \"a\"\nversion = \"1\"\n")
	f.Fuzz(func(t *testing.T, name, data string) {
		deps, _, _ := Manifest(name, []byte(data))
		for _, d := range deps {
			if d.Name == "" && d.Ecosystem != "Go" {
				t.Errorf("dependency without a name: %+v", d)
			}
		}
	})
}

func FuzzCompare(f *testing.F) {
	f.Add("PyPI", "1.0rc1", "1.0")
	f.Add("npm", "1.0.0-alpha", "1.0.0")
	f.Fuzz(func(t *testing.T, eco, a, b string) {
		if x, y := Compare(eco, "ECOSYSTEM", a, b), Compare(eco, "ECOSYSTEM", b, a); x != -y {
			t.Errorf("Compare not antisymmetric: (%q,%q)=%d, (%q,%q)=%d", a, b, x, b, a, y)
		}
	})
}

// TestGoVulnDB loads the OSV records shipped in the golang.org/x/vulndb
// module, e.g.
//
//	go mod download -json golang.org/x/vulndb@latest   # note "Dir"
//	INTERLOCK_TEST_VULNDB=<Dir>/data/osv go test ./internal/scan/deps -run GoVulnDB
func TestGoVulnDB(t *testing.T) {
	dir := os.Getenv("INTERLOCK_TEST_VULNDB")
	if dir == "" {
		t.Skip("set INTERLOCK_TEST_VULNDB to the data/osv directory of golang.org/x/vulndb to run")
	}
	db, err := LoadOSV(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, v := range db.Lookup("Go", "github.com/gin-gonic/gin", "v1.5.0") {
		ids = append(ids, v.ID)
	}
	if !slices.Contains(ids, "GO-2020-0001") {
		t.Errorf("gin v1.5.0: got %v, want GO-2020-0001 among them", ids)
	}
	if got := db.Lookup("Go", "github.com/gin-gonic/gin", "v1.6.0"); slices.ContainsFunc(got, func(v *Vuln) bool { return v.ID == "GO-2020-0001" }) {
		t.Error("gin v1.6.0 is fixed for GO-2020-0001")
	}
}
