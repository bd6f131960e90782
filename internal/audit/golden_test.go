package audit_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/interlock-dev/interlock/internal/audit"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGoldenLeaves pins the canonical leaf of every documented kind and
// version: the bytes an auditor hashes must never change silently.
func TestGoldenLeaves(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range audit.Kinds {
		name := fmt.Sprintf("%s.v%d.json", k.Kind, k.Version)
		if seen[name] {
			t.Errorf("kind %s version %d is listed twice", k.Kind, k.Version)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			if k.Example.Kind != k.Kind || k.Example.Version != k.Version {
				t.Fatalf("example is %s v%d", k.Example.Kind, k.Example.Version)
			}
			r, err := audit.NewRecord(k.Example, zeroRand{})
			if err != nil {
				t.Fatal(err)
			}
			leaf, err := audit.StoredEntry{Integrated: true, ActorSeq: 7, ActorPrev: bytes.Repeat([]byte{0xab}, 32), Record: r}.Leaf()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "entries", name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, append(leaf, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(append(leaf, '\n'), want) {
				t.Errorf("canonical leaf of %s changed:\n got %s\nwant %s", name, leaf, want)
			}
			if _, err := audit.ParseLeaf(leaf); err != nil {
				t.Errorf("golden leaf does not parse: %v", err)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "entries", "*.json"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no entry in audit.Kinds", f)
		}
	}
}
