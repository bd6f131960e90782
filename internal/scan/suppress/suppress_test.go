package suppress

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

func TestParseIgnore(t *testing.T) {
	fp := strings.Repeat("ab", 16)
	for _, tt := range []struct {
		name    string
		in      string
		want    []IgnoreEntry
		wantErr bool
	}{
		{"entries", "# comment\n\n" + fp + "\n" + fp + " generic-password # rotated\n", []IgnoreEntry{
			{Fingerprint: fp, Line: 3},
			{Fingerprint: fp, Rule: "generic-password", Reason: "rotated", Line: 4},
		}, false},
		{"plaintext secret is refused", "hunter2 generic-password\n", nil, true},
		{"file and line are not keys", "config.yaml:12\n", nil, true},
		{"too many fields", fp + " a b\n", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ig, err := ParseIgnore("f", strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, ig.Entries); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApply(t *testing.T) {
	secretA, secretB := scan.Fingerprint("a-secret"), scan.Fingerprint("b-secret")
	fs := []scan.Finding{
		{RuleID: "r1", File: "x", Line: 1, Fingerprint: secretA},
		{RuleID: "r1", File: "x", Line: 1, Fingerprint: secretB}, // a different secret on the same line
		{RuleID: "r2", File: "y", Line: 9, Fingerprint: secretA},
	}
	ig, err := ParseIgnore(".interlockignore", strings.NewReader(secretA+" r1\n"+strings.Repeat("0", 32)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	kept, counts, stale := Apply(fs, nil, ig)
	if diff := cmp.Diff(fs[1:], kept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"ignore-file": 1}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if len(stale) != 1 || !strings.Contains(stale[0], ".interlockignore:2") {
		t.Errorf("stale = %q, want the unmatched line 2", stale)
	}
}
