package secrets

import (
	"strings"
	"testing"
)

// TestRandomTokenWithPlaceholderWord: an Interlock token is 43 random
// base64url characters, so one in some tens of thousands contains "todo",
// "dummy" or "sample" by chance. Such a token is still a secret; only a
// rule marked random skips the placeholder words.
func TestRandomTokenWithPlaceholderWord(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	body := "Ab3TODOx9_" + strings.Repeat("k2Pq", 8) + "Z"
	if len(body) != 43 {
		t.Fatalf("body is %d characters", len(body))
	}
	if fs := detect(t, d, "tokens", "ilk_join_"+body+"\n"); !hasRule(fs, "interlock-join-token") {
		t.Errorf("join token with \"TODO\" inside not found: %v", fs)
	}
	// A value that is all placeholder is still dropped.
	if fs := detect(t, d, "tokens", "ilk_join_"+strings.Repeat("x", 43)+"\n"); hasRule(fs, "interlock-join-token") {
		t.Errorf("ilk_join_xxx… reported: %v", fs)
	}
}
