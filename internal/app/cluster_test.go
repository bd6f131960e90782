package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestServersShareOneCA: on PostgreSQL the first server's CA is stored in
// the database; a second server with only the root key takes it (agents
// pinned to it reach every server), and a server that brings a CA of its
// own — made with the same root key — is refused before it serves.
func TestServersShareOneCA(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	open := func(dir string) (*App, error) {
		return New(ctx, config.Config{DataDir: dir, Store: dsn, Listen: "127.0.0.1:0"}, Options{})
	}
	dir1, dir2, rogue := t.TempDir(), t.TempDir(), t.TempDir()
	a1, err := open(dir1)
	if err != nil {
		t.Fatal(err)
	}
	fp := a1.CAFingerprint()
	a1.Close()
	key, err := os.ReadFile(filepath.Join(dir1, kms.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir2, rogue} {
		if err := os.WriteFile(filepath.Join(d, kms.RootKeyFile), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a2, err := open(dir2)
	if err != nil {
		t.Fatalf("a second server with the root key only: %v", err)
	}
	if a2.CAFingerprint() != fp {
		t.Errorf("second server's CA %s, want the shared %s", a2.CAFingerprint(), fp)
	}
	a2.Close()

	// The rogue server makes its own CA first (on a store of its own).
	r, err := New(ctx, config.Config{DataDir: rogue, Listen: "127.0.0.1:0"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := open(rogue); err == nil || !strings.Contains(err.Error(), "is not the one the other servers sharing this database use") {
		t.Fatalf("a server with another CA started: %v", err)
	}
}
