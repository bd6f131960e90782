package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// profile is one saved login: which server, how to trust it, and the
// device-bound session. The session token is stored 0600 beside the device
// key; without that key (which never leaves this directory) the token is
// refused by the server, so a copied token is useless elsewhere.
type profile struct {
	Server        string    `json:"server"`
	CAFingerprint string    `json:"ca_fingerprint"`
	User          string    `json:"user,omitempty"`
	Token         string    `json:"token,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	// LogKey is the tamper-evident log's public key (signed-note verifier
	// text), pinned at login like the CA fingerprint.
	LogKey string `json:"log_key,omitempty"`

	dir string
}

var profileName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// configDir is $INTERLOCK_CONFIG_DIR, or the user's config dir + /interlock.
func configDir() (string, error) {
	if d := os.Getenv("INTERLOCK_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find config dir (set INTERLOCK_CONFIG_DIR): %w", err)
	}
	return filepath.Join(d, "interlock"), nil
}

func (e *env) profileName() string {
	if e.profile != "" {
		return e.profile
	}
	if p := os.Getenv("INTERLOCK_PROFILE"); p != "" {
		return p
	}
	return "default"
}

func (e *env) profileDir() (string, error) {
	name := e.profileName()
	if !profileName.MatchString(name) {
		return "", fmt.Errorf("profile name %q: use 1-64 letters, digits, '.', '_' or '-'", name)
	}
	base, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "profiles", name), nil
}

// loadProfile reads the current profile; it fails with advice when there is none.
func (e *env) loadProfile() (*profile, error) {
	dir, err := e.profileDir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "profile.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("not logged in (profile %q): run `interlock login --server URL --ca-fingerprint SHA256:… --user NAME`", e.profileName())
	}
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	p := &profile{dir: dir}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("profile %s is damaged: %w", dir, err)
	}
	return p, nil
}

func (p *profile) save() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return fmt.Errorf("create profile dir: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(p.dir, "profile.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write profile: %w", err)
	}
	return os.Rename(tmp, filepath.Join(p.dir, "profile.json"))
}

// deviceKey loads this profile's device key, creating it (0600) on first use.
func (p *profile) deviceKey(create bool) (ed25519.PrivateKey, error) {
	path := filepath.Join(p.dir, "device.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(p.dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("write device key: %w", err)
		}
		return priv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read device key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("device key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("device key %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse device key: %w", err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("device key %s is not Ed25519", path)
	}
	return priv, nil
}
