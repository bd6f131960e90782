package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// SourceRootID is the uriBaseId of every location in interlock's SARIF: the
// root of the source tree (the git work tree holding the target, or the
// target directory itself). run.originalUriBaseIds gives its file:// URI
// when it is known.
const SourceRootID = "%SRCROOT%"

// SARIFOptions says where the scanned paths are rooted.
type SARIFOptions struct {
	// Version is the tool version, if known.
	Version string
	// SourceRoot is the absolute directory the URIs are relative to (a
	// git work tree's top, or the scanned directory); "" when there is
	// none (standard input).
	SourceRoot string
	// PathPrefix is the slash path of the scanned directory inside
	// SourceRoot ("" or "sub/dir"); it is put before each finding's path,
	// so a subdirectory scan reports repository paths.
	PathPrefix string
}

// RuleInfo describes a rule for SARIF's tool.driver.rules.
type RuleInfo struct {
	ID, Name, Help string
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool               sarifTool                `json:"tool"`
	OriginalURIBaseIDs map[string]sarifArtifact `json:"originalUriBaseIds,omitempty"`
	Artifacts          []sarifArtifactObj       `json:"artifacts,omitempty"`
	Results            []sarifResult            `json:"results"`
	Invocations        []sarifInvocation        `json:"invocations"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name,omitempty"`
	ShortDescription     sarifText      `json:"shortDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration map[string]any `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	RelatedLocations    []sarifLocation   `json:"relatedLocations,omitempty"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	ID               *int          `json:"id,omitempty"`
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
	Message          *sarifText    `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI       string `json:"uri,omitempty"`
	URIBaseID string `json:"uriBaseId,omitempty"`
	Index     *int   `json:"index,omitempty"`
}

type sarifArtifactObj struct {
	Location    sarifArtifact `json:"location"`
	ParentIndex *int          `json:"parentIndex,omitempty"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

func sarifLevel(s scan.Severity) string {
	switch {
	case s >= scan.SeverityHigh:
		return "error"
	case s == scan.SeverityMedium:
		return "warning"
	}
	return "note"
}

// securitySeverity maps to GitHub's 0.0–10.0 "security-severity".
func securitySeverity(s scan.Severity) string {
	return [...]string{"1.0", "3.0", "5.5", "8.0", "9.5"}[s]
}

// SARIF writes a SARIF 2.1.0 log with one run and no source root.
func SARIF(w io.Writer, fs []scan.Finding, s Summary, version string) error {
	return SARIFWith(w, fs, s, SARIFOptions{Version: version})
}

// SARIFWith writes a SARIF 2.1.0 log with one run that validates against
// the OASIS schema whatever the findings:
//
//   - tool.driver.rules is always an array, empty for a clean scan;
//   - each location's uri is a percent-encoded (RFC 3986) relative
//     reference against [SourceRootID], repository-relative when the
//     target is inside a git work tree;
//   - a finding inside an archive ("bundle.zip!inner/app.env") is reported
//     on the top-level archive file, which code-scanning services can
//     show, and its exact place is a related location naming the member
//     as a nested artifact (run.artifacts with parentIndex);
//   - one result per location: see [collapse].
func SARIFWith(w io.Writer, fs []scan.Finding, s Summary, o SARIFOptions) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "interlock", Version: o.Version,
		InformationURI: "https://github.com/interlock-dev/interlock", Rules: []sarifRule{}}}}
	if o.SourceRoot != "" {
		run.OriginalURIBaseIDs = map[string]sarifArtifact{SourceRootID: {URI: dirURI(o.SourceRoot)}}
	}
	index := map[string]int{}
	for _, f := range fs {
		if _, ok := index[f.RuleID]; ok {
			continue
		}
		index[f.RuleID] = len(run.Tool.Driver.Rules)
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:                   f.RuleID,
			ShortDescription:     sarifText{Text: firstSentence(f.Message)},
			Help:                 sarifText{Text: cmp.Or(f.Fix, firstSentence(f.Message))},
			DefaultConfiguration: map[string]any{"level": sarifLevel(f.Severity)},
			Properties:           map[string]any{"tags": []string{"security", string(f.Kind)}, "security-severity": securitySeverity(f.Severity)},
		})
	}
	arts := &artifacts{byPath: map[string]int{}, base: baseID(o)}
	run.Results = []sarifResult{}
	for _, g := range collapse(fs) {
		f := g[0]
		res := sarifResult{
			RuleID:              f.RuleID,
			RuleIndex:           index[f.RuleID],
			Level:               sarifLevel(f.Severity),
			Message:             sarifText{Text: f.Message + " (" + f.Match + ")"},
			PartialFingerprints: map[string]string{"interlock/v1": f.Fingerprint},
			Properties:          map[string]any{},
		}
		region := &sarifRegion{StartLine: max(1, f.Line), StartColumn: f.Column}
		parts := strings.Split(f.File, "!")
		top := arts.index(parts[:1], o.PathPrefix)
		if len(parts) == 1 {
			res.Locations = []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: arts.list[top].Location.URI, URIBaseID: arts.base, Index: &top},
				Region:           region,
			}}}
		} else {
			member := arts.index(parts, o.PathPrefix)
			zero := 0
			inner := strings.Join(parts[1:], "!")
			res.Message.Text += fmt.Sprintf(" in %s, line %d", inner, max(1, f.Line))
			res.Locations = []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: arts.list[top].Location.URI, URIBaseID: arts.base, Index: &top},
			}}}
			res.RelatedLocations = []sarifLocation{{ID: &zero, PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{Index: &member},
				Region:           region,
			}, Message: &sarifText{Text: inner + " inside " + parts[0]}}}
			res.Properties["archiveMember"] = inner
		}
		if f.Commit != "" {
			res.Properties["commit"], res.Properties["author"], res.Properties["date"] = f.Commit, f.Author, f.Date
		}
		if len(g) > 1 {
			var also []map[string]string
			for _, o := range g[1:] {
				also = append(also, map[string]string{"ruleId": o.RuleID, "level": sarifLevel(o.Severity), "severity": o.Severity.String(),
					"message": o.Message, "fingerprint": o.Fingerprint})
			}
			res.Properties["alsoMatched"] = also
		}
		if len(res.Properties) == 0 {
			res.Properties = nil
		}
		run.Results = append(run.Results, res)
	}
	run.Artifacts = arts.list
	inv := sarifInvocation{ExecutionSuccessful: !s.Stats.Incomplete()}
	for _, k := range s.Stats.Skipped {
		if k.Reason.Incomplete() {
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{Level: "warning", Message: sarifText{Text: k.Path + ": " + string(k.Reason)}})
		}
	}
	for _, n := range s.Notes {
		inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{Level: "note", Message: sarifText{Text: n}})
	}
	run.Invocations = []sarifInvocation{inv}
	log := sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func baseID(o SARIFOptions) string {
	if o.SourceRoot == "" && o.PathPrefix == "" {
		return ""
	}
	return SourceRootID
}

// artifacts builds run.artifacts: each top-level file once, and each
// archive member once as a nested artifact whose parentIndex is the
// archive (itself perhaps a member) that holds it.
type artifacts struct {
	list   []sarifArtifactObj
	byPath map[string]int
	base   string
}

// index returns the index of the artifact for the "!"-separated path
// parts, adding it and its parents as needed.
func (a *artifacts) index(parts []string, prefix string) int {
	key := strings.Join(parts, "!")
	if i, ok := a.byPath[key]; ok {
		return i
	}
	var obj sarifArtifactObj
	if len(parts) == 1 {
		obj.Location = sarifArtifact{URI: encodePath(path.Join(prefix, parts[0])), URIBaseID: a.base}
	} else {
		parent := a.index(parts[:len(parts)-1], prefix)
		obj.ParentIndex = &parent
		// The spec (3.24.2) wants a nested artifact's uri to be a relative
		// reference to its path inside the parent; like the spec's own
		// example, it is written from the archive's root.
		obj.Location = sarifArtifact{URI: "/" + encodePath(strings.TrimPrefix(parts[len(parts)-1], "/"))}
	}
	i := len(a.list)
	a.list = append(a.list, obj)
	a.byPath[key] = i
	return i
}

// encodePath percent-encodes a slash path as an RFC 3986 relative
// reference: every byte but unreserved characters and "/" is encoded, so
// spaces, "#", "?", "[", "]", ":", "%" and non-ASCII bytes cannot change
// the reference's meaning (a ":" in the first segment would read as a
// scheme). url.PathEscape leaves ":" and "+" alone, hence this function.
func encodePath(p string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// dirURI is the file:// URI of an absolute directory, ending in "/" as
// originalUriBaseIds requires (3.14.14).
func dirURI(dir string) string {
	dir = strings.ReplaceAll(dir, "\\", "/")
	if !strings.HasPrefix(dir, "/") {
		dir = "/" + dir // a Windows path: C:/x → /C:/x
	}
	if !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	return (&url.URL{Scheme: "file", Path: dir}).String()
}

// collapse groups findings that start at the same place (file, commit,
// line, column) and orders each group best first: a code-scanning service
// shows one alert per location, and two alerts on one span (a vendor
// token also caught by generic-api-key, a default password also caught by
// generic-password) are noise that hides the better one. The best is the
// most specific rule (any rule before a generic-* one), then the most
// severe; the others are kept in the result's properties ("alsoMatched"),
// so nothing is lost. The secret engine already reports one finding per
// location (the most specific rule's); this keeps SARIF to one result per
// location when two passes report the same spot. JSON and table output
// keep every finding they are given.
func collapse(fs []scan.Finding) [][]scan.Finding {
	type at struct {
		file, commit string
		line, col    int
	}
	var order []at
	groups := map[at][]scan.Finding{}
	for _, f := range fs {
		k := at{f.File, f.Commit, f.Line, f.Column}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], f)
	}
	out := make([][]scan.Finding, 0, len(order))
	for _, k := range order {
		g := groups[k]
		slices.SortStableFunc(g, func(a, b scan.Finding) int {
			return cmp.Or(cmp.Compare(generic(a), generic(b)), cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.RuleID, b.RuleID))
		})
		out = append(out, g)
	}
	return out
}

func generic(f scan.Finding) int {
	if strings.HasPrefix(f.RuleID, "generic-") {
		return 1
	}
	return 0
}

func firstSentence(s string) string {
	if i := strings.Index(s, " (source:"); i > 0 {
		s = s[:i]
	}
	return s
}
