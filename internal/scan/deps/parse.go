package deps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/mod/modfile"
)

// Dep is one resolved dependency.
type Dep struct {
	Ecosystem string // OSV ecosystem name: Go, npm, PyPI, crates.io
	Name      string
	Version   string
	Line      int
}

// ParseGoMod returns the modules a go.mod requires.
func ParseGoMod(data []byte) ([]Dep, error) {
	// Parse understands every directive (including toolchain); ParseLax
	// tolerates what Parse rejects but skips toolchain lines.
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		if f, err = modfile.ParseLax("go.mod", data, nil); err != nil {
			return nil, fmt.Errorf("parse go.mod: %w", err)
		}
	}
	var out []Dep
	for _, r := range f.Require {
		line := 0
		if r.Syntax != nil {
			line = r.Syntax.Start.Line
		}
		out = append(out, Dep{Ecosystem: "Go", Name: r.Mod.Path, Version: r.Mod.Version, Line: line})
	}
	// The go line is a minimum language version, not the toolchain that
	// builds the module; only a toolchain line pins the standard library.
	if f.Toolchain != nil && strings.HasPrefix(f.Toolchain.Name, "go1") {
		line := 0
		if f.Toolchain.Syntax != nil {
			line = f.Toolchain.Syntax.Start.Line
		}
		v := strings.TrimPrefix(f.Toolchain.Name, "go")
		if i := strings.IndexByte(v, '-'); i >= 0 {
			v = v[:i] // go1.22.1-custom
		}
		out = append(out, Dep{Ecosystem: "Go", Name: "stdlib", Version: v, Line: line})
	}
	return out, nil
}

// ParsePackageLock returns the packages of an npm package-lock.json
// (lockfileVersion 1, 2 or 3).
func ParsePackageLock(data []byte) ([]Dep, error) {
	var lock struct {
		Packages     map[string]struct{ Version string } `json:"packages"`
		Dependencies map[string]json.RawMessage          `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("parse package-lock.json: %w", err)
	}
	var out []Dep
	lineOf := func(key string) int {
		i := bytes.Index(data, []byte(`"`+key+`"`))
		if i < 0 {
			return 0
		}
		return bytes.Count(data[:i], []byte("\n")) + 1
	}
	if len(lock.Packages) > 0 {
		for p, v := range lock.Packages {
			i := strings.LastIndex(p, "node_modules/")
			if i < 0 || v.Version == "" {
				continue
			}
			name := p[i+len("node_modules/"):]
			if !validNPMName(name) {
				continue
			}
			out = append(out, Dep{Ecosystem: "npm", Name: name, Version: v.Version, Line: lineOf(p)})
		}
		return out, nil
	}
	var walk func(deps map[string]json.RawMessage, depth int) error
	walk = func(deps map[string]json.RawMessage, depth int) error {
		if depth > 64 {
			return fmt.Errorf("package-lock.json nested too deeply")
		}
		for name, raw := range deps {
			var d struct {
				Version      string                     `json:"version"`
				Dependencies map[string]json.RawMessage `json:"dependencies"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				return err
			}
			// A key of "" (or of blanks) names no package: a version under it
			// cannot be looked up, and a nameless finding helps nobody.
			if d.Version != "" && validNPMName(name) {
				out = append(out, Dep{Ecosystem: "npm", Name: name, Version: d.Version, Line: lineOf(name)})
			}
			if err := walk(d.Dependencies, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(lock.Dependencies, 0); err != nil {
		return nil, fmt.Errorf("parse package-lock.json: %w", err)
	}
	return out, nil
}

// validNPMName reports whether a lockfile key can name an npm package:
// not empty, no blanks or control characters.
func validNPMName(name string) bool {
	return name != "" && !strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// ParseRequirements returns the pinned (==) requirements of a pip
// requirements file.
func ParseRequirements(data []byte) []Dep {
	var out []Dep
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if j := strings.Index(line, " #"); j >= 0 {
			line = line[:j]
		}
		if line == "" || line[0] == '#' || line[0] == '-' {
			continue
		}
		if j := strings.IndexByte(line, ';'); j >= 0 {
			line = strings.TrimSpace(line[:j])
		}
		name, ver, ok := strings.Cut(line, "==")
		if !ok || strings.HasPrefix(ver, "=") {
			continue
		}
		if j := strings.IndexByte(name, '['); j >= 0 {
			name = name[:j]
		}
		ver = strings.TrimSpace(ver)
		if j := strings.IndexAny(ver, " ,\\"); j >= 0 {
			ver = ver[:j]
		}
		name = strings.TrimSpace(name)
		if name == "" || ver == "" || strings.ContainsAny(ver, "*") {
			continue
		}
		out = append(out, Dep{Ecosystem: "PyPI", Name: name, Version: ver, Line: i + 1})
	}
	return out
}

// ParseTOMLPackages returns name/version of each [[package]] table of a
// poetry.lock or Cargo.lock file (the only part of TOML these use here).
func ParseTOMLPackages(data []byte, eco string) []Dep {
	var out []Dep
	var cur *Dep
	flush := func() {
		if cur != nil && cur.Name != "" && cur.Version != "" {
			out = append(out, *cur)
		}
		cur = nil
	}
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "[") {
			flush()
			if line == "[[package]]" {
				cur = &Dep{Ecosystem: eco, Line: i + 1}
			}
			continue
		}
		if cur == nil {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), tomlString(strings.TrimSpace(v))
		switch k {
		case "name":
			cur.Name = v
			cur.Line = i + 1
		case "version":
			cur.Version = v
		}
	}
	flush()
	return out
}

// tomlString returns the value of a basic or literal TOML string, dropping
// a trailing comment.
func tomlString(v string) string {
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
		if end := strings.IndexByte(v[1:], v[0]); end >= 0 {
			return v[1 : 1+end]
		}
	}
	if i := strings.IndexByte(v, '#'); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}
