//go:build unix

package cli

import (
	"syscall"
	"testing"
)

// TestRaiseOpenFiles: a process whose soft limit is below what a fleet
// needs gets it raised (up to the hard limit without privilege), and is
// told when it stays below.
func TestRaiseOpenFiles(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max < 2048 {
		t.Skipf("the hard limit on open files is %d; this test needs 2048", orig.Max)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	low := syscall.Rlimit{Cur: 1024, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	got, warn := raiseOpenFiles(2048)
	var now syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if got < 2048 || now.Cur < 2048 || warn != "" {
		t.Fatalf("raiseOpenFiles(2048) = %d, %q; the soft limit is now %d", got, warn, now.Cur)
	}
	if orig.Max < 1<<62 {
		// Beyond the hard limit: raised if privileged, else told so.
		want := orig.Max + 1
		got, warn := raiseOpenFiles(want)
		if got < want && warn == "" {
			t.Fatalf("raiseOpenFiles(%d) = %d with no warning", want, got)
		}
	}
}
