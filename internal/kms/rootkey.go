package kms

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/argon2"
)

// RootKeySize is the length of the root key in bytes.
const RootKeySize = 32

// RootKeyFile is the name of the root key file inside the data dir.
const RootKeyFile = "root.key"

// rootKeyTextPrefix starts the text form of a root key (environment
// variable), so that Interlock's scanner can find a leaked one.
const rootKeyTextPrefix = "ilk_root_"

// RootKey is the top of the key hierarchy. It never leaves the process: it
// seals key-encryption keys and, through [Sealer], sensitive columns.
//
// It is not comparable with == and prints as "[redacted]".
type RootKey struct {
	_ [0]func()
	b [RootKeySize]byte
}

// String returns "[redacted]".
func (*RootKey) String() string { return "[redacted]" }

// LogValue returns "[redacted]".
func (*RootKey) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// GoString returns "[redacted]", so %#v cannot print the bytes either.
func (*RootKey) GoString() string { return "[redacted]" }

// RootKeyFromBytes copies a 32-byte key. It is meant for tests and for
// external key sources; the caller should wipe b afterwards.
func RootKeyFromBytes(b []byte) (*RootKey, error) {
	if len(b) != RootKeySize {
		return nil, fmt.Errorf("root key is %d bytes, want %d", len(b), RootKeySize)
	}
	k := &RootKey{}
	copy(k.b[:], b)
	return k, nil
}

// NewRootKey draws a fresh root key from r (nil means crypto/rand).
func NewRootKey(r io.Reader) (*RootKey, error) {
	if r == nil {
		r = rand.Reader
	}
	k := &RootKey{}
	if _, err := io.ReadFull(r, k.b[:]); err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	return k, nil
}

// Text returns the key's text form for an environment variable or a
// secret manager: "ilk_root_" followed by unpadded base64url. Handle the
// result as the secret it is.
func (k *RootKey) Text() string {
	return rootKeyTextPrefix + base64.RawURLEncoding.EncodeToString(k.b[:])
}

// derive returns a 32-byte subkey for purpose. Each use of the root key
// (column sealing, key-encryption-key wrapping, context hashing) gets its
// own subkey, so no two uses ever share an AES key.
func (k *RootKey) derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.b[:], nil, "interlock/kms/v1/"+purpose, 32)
	if err != nil {
		panic("kms: hkdf: " + err.Error()) // only fails for absurd lengths
	}
	return out
}

// LoadOrCreateRootKey reads <dataDir>/root.key, creating it with 32 random
// bytes and mode 0600 when it does not exist (and dataDir with 0700). It
// refuses a file that is not a regular file, that group or others may
// access, or whose length is wrong: a root key other users could have read
// must be treated as compromised, not silently fixed.
func LoadOrCreateRootKey(dataDir string) (*RootKey, error) {
	if dataDir == "" {
		return nil, errors.New("root key: data dir is not set")
	}
	path := filepath.Join(dataDir, RootKeyFile)
	k, err := loadRootKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("root key: create data dir: %w", err)
	}
	k, err = NewRootKey(nil)
	if err != nil {
		return nil, err
	}
	if err := writeNewFile(path, k.b[:]); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			return loadRootKeyFile(path)
		}
		return nil, fmt.Errorf("root key: %w", err)
	}
	return k, nil
}

func loadRootKeyFile(path string) (*RootKey, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("root key %s is not a regular file (mode %v); refusing to use it", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("root key %s has mode %04o, which lets other users read it; "+
			"treat the key as exposed, or if you are sure it was not read run `chmod 600 %s`", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read root key: %w", err)
	}
	defer clear(b)
	if len(b) != RootKeySize {
		return nil, fmt.Errorf("root key %s is %d bytes, want %d; the file is damaged or not a root key", path, len(b), RootKeySize)
	}
	return RootKeyFromBytes(b)
}

// writeNewFile writes b to path with mode 0600, atomically and only if path
// does not exist yet: the bytes go to a temporary file that is then hard
// linked into place, so no reader ever sees a half-written key.
func writeNewFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".root.key.tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("chmod temporary file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write temporary file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temporary file: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Argon2id parameters for passphrase-derived root keys: RFC 9106's second
// recommended option (t=3, 64 MiB, 4 lanes). Changing them changes every
// derived key, so they are constants.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
	// MinSaltSize is the shortest salt RootKeyFromPassphrase accepts.
	MinSaltSize = 16
	// MinPassphraseSize is the shortest passphrase accepted.
	MinPassphraseSize = 12
)

// RootKeyFromPassphrase derives the root key from a passphrase with
// Argon2id. salt MUST be random, at least 16 bytes, and stored next to the
// data (it is not secret): use [LoadOrCreateSalt]. A wrong passphrase gives
// a different key; Service.CheckRootKey turns that into a clear error.
//
// Argon2id is not FIPS-approved; see the package documentation.
func RootKeyFromPassphrase(pass, salt []byte) (*RootKey, error) {
	if len(pass) < MinPassphraseSize {
		return nil, fmt.Errorf("unseal passphrase is %d bytes; it must be at least %d", len(pass), MinPassphraseSize)
	}
	if len(salt) < MinSaltSize {
		return nil, fmt.Errorf("root key salt is %d bytes; it must be at least %d", len(salt), MinSaltSize)
	}
	b := argon2.IDKey(pass, salt, argonTime, argonMemory, argonThreads, RootKeySize)
	defer clear(b)
	return RootKeyFromBytes(b)
}

// SaltFile is the name of the passphrase salt file inside the data dir.
const SaltFile = "root.salt"

// LoadOrCreateSalt returns the 32-byte salt in <dataDir>/root.salt,
// creating it (mode 0600) when missing. The salt is not secret, but
// losing it loses every key derived from the passphrase.
func LoadOrCreateSalt(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, SaltFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("salt file %s is %d bytes, want 32", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read salt: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := writeNewFile(path, b); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadOrCreateSalt(dataDir)
		}
		return nil, fmt.Errorf("write salt: %w", err)
	}
	return b, nil
}

// RootKeyFromEnv reads the root key from the environment variable name, in
// the form [RootKey.Text] produces ("ilk_root_" + base64url), or as plain
// standard or URL base64 of 32 bytes. It is meant for containers whose
// orchestrator injects the secret.
func RootKeyFromEnv(name string) (*RootKey, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("environment variable %s is not set; it must hold the root key (ilk_root_…)", name)
	}
	k, err := ParseRootKeyText(v)
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return k, nil
}

// ParseRootKeyText parses the text form of a root key.
func ParseRootKeyText(s string) (*RootKey, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, rootKeyTextPrefix)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil && len(b) == RootKeySize {
			defer clear(b)
			return RootKeyFromBytes(b)
		}
		clear(b)
	}
	return nil, fmt.Errorf("not a root key: want %q followed by the base64 of %d bytes", rootKeyTextPrefix, RootKeySize)
}
