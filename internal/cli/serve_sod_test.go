package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/cli"
)

// TestServeSaysWhenOneAdminHoldsEverything starts `interlock serve`, makes
// the first admin, and starts it again: the second start-up print says
// that separation of duties rests on one person; the first (nobody yet)
// does not.
func TestServeSaysWhenOneAdminHoldsEverything(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	serve := func() (*syncBuffer, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- cli.Main(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data")}, strings.NewReader(""), out, &syncBuffer{})
		}()
		return out, func() { cancel(); <-done }
	}
	waitOut := func(out *syncBuffer, want string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("serve did not print %q:\n%s", want, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return out.String()
	}

	out, stop := serve()
	first := waitOut(out, "--user admin")
	m := regexp.MustCompile(`interlock bootstrap --server (\S+) --ca-fingerprint (\S+) --code (\S+) --user admin`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("no bootstrap line in:\n%s", first)
	}
	if strings.Contains(first, "Separation of duties") {
		t.Errorf("with nobody yet, serve warned about a single admin:\n%s", first)
	}
	var o, e bytes.Buffer
	if code := cli.Main(context.Background(), []string{"bootstrap", "--server", m[1], "--ca-fingerprint", m[2], "--code", m[3], "--user", "admin",
		"--password-stdin", "--totp-secret-out", filepath.Join(dir, "admin.totp")}, strings.NewReader(password+"\n"), &o, &e); code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, e.String())
	}
	stop()

	out, stop = serve()
	defer stop()
	second := waitOut(out, "WARNING: Separation of duties rests on one person")
	if !strings.Contains(second, "Invite a second admin") {
		t.Errorf("the warning does not say what to do:\n%s", second)
	}
}
