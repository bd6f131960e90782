package ops_test

import (
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestEnrollRefusesDeceivingHostnames: names that would rewrite a
// terminal, hide or imitate another name, or swamp a listing are refused
// with a sentence, and the token stays unspent.
func TestEnrollRefusesDeceivingHostnames(t *testing.T) {
	e := newEnv(t, 0)
	tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, host string }{
		{"terminal escape", "web1\x1b[2J\x1b[Hprod-db"},
		{"carriage return", "web1\rprod-db"},
		{"NUL", "web\x001"},
		{"DEL", "web\x7f1"},
		{"C1 control as UTF-8", "web\u009b1"},
		{"right-to-left override", "web\u202e1bd"},
		{"zero-width space", "web\u200b1"},
		{"Cyrillic look-alike", "wеb1"},
		{"invalid UTF-8", "web\xff1"},
		{"slash", "web/1"},
		{"inner space", "web 1"},
		{"leading dash", "-web1"},
		{"overlong", strings.Repeat("a", 253+1)},
		{"empty", "  "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), tt.host, "key-a")
			ue := wantUserErr(t, err, usererr.Invalid, "bad_hostname")
			if strings.ContainsAny(ue.Msg, "\x1b\r\x00\x7f") || len(ue.Msg) > 300 {
				t.Errorf("the refusal repeats what it refuses: %q", ue.Msg)
			}
		})
	}
	if _, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), "web1.example_com", "key-a"); err != nil {
		t.Fatalf("the token after the refusals: %v", err)
	}
}

// TestEnrollRefusesATakenHostname: a name a live host has (in any case)
// is refused and the token stays unspent; a revoked host's name is free,
// and the same token, key and name still get their host back.
func TestEnrollRefusesATakenHostname(t *testing.T) {
	e := newEnv(t, 0)
	token := func() string {
		tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok.Reveal()
	}
	first := token()
	id, _, _, err := e.m.EnrollHost(e.ctx, first, "web1", "key-a")
	if err != nil {
		t.Fatal(err)
	}
	second := token()
	for _, name := range []string{"web1", "WEB1"} {
		_, _, _, err := e.m.EnrollHost(e.ctx, second, name, "key-b")
		ue := wantUserErr(t, err, usererr.Conflict, "hostname_taken")
		if !strings.Contains(ue.Msg, id) {
			t.Errorf("the refusal does not name the host that has the name: %q", ue.Msg)
		}
	}
	if again, _, _, err := e.m.EnrollHost(e.ctx, first, "web1", "key-a"); err != nil || again != id {
		t.Fatalf("enrolling again with the same token, key and name = %q, %v; want %s", again, err, id)
	}
	if _, err := e.m.RevokeHost(e.ctx, admin, id, "replaced"); err != nil {
		t.Fatal(err)
	}
	replacement, _, _, err := e.m.EnrollHost(e.ctx, second, "web1", "key-b")
	if err != nil || replacement == id {
		t.Fatalf("enrolling a replacement under a revoked host's name = %q, %v; want a new host", replacement, err)
	}
	if n := e.audits("host.enrolled"); n != 2 {
		t.Errorf("%d host.enrolled entries, want 2 (refusals record nothing)", n)
	}
}
