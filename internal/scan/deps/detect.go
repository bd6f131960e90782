package deps

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Detector is a [scan.Detector] for vulnerable dependencies.
type Detector struct{ db *DB }

// New returns a detector over db.
func New(db *DB) *Detector { return &Detector{db: db} }

// Name implements [scan.Detector].
func (*Detector) Name() string { return "deps" }

// Manifest parses a lockfile or manifest by name; ok is false for other
// files. go.sum is not read: it lists every version the module graph
// mentions, not the ones selected, so go.mod is the authority.
func Manifest(name string, data []byte) (deps []Dep, ok bool, err error) {
	switch path.Base(name) {
	case "go.mod":
		deps, err = ParseGoMod(data)
	case "package-lock.json", "npm-shrinkwrap.json":
		deps, err = ParsePackageLock(data)
	case "poetry.lock":
		deps = ParseTOMLPackages(data, "PyPI")
	case "Cargo.lock":
		deps = ParseTOMLPackages(data, "crates.io")
	default:
		b := path.Base(name)
		if strings.HasPrefix(b, "requirements") && strings.HasSuffix(b, ".txt") {
			return ParseRequirements(data), true, nil
		}
		return nil, false, nil
	}
	return deps, true, err
}

// Detect implements [scan.Detector].
func (d *Detector) Detect(ctx context.Context, f *scan.File, emit func(scan.Finding)) error {
	name := f.Path
	if i := strings.LastIndexByte(name, '!'); i >= 0 {
		name = name[i+1:]
	}
	deps, ok, err := Manifest(name, f.Data)
	if !ok || err != nil {
		return nil // a malformed manifest is not a finding; other tools report it
	}
	for _, dep := range deps {
		for _, v := range d.db.Lookup(dep.Ecosystem, dep.Name, dep.Version) {
			fd := f.FindingAt(dep.Line, 0)
			fd.Kind = scan.KindVulnerableDep
			fd.RuleID = v.ID
			fd.Severity = severity(v)
			fd.Match = dep.Name + "@" + dep.Version
			fd.Fingerprint = scan.Fingerprint("osv\x00" + v.ID + "\x00" + dep.Ecosystem + "\x00" + dep.Name + "\x00" + dep.Version)
			ids := v.ID
			if len(v.Aliases) > 0 {
				ids += " (" + strings.Join(v.Aliases, ", ") + ")"
			}
			summary := v.Summary
			if summary == "" {
				summary = firstLine(v.Details)
			}
			fd.Message = fmt.Sprintf("%s %s %s is affected by %s: %s", dep.Ecosystem, dep.Name, dep.Version, ids, summary)
			if fixed := FixedIn(v, dep.Ecosystem, dep.Name); len(fixed) > 0 {
				slices.SortFunc(fixed, func(a, b string) int { return Compare(dep.Ecosystem, "ECOSYSTEM", a, b) })
				fd.Fix = "Upgrade " + dep.Name + " to a fixed version: " + strings.Join(fixed, ", ") + "."
			} else {
				fd.Fix = "No fixed version is known; remove or replace " + dep.Name + ", or mitigate as the advisory describes."
			}
			emit(fd)
		}
	}
	return ctx.Err()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// severity maps an OSV record's database_specific.severity (GHSA style);
// records without one are high: a known vulnerability with unknown impact.
func severity(v *Vuln) scan.Severity {
	switch strings.ToUpper(v.DatabaseSpecific.Severity) {
	case "CRITICAL":
		return scan.SeverityCritical
	case "HIGH":
		return scan.SeverityHigh
	case "MODERATE", "MEDIUM":
		return scan.SeverityMedium
	case "LOW":
		return scan.SeverityLow
	}
	return scan.SeverityHigh
}
