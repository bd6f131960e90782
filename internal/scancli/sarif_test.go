package scancli

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// officialSARIFSchema compiles the OASIS SARIF 2.1.0 schema that package
// report ships as test data (see its testdata/README.md).
func officialSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "scan", "report", "testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const id = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	if err := c.AddResource(id, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// resolvedURIs returns each result's location resolved against the source
// root, as a consumer of the log would resolve it.
func resolvedURIs(t *testing.T, log string) []string {
	t.Helper()
	var l struct {
		Runs []struct {
			OriginalURIBaseIDs map[string]struct{ URI string } `json:"originalUriBaseIds"`
			Results            []struct {
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI, URIBaseID string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(log), &l); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range l.Runs[0].Results {
		al := r.Locations[0].PhysicalLocation.ArtifactLocation
		base, err := url.Parse(l.Runs[0].OriginalURIBaseIDs[al.URIBaseID].URI)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := url.Parse(al.URI)
		if err != nil {
			t.Fatalf("uri %q: %v", al.URI, err)
		}
		out = append(out, base.ResolveReference(ref).Path)
	}
	return out
}

// TestSARIFOutputValidates runs `interlock scan --format sarif` over real
// trees (clean, with findings, with file names that break naive URIs, with
// a secret inside an archive, and a subdirectory of a git work tree) and
// validates each log against the official SARIF 2.1.0 schema.
func TestSARIFOutputValidates(t *testing.T) {
	sch := officialSARIFSchema(t)
	tok := fakeGitHubToken()
	write := func(dir, name string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret := []byte("GITHUB_TOKEN=" + tok + "\n")
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("inner/app.env")
	w.Write(secret)
	zw.Close()

	clean := t.TempDir()
	write(clean, "main.go", []byte("package main\n"))
	findings := t.TempDir()
	write(findings, "deploy.env", secret)
	awkward := t.TempDir()
	awkwardNames := []string{"my file.env", "a#b.env", "what?.env", "[x].env", "ünïcødé/ключ.env", "100%.env"}
	for _, n := range awkwardNames {
		write(awkward, n, secret)
	}
	archive := t.TempDir()
	write(archive, "bundle.zip", zbuf.Bytes())

	for _, tt := range []struct {
		name, dir string
		want      []string // resolved result paths, relative to dir
	}{
		{"clean", clean, nil},
		{"findings", findings, []string{"deploy.env"}},
		{"awkward names", awkward, awkwardNames},
		{"archive member", archive, []string{"bundle.zip"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCmd(t, "", tt.dir, "--format", "sarif", "--kinds", "secret")
			if code == ExitIncomplete {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Errorf("not valid SARIF 2.1.0: %v\n%s", err, out)
			}
			var want []string
			for _, p := range tt.want {
				want = append(want, filepath.ToSlash(filepath.Join(tt.dir, p)))
			}
			got := resolvedURIs(t, out)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("resolved locations = %q, want %q", got, want)
			}
		})
	}
}

// TestSARIFSubdirectoryOfRepository: scanning services/billing inside a git
// work tree reports services/billing/… against the work tree's top, the
// path code scanning knows, not billing-relative paths.
func TestSARIFSubdirectoryOfRepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	sub := filepath.Join(repo, "services", "billing")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "deploy.env"), []byte("GITHUB_TOKEN="+fakeGitHubToken()+"\n"), 0o600)
	out, _, _ := runCmd(t, "", sub, "--format", "sarif", "--kinds", "secret")
	if !strings.Contains(out, `"uri": "services/billing/deploy.env"`) {
		t.Errorf("uri is not repository-relative:\n%s", out)
	}
	if got := resolvedURIs(t, out); len(got) != 1 || got[0] != filepath.ToSlash(filepath.Join(repo, "services/billing/deploy.env")) {
		t.Errorf("resolved = %q", got)
	}
	validateLog(t, officialSARIFSchema(t), out)
}

func validateLog(t *testing.T, sch *jsonschema.Schema, out string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("not valid SARIF 2.1.0: %v", err)
	}
}
