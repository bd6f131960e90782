package kms

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateRootKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateRootKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("root key mode = %04o, want 0600", got)
	}
	if fi.Size() != RootKeySize {
		t.Errorf("root key size = %d, want %d", fi.Size(), RootKeySize)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %v (%v), want 0700", di.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateRootKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.b != k2.b {
		t.Error("second load returned a different key; the file must be reused")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only root.key (temporary files must be removed)", len(entries))
	}
}

func TestLoadOrCreateRootKeyRefuses(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{"group readable", func(t *testing.T, p string) { write(t, p, bytes.Repeat([]byte{1}, 32), 0o640) }, "mode 0640"},
		{"world readable", func(t *testing.T, p string) { write(t, p, bytes.Repeat([]byte{1}, 32), 0o604) }, "mode 0604"},
		{"too short", func(t *testing.T, p string) { write(t, p, []byte("short"), 0o600) }, "is 5 bytes"},
		{"directory", func(t *testing.T, p string) { os.Mkdir(p, 0o700) }, "not a regular file"},
		{"symlink", func(t *testing.T, p string) {
			target := p + ".real"
			write(t, target, bytes.Repeat([]byte{1}, 32), 0o600)
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, filepath.Join(dir, RootKeyFile))
			k, err := LoadOrCreateRootKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadOrCreateRootKey = %v, %v; want an error containing %q", k, err, tt.want)
			}
		})
	}
}

func write(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func TestRootKeyFromPassphrase(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, 16)
	a, err := RootKeyFromPassphrase([]byte("correct horse battery"), salt)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RootKeyFromPassphrase([]byte("correct horse battery"), salt)
	c, _ := RootKeyFromPassphrase([]byte("correct horse batterx"), salt)
	d, _ := RootKeyFromPassphrase([]byte("correct horse battery"), bytes.Repeat([]byte{8}, 16))
	if a.b != b.b {
		t.Error("same passphrase and salt gave different keys")
	}
	if a.b == c.b || a.b == d.b {
		t.Error("a different passphrase or salt gave the same key")
	}
	if _, err := RootKeyFromPassphrase([]byte("short"), salt); err == nil {
		t.Error("short passphrase accepted")
	}
	if _, err := RootKeyFromPassphrase([]byte("correct horse battery"), salt[:8]); err == nil {
		t.Error("short salt accepted")
	}
}

func TestLoadOrCreateSalt(t *testing.T) {
	dir := t.TempDir()
	s1, err := LoadOrCreateSalt(dir)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := LoadOrCreateSalt(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) != 32 || !bytes.Equal(s1, s2) {
		t.Errorf("salts %x and %x: want the same 32 bytes twice", s1, s2)
	}
}

func TestRootKeyFromEnv(t *testing.T) {
	k, err := NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KMS_TEST_ROOT", k.Text())
	got, err := RootKeyFromEnv("KMS_TEST_ROOT")
	if err != nil {
		t.Fatal(err)
	}
	if got.b != k.b {
		t.Error("key read from the environment differs from the one written")
	}
	if !strings.HasPrefix(k.Text(), "ilk_root_") {
		t.Errorf("Text() = %.12s…, want the ilk_root_ prefix", k.Text())
	}
	for _, v := range []string{"", "ilk_root_short", "not base64 !!!"} {
		t.Setenv("KMS_TEST_ROOT", v)
		if _, err := RootKeyFromEnv("KMS_TEST_ROOT"); err == nil {
			t.Errorf("RootKeyFromEnv(%q) succeeded", v)
		}
	}
	if _, err := RootKeyFromEnv("KMS_TEST_UNSET_VARIABLE"); err == nil {
		t.Error("unset variable accepted")
	}
}

func TestRootKeyRedacted(t *testing.T) {
	k, _ := RootKeyFromBytes(bytes.Repeat([]byte{0xAB}, 32))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "k", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), buf.String()} {
		if strings.Contains(strings.ToLower(s), "abab") || strings.Contains(s, "171") {
			t.Errorf("key bytes leaked into %q", s)
		}
	}
}

func TestSealer(t *testing.T) {
	root, _ := NewRootKey(nil)
	other, _ := NewRootKey(nil)
	s, err := NewSealer(root)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSealer(other)
	pt := []byte("JBSWY3DPEHPK3PXP")
	sealed, err := s.Seal(pt, []byte("totp:p1"))
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != sealV1 || len(sealed) != len(pt)+sealOverhead {
		t.Errorf("sealed = header %#x, %d bytes; want header 0x01 and %d bytes", sealed[0], len(sealed), len(pt)+sealOverhead)
	}
	if bytes.Contains(sealed, pt) {
		t.Error("sealed value contains the plaintext")
	}
	again, _ := s.Seal(pt, []byte("totp:p1"))
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same value are equal; nonces must be random")
	}
	got, err := s.Open(sealed, []byte("totp:p1"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open = %q, %v; want %q", got, err, pt)
	}
	empty, _ := s.Seal(nil, []byte("a"))
	if got, err := s.Open(empty, []byte("a")); err != nil || len(got) != 0 {
		t.Errorf("empty round trip = %q, %v", got, err)
	}

	flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }
	for _, tt := range []struct {
		name   string
		s      *Sealer
		sealed []byte
		aad    string
	}{
		{"wrong row", s, sealed, "totp:p2"},
		{"no aad", s, sealed, ""},
		{"other root key", s2, sealed, "totp:p1"},
		{"flipped header", s, flip(0), "totp:p1"},
		{"flipped nonce", s, flip(3), "totp:p1"},
		{"flipped body", s, flip(15), "totp:p1"},
		{"flipped tag", s, flip(len(sealed) - 1), "totp:p1"},
		{"truncated", s, sealed[:sealOverhead-1], "totp:p1"},
		{"empty", s, nil, "totp:p1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Open(tt.sealed, []byte(tt.aad))
			if !errors.Is(err, ErrUnsealable) {
				t.Errorf("Open = %q, %v; want ErrUnsealable", got, err)
			}
		})
	}
}
