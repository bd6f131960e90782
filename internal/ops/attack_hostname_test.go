package ops_test

import (
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestAttackTrailingDotHostnameIsRefused: DNS names "web1." and "web1" the
// same host (the trailing dot is the root), so a second machine enrolled
// as "WEB1." would look like web1 in every plan and log line, past the
// case-insensitive taken-name check. A name with a trailing dot is
// refused, and the token stays unspent.
func TestAttackTrailingDotHostnameIsRefused(t *testing.T) {
	e := newEnv(t, 0)
	token := func() string {
		tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Reveal()
	}
	if _, _, _, err := e.m.EnrollHost(e.ctx, token(), "web1", "key-a"); err != nil {
		t.Fatal(err)
	}
	second := token()
	for _, name := range []string{"web1.", "WEB1.", "web1.example.com."} {
		_, _, _, err := e.m.EnrollHost(e.ctx, second, name, "key-b")
		if err == nil {
			t.Fatalf("a second machine enrolled as %q beside web1", name)
		}
		wantUserErr(t, err, usererr.Invalid, "bad_hostname")
	}
	if _, _, _, err := e.m.EnrollHost(e.ctx, second, "web2", "key-b"); err != nil {
		t.Fatalf("the token after the refusals: %v", err)
	}
}
