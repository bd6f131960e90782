package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestIdentityNoPlaintextSecrets is invariant 5 for identity: after a
// bootstrap, an invitation, an acceptance and logins, no password, password
// hash, TOTP seed, session token or bootstrap/invitation code appears in
// the SQLite database or its WAL.
func TestIdentityNoPlaintextSecrets(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := storetest.NewIdentityEnv(t, db)

	boot, _, _, err := e.Svc.EnsureBootstrapCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	enr, err := e.Svc.Bootstrap(ctx, boot.Reveal(), "admin", storetest.IdentityTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	s, admin := e.Login(enr, storetest.NewIdentityDevice(t))
	pending, err := e.Svc.Invite(ctx, admin, "approver1", "approver")
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := e.Svc.Invite(ctx, admin, "operator1", "operator")
	if err != nil {
		t.Fatal(err)
	}
	opEnr, err := e.Svc.Accept(ctx, accepted.Code.Reveal(), storetest.IdentityTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := e.Login(opEnr, storetest.NewIdentityDevice(t))

	var files []byte
	for _, name := range []string{"interlock.db", "interlock.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		files = append(files, b...)
	}
	if !bytes.Contains(files, []byte("operator1")) {
		t.Fatal("the database files do not even hold a username; is this the right file?")
	}
	for name, secret := range map[string]string{
		"password":               storetest.IdentityTestPassword,
		"argon2id hash":          "$argon2id$",
		"admin TOTP seed":        enr.TOTPSecret.Reveal(),
		"operator TOTP seed":     opEnr.TOTPSecret.Reveal(),
		"TOTP URI":               "otpauth://",
		"admin session token":    s.Token.Reveal(),
		"operator session token": s2.Token.Reveal(),
		"session token prefix":   "ilk_sess_",
		"bootstrap code":         boot.Reveal(),
		"pending invitation":     pending.Code.Reveal(),
		"accepted invitation":    accepted.Code.Reveal(),
	} {
		if bytes.Contains(files, []byte(secret)) || bytes.Contains(bytes.ToLower(files), []byte(strings.ToLower(secret))) {
			t.Errorf("the %s is stored in plaintext", name)
		}
	}
}
