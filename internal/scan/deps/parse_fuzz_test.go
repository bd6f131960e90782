package deps

import (
	"testing"
)

// TestPackageLockNamelessKeys: a lockfile key that names no package (the
// empty "dependencies" key a fuzzer found, or "node_modules/" in v2+)
// yields no dependency, and the real packages beside it still do.
func TestPackageLockNamelessKeys(t *testing.T) {
	for _, tt := range []struct{ name, lock string }{
		{"v1 empty dependency key", `{"lockfileVersion":1,"dependencies":{"":{"version":"1.0.0"},"left-pad":{"version":"1.3.0"}}}`},
		{"v1 nested empty key", `{"lockfileVersion":1,"dependencies":{"left-pad":{"version":"1.3.0","dependencies":{"":{"version":"2.0.0"}}}}}`},
		{"v1 blank key", `{"lockfileVersion":1,"dependencies":{" ":{"version":"1.0.0"},"left-pad":{"version":"1.3.0"}}}`},
		{"v3 bare node_modules key", `{"lockfileVersion":3,"packages":{"node_modules/":{"version":"1.0.0"},"node_modules/left-pad":{"version":"1.3.0"}}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePackageLock([]byte(tt.lock))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Name != "left-pad" || got[0].Version != "1.3.0" {
				t.Errorf("deps = %+v, want only left-pad 1.3.0", got)
			}
		})
	}
}

// FuzzParsePackageLock: whatever the input, every dependency returned
// has a name and a version (a nameless one cannot be looked up or shown).
func FuzzParsePackageLock(f *testing.F) {
	f.Add([]byte(`{"lockfileVersion":1,"dependencies":{"":{"version":"1.0.0"}}}`)) // the finding
	f.Add([]byte(`{"lockfileVersion":3,"packages":{"":{"version":"1.0.0"},"node_modules/":{"version":"1"},"node_modules/a":{"version":"1"}}}`))
	f.Add([]byte(`{"dependencies":{"a":{"version":"1","dependencies":{"b":{"version":"2"}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, err := ParsePackageLock(data)
		if err != nil {
			return
		}
		for _, d := range deps {
			if d.Name == "" || d.Version == "" || d.Ecosystem != "npm" {
				t.Fatalf("dependency %+v lacks a name, version or ecosystem", d)
			}
		}
	})
}
