package ops

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExampleRunbooksParse: every runbook under examples/ passes today's
// checks (the README and the quickstart apply them).
func TestExampleRunbooksParse(t *testing.T) {
	files, err := filepath.Glob("../../examples/runbooks/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example runbooks found (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseRunbook(src); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}
