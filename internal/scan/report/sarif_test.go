package report_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/scan/report"
)

func finding(file, rule string, sev scan.Severity, line, col int) scan.Finding {
	return scan.Finding{Kind: scan.KindSecret, RuleID: rule, Severity: sev, File: file, Line: line, Column: col,
		Match: "ghp_…Q8", Fingerprint: "fp-" + rule + file, Message: "A token", Fix: "Rotate it."}
}

type sarifOut struct {
	Runs []struct {
		Tool struct {
			Driver struct {
				Rules []struct{ ID string } `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		OriginalURIBaseIDs map[string]struct{ URI string } `json:"originalUriBaseIds"`
		Artifacts          []struct {
			Location    struct{ URI, URIBaseID string } `json:"location"`
			ParentIndex *int                            `json:"parentIndex"`
		} `json:"artifacts"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI       string `json:"uri"`
						URIBaseID string `json:"uriBaseId"`
						Index     *int   `json:"index"`
					} `json:"artifactLocation"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			RelatedLocations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI   string `json:"uri"`
						Index *int   `json:"index"`
					} `json:"artifactLocation"`
					Region struct{ StartLine int } `json:"region"`
				} `json:"physicalLocation"`
			} `json:"relatedLocations"`
			Properties map[string]any `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func render(t *testing.T, fs []scan.Finding, o report.SARIFOptions) ([]byte, sarifOut) {
	t.Helper()
	var buf bytes.Buffer
	if err := report.SARIFWith(&buf, fs, report.Summary{Notes: []string{"x.7z: not a readable archive"}}, o); err != nil {
		t.Fatal(err)
	}
	var out sarifOut
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), out
}

// TestSARIFValidatesAgainstSchema renders logs that once broke SARIF
// consumers and validates each against the official schema.
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	sch := sarifSchema(t)
	root := report.SARIFOptions{SourceRoot: "/home/dev/my repo/ünï", PathPrefix: "sub dir"}
	for name, fs := range map[string][]scan.Finding{
		"clean":         nil,
		"findings":      {finding("app.env", "github-pat", scan.SeverityCritical, 3, 7)},
		"awkward names": {finding("a b#c?d[e]f%g:h+ü€.env", "github-pat", scan.SeverityHigh, 1, 1), finding(":colon first", "github-pat", scan.SeverityHigh, 1, 1)},
		"archive":       {finding("bundle.zip!inner dir/app.env", "github-pat", scan.SeverityHigh, 2, 1), finding("outer.tar.gz!in.zip!deep/#x.env", "aws", scan.SeverityHigh, 4, 2)},
		"same span":     {finding("a.env", "generic-api-key", scan.SeverityHigh, 1, 5), finding("a.env", "github-pat", scan.SeverityCritical, 1, 5)},
	} {
		t.Run(name, func(t *testing.T) {
			for _, o := range []report.SARIFOptions{root, {}} {
				log, _ := render(t, fs, o)
				validSARIF(t, sch, log)
			}
		})
	}
}

func TestSARIFCleanScanHasEmptyRules(t *testing.T) {
	log, _ := render(t, nil, report.SARIFOptions{})
	if !strings.Contains(string(log), `"rules": []`) {
		t.Errorf("a clean scan's rules are not an empty array:\n%s", log)
	}
}

// TestSARIFURIs: every path becomes a relative reference that parses back
// to the same path under the source root, whatever it contains.
func TestSARIFURIs(t *testing.T) {
	names := []string{"a b.env", "x#y.env", "q?.env", "[br].env", "ünïcødé.env", "50%.env", ":c.env", "plus+semi;.env"}
	var fs []scan.Finding
	for _, n := range names {
		fs = append(fs, finding("dir/"+n, "github-pat", scan.SeverityHigh, 1, 1))
	}
	_, out := render(t, fs, report.SARIFOptions{SourceRoot: "/src/my repo", PathPrefix: "svc"})
	run := out.Runs[0]
	base, err := url.Parse(run.OriginalURIBaseIDs[report.SourceRootID].URI)
	if err != nil || base.Scheme != "file" || base.Path != "/src/my repo/" {
		t.Fatalf("originalUriBaseIds = %v (%v)", run.OriginalURIBaseIDs, err)
	}
	got := map[string]bool{}
	for _, r := range run.Results {
		al := r.Locations[0].PhysicalLocation.ArtifactLocation
		if al.URIBaseID != report.SourceRootID {
			t.Errorf("%s: uriBaseId %q", al.URI, al.URIBaseID)
		}
		ref, err := url.Parse(al.URI)
		if err != nil || ref.Scheme != "" || ref.Fragment != "" || ref.RawQuery != "" {
			t.Errorf("%q is not a plain relative reference: %+v %v", al.URI, ref, err)
			continue
		}
		got[base.ResolveReference(ref).Path] = true
	}
	for _, n := range names {
		if !got["/src/my repo/svc/dir/"+n] {
			t.Errorf("%q does not resolve back; got %v", n, got)
		}
	}
}

// TestSARIFArchiveMember: a finding in bundle.zip!inner/app.env is a result
// on bundle.zip (a path code scanning can show) whose related location is
// the member, a nested artifact whose parent is the archive.
func TestSARIFArchiveMember(t *testing.T) {
	_, out := render(t, []scan.Finding{finding("bundle.zip!inner/app.env", "github-pat", scan.SeverityHigh, 2, 1)}, report.SARIFOptions{})
	run := out.Runs[0]
	r := run.Results[0]
	al := r.Locations[0].PhysicalLocation.ArtifactLocation
	if al.URI != "bundle.zip" || al.Index == nil || run.Artifacts[*al.Index].Location.URI != "bundle.zip" {
		t.Fatalf("primary location = %+v, artifacts %+v", al, run.Artifacts)
	}
	if strings.Contains(al.URI, "!") {
		t.Errorf("uri %q carries the member", al.URI)
	}
	rel := r.RelatedLocations[0].PhysicalLocation
	if rel.ArtifactLocation.Index == nil || rel.Region.StartLine != 2 {
		t.Fatalf("related location = %+v", rel)
	}
	member := run.Artifacts[*rel.ArtifactLocation.Index]
	if member.Location.URI != "/inner/app.env" || member.ParentIndex == nil || *member.ParentIndex != *al.Index {
		t.Errorf("member artifact = %+v", member)
	}
}

// TestSARIFOneResultPerLocation: two rules on one span give one result,
// the specific rule's, and the other is listed in its properties.
func TestSARIFOneResultPerLocation(t *testing.T) {
	fs := []scan.Finding{
		finding("a.env", "generic-api-key", scan.SeverityCritical, 1, 5),
		finding("a.env", "github-pat", scan.SeverityHigh, 1, 5),
		finding("a.env", "generic-password", scan.SeverityHigh, 2, 1),
		finding("a.env", "generic-api-key", scan.SeverityHigh, 2, 9),
	}
	_, out := render(t, fs, report.SARIFOptions{})
	res := out.Runs[0].Results
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	if res[0].RuleID != "github-pat" {
		t.Errorf("kept %s, want github-pat (specific beats generic)", res[0].RuleID)
	}
	also, _ := res[0].Properties["alsoMatched"].([]any)
	if len(also) != 1 || also[0].(map[string]any)["ruleId"] != "generic-api-key" {
		t.Errorf("alsoMatched = %v", res[0].Properties["alsoMatched"])
	}
	if len(out.Runs[0].Tool.Driver.Rules) != 3 {
		t.Errorf("rules = %v", out.Runs[0].Tool.Driver.Rules)
	}
}
