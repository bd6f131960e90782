package kms

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"errors"
	"fmt"
)

// Sealed value format, version 1:
//
//	0x01 | nonce (12) | AES-256-GCM ciphertext | tag (16)
//
// The header byte is also the first byte of the additional data, so a
// value cannot be replayed under another format version. The AES key is
// HKDF-SHA-256(root, info "interlock/kms/v1/seal").
//
// History:
//   - 0x01: 2026-11-29: first version
const sealV1 byte = 0x01

// sealOverhead is the header byte, nonce and tag.
const sealOverhead = 1 + 12 + 16

// ErrUnsealable is returned by [Sealer.Open] when a value was tampered
// with, was sealed under another root key, or is opened with the wrong
// additional data. The three cases are deliberately indistinguishable.
var ErrUnsealable = errors.New("sealed value cannot be opened: wrong root key, wrong row, or tampered")

// Sealer seals small values (password hashes, TOTP seeds, private keys)
// for storage in a database column. It is safe for concurrent use.
//
// Callers MUST pass the row's identity (e.g. "totp:<personID>") as aad so
// that sealed values cannot be moved between rows.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns the column sealer derived from root.
func NewSealer(root *RootKey) (*Sealer, error) { return newSealer(root, "seal") }

// newSealer derives a sealer for one purpose ("seal" for columns, "kek"
// for key-encryption keys), so that no two uses share an AES key.
func newSealer(root *RootKey, purpose string) (*Sealer, error) {
	if root == nil {
		return nil, errors.New("new sealer: root key is nil")
	}
	k := root.derive(purpose)
	defer clear(k)
	aead, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// newAEAD returns AES-256-GCM with nonces drawn inside the crypto module.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("aes-256 key is %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	a, err := cipher.NewGCMWithRandomNonce(b)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return a, nil
}

// Seal encrypts plaintext bound to aad.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1, sealOverhead+len(plaintext))
	out[0] = sealV1
	return s.aead.Seal(out, nil, plaintext, headerAAD(sealV1, aad)), nil
}

// Open decrypts a value from Seal. It returns [ErrUnsealable] if the value
// was altered, sealed under another root key, or aad differs.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < sealOverhead {
		return nil, fmt.Errorf("sealed value is %d bytes, shorter than the %d-byte minimum: %w", len(sealed), sealOverhead, ErrUnsealable)
	}
	if sealed[0] != sealV1 {
		return nil, fmt.Errorf("sealed value has unknown format version %d: %w", sealed[0], ErrUnsealable)
	}
	pt, err := s.aead.Open(nil, nil, sealed[1:], headerAAD(sealV1, aad))
	if err != nil {
		return nil, ErrUnsealable
	}
	return pt, nil
}

func headerAAD(h byte, aad []byte) []byte {
	b := make([]byte, 0, 1+len(aad))
	b = append(b, h)
	return append(b, aad...)
}

// FIPSEnabled reports whether the process runs in FIPS 140-3 mode
// (GODEBUG=fips140=on or only), in which case every primitive this package
// uses, except Argon2id, executes inside the Go Cryptographic Module.
func FIPSEnabled() bool { return fips140.Enabled() }
