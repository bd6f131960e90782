package store_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestKMSNoPlaintextInDatabaseFiles writes known values through every KMS
// path on a real SQLite store, then searches the raw database file and its
// write-ahead log for them (raw, hex and base64). None may appear.
func TestKMSNoPlaintextInDatabaseFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc, clock := storetest.NewKMS(t, db, func(c *kms.Config) { c.MaxEncryptions = 2 })
	alice := kms.Caller{Kind: "person", ID: "p-alice"}
	bob := kms.Caller{Kind: "person", ID: "p-bob"}
	for _, k := range []string{"app", "secrets"} {
		if _, err := svc.CreateKey(ctx, alice, k, kms.KeyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	canaries := map[string][]byte{}
	add := func(name string, b []byte) { canaries[name] = append([]byte(nil), b...) }

	c := kms.Context{"customer": "CANARY-CONTEXT-VALUE-7f3a"}
	add("context value", []byte("CANARY-CONTEXT-VALUE-7f3a"))
	var cts []string
	for i, pt := range []string{"CANARY-ENCRYPT-ONE-91c2", "CANARY-ENCRYPT-TWO-4be0", "CANARY-ENCRYPT-THREE-aa17"} {
		add("encrypt plaintext "+string(rune('1'+i)), []byte(pt))
		r, err := svc.Encrypt(ctx, alice, "app", []byte(pt), c)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, r.Ciphertext)
	}
	for _, ct := range cts {
		if _, err := svc.Decrypt(ctx, alice, ct, "", c); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Rewrap(ctx, alice, ct, c); err != nil {
			t.Fatal(err)
		}
	}
	dk, err := svc.GenerateDataKey(ctx, alice, "app", c)
	if err != nil {
		t.Fatal(err)
	}
	add("data key", dk.Plaintext.Bytes())
	yes := true
	for _, p := range []struct {
		path, val string
		opt       kms.PutOptions
	}{
		{"prod/db/password", "CANARY-SECRET-PLAIN-e21d", kms.PutOptions{}},
		{"prod/db/password", "CANARY-SECRET-PLAIN-V2-0b9c", kms.PutOptions{}},
		{"prod/root", "CANARY-SECRET-CRITICAL-5d70", kms.PutOptions{Critical: &yes}},
		{"prod/root", "CANARY-SECRET-APPROVED-c4e1", kms.PutOptions{}},
		{"prod/root", "CANARY-SECRET-PENDING-38fa", kms.PutOptions{}},
		{"prod/totp/p-alice", "JBSWY3DPEHPK3PXPCANARY", kms.PutOptions{}},
		{"prod/tls/key", "-----BEGIN PRIVATE KEY-----\nCANARYPRIVATEKEY0123456789\n-----END PRIVATE KEY-----", kms.PutOptions{}},
	} {
		add("secret "+p.path+" "+p.val[:10], []byte(p.val))
		r, err := svc.PutSecret(ctx, alice, p.path, []byte(p.val), p.opt)
		if err != nil {
			t.Fatal(err)
		}
		if p.val == "CANARY-SECRET-APPROVED-c4e1" {
			if _, err := svc.Approve(ctx, bob, r.Pending.ID, r.Pending.Hash); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []string{"prod/db/password", "prod/root", "prod/totp/p-alice", "prod/tls/key"} {
		if _, err := svc.GetSecret(ctx, bob, p, 0, "canary test"); err != nil {
			t.Fatal(err)
		}
	}
	add("root key", bytes.Repeat([]byte{0x42}, 32)) // storetest.NewKMS's root key

	// Destroy version 1 of app and check its sealed key is gone too.
	var wrapped []byte
	if err := db.QueryRow(ctx, `SELECT wrapped FROM kms_key_versions WHERE key_name = 'app' AND version = 1`).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	add("sealed key-encryption key of a destroyed version", wrapped)
	if !bytes.Contains(readAll(t, dir), wrapped) {
		t.Fatal("the sealed key is not in the files before destruction; the search is broken")
	}
	req, err := svc.DestroyKeyVersion(ctx, alice, "app", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, bob, req.ID, req.Hash); err != nil {
		t.Fatal(err)
	}
	clock.Advance(kms.DefaultDestroyDelay + time.Second)
	if _, err := svc.RunDue(ctx); err != nil {
		t.Fatal(err)
	}

	files := map[string][]byte{}
	for _, name := range []string{"interlock.db", "interlock.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		files[name] = b
	}
	if len(files["interlock.db"]) == 0 {
		t.Fatal("the database file is empty; the test would prove nothing")
	}
	// The search must be able to find things: the secret paths are stored.
	if !bytes.Contains(append(files["interlock.db"], files["interlock.db-wal"]...), []byte("prod/db/password")) {
		t.Fatal("a stored secret path is not found in the files; the search is broken")
	}
	for name, v := range canaries {
		forms := [][]byte{v, []byte(hex.EncodeToString(v)), []byte(base64.StdEncoding.EncodeToString(v)), []byte(base64.RawURLEncoding.EncodeToString(v))}
		for file, b := range files {
			for _, f := range forms {
				if len(f) >= 8 && bytes.Contains(b, f) {
					t.Errorf("%s holds the %s (%d bytes)", file, name, len(v))
				}
			}
		}
	}
}

func readAll(t *testing.T, dir string) []byte {
	t.Helper()
	var out []byte
	for _, name := range []string{"interlock.db", "interlock.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}
