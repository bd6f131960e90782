package interlock_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ignore "github.com/sabhiram/go-gitignore"
)

// The quickstart writes ./agents (keys) and ./tokens (join tokens) in the
// work tree; git must not pick them up.
func TestGitignoreKeepsQuickstartCredentialsOut(t *testing.T) {
	gi, err := ignore.CompileIgnoreFile(".gitignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"agents/host-01/key.pem", "tokens", "interlock-data/interlock.db", "interlock"} {
		if !gi.MatchesPath(p) {
			t.Errorf(".gitignore does not ignore %s", p)
		}
	}
}

// Every relative link in the README and the docs points at a file that is
// in the repository.
func TestDocLinksPointAtFiles(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	docs, _ := filepath.Glob("docs/*.md")
	for _, doc := range append([]string{"README.md"}, docs...) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s links to %s, which is not in the repository", doc, target)
			}
		}
	}
}
