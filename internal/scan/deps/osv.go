// Package deps finds dependencies with known vulnerabilities: it parses
// go.mod, package-lock.json, requirements.txt, poetry.lock and Cargo.lock
// and matches them against OSV records loaded offline (a directory of OSV
// JSON files — e.g. an unpacked all.zip, or data/osv of the
// golang.org/x/vulndb module — or an OSV all.zip itself), with the OSV
// SEMVER and ECOSYSTEM range semantics.
package deps

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Vuln is the part of an OSV record this package uses.
type Vuln struct {
	ID               string     `json:"id"`
	Aliases          []string   `json:"aliases"`
	Summary          string     `json:"summary"`
	Details          string     `json:"details"`
	Affected         []Affected `json:"affected"`
	Withdrawn        string     `json:"withdrawn"`
	DatabaseSpecific struct {
		Severity string `json:"severity"`
	} `json:"database_specific"`
}

// Affected is one affected package of an OSV record.
type Affected struct {
	Package struct {
		Ecosystem string `json:"ecosystem"`
		Name      string `json:"name"`
	} `json:"package"`
	Ranges   []Range  `json:"ranges"`
	Versions []string `json:"versions"`
}

// Range is an OSV range.
type Range struct {
	Type   string  `json:"type"` // SEMVER, ECOSYSTEM or GIT
	Events []Event `json:"events"`
}

// Event is an OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// DB indexes OSV records by ecosystem and package name.
type DB struct {
	byPkg map[pkgKey][]*Vuln
	n     int
}

type pkgKey struct{ eco, name string }

// Len returns the number of records loaded.
func (db *DB) Len() int { return db.n }

func normName(eco, name string) string {
	switch eco {
	case "PyPI":
		r := strings.NewReplacer("_", "-", ".", "-")
		return r.Replace(strings.ToLower(name))
	}
	return name
}

func normEco(e string) string {
	if i := strings.IndexByte(e, ':'); i >= 0 {
		e = e[:i] // "Debian:11" -> "Debian"
	}
	return e
}

// Add indexes one record.
func (db *DB) Add(v *Vuln) {
	if v.Withdrawn != "" {
		return
	}
	db.n++
	for _, a := range v.Affected {
		eco := normEco(a.Package.Ecosystem)
		k := pkgKey{eco, normName(eco, a.Package.Name)}
		if !slices.Contains(db.byPkg[k], v) {
			db.byPkg[k] = append(db.byPkg[k], v)
		}
	}
}

// ParseVuln decodes one OSV JSON record.
func ParseVuln(data []byte) (*Vuln, error) {
	var v Vuln
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	if v.ID == "" {
		return nil, fmt.Errorf("OSV record without id")
	}
	return &v, nil
}

// LoadOSV loads a directory tree of OSV JSON files or an OSV zip export.
func LoadOSV(path string) (*DB, error) {
	db := &DB{byPkg: map[pkgKey][]*Vuln{}}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open OSV database: %w", err)
	}
	add := func(name string, data []byte) error {
		v, err := ParseVuln(data)
		if err != nil {
			return fmt.Errorf("OSV record %s: %w", name, err)
		}
		db.Add(v)
		return nil
	}
	if fi.IsDir() {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(p, ".json") {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return add(p, data)
		})
		if err != nil {
			return nil, fmt.Errorf("load OSV directory: %w", err)
		}
		return db, nil
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("open OSV zip: %w", err)
	}
	defer zr.Close()
	for _, zf := range zr.File {
		if !strings.HasSuffix(zf.Name, ".json") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("OSV zip %s: %w", zf.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(rc, 16<<20))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("OSV zip %s: %w", zf.Name, err)
		}
		if err := add(zf.Name, data); err != nil {
			return nil, err
		}
	}
	return db, nil
}

// Lookup returns the records that affect version of package name in eco.
func (db *DB) Lookup(eco, name, version string) []*Vuln {
	var out []*Vuln
	for _, v := range db.byPkg[pkgKey{eco, normName(eco, name)}] {
		for _, a := range v.Affected {
			if normEco(a.Package.Ecosystem) != eco || normName(eco, a.Package.Name) != normName(eco, name) {
				continue
			}
			if affects(a, eco, version) {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// FixedIn returns the fixed versions named for eco/name in v.
func FixedIn(v *Vuln, eco, name string) []string {
	var out []string
	for _, a := range v.Affected {
		if normEco(a.Package.Ecosystem) != eco || normName(eco, a.Package.Name) != normName(eco, name) {
			continue
		}
		for _, r := range a.Ranges {
			for _, e := range r.Events {
				if e.Fixed != "" && !slices.Contains(out, e.Fixed) {
					out = append(out, e.Fixed)
				}
			}
		}
	}
	return out
}

// affects applies the OSV evaluation algorithm to one affected entry.
func affects(a Affected, eco, version string) bool {
	if slices.Contains(a.Versions, version) || (eco == "Go" && slices.Contains(a.Versions, strings.TrimPrefix(version, "v"))) {
		return true
	}
	for _, r := range a.Ranges {
		if r.Type != "SEMVER" && r.Type != "ECOSYSTEM" {
			continue // GIT ranges need commit graphs
		}
		cmp := func(x, y string) int { return Compare(eco, r.Type, x, y) }
		evs := slices.Clone(r.Events)
		slices.SortStableFunc(evs, func(x, y Event) int { return cmp(eventVersion(x), eventVersion(y)) })
		affected := false
		for _, e := range evs {
			switch {
			case e.Introduced != "":
				if e.Introduced == "0" || cmp(version, e.Introduced) >= 0 {
					affected = true
				}
			case e.Fixed != "":
				if cmp(version, e.Fixed) >= 0 {
					affected = false
				}
			case e.LastAffected != "":
				if cmp(version, e.LastAffected) > 0 {
					affected = false
				}
			case e.Limit != "":
				if cmp(version, e.Limit) >= 0 {
					affected = false
				}
			}
		}
		if affected {
			return true
		}
	}
	return false
}

func eventVersion(e Event) string {
	switch {
	case e.Introduced != "":
		return e.Introduced
	case e.Fixed != "":
		return e.Fixed
	case e.LastAffected != "":
		return e.LastAffected
	}
	return e.Limit
}
