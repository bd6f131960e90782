package kms

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// Ciphertext text form, version 1:
//
//	ilk:v1:<key name>:<key version>:<base64url, unpadded, of>
//	    wrapped data key: nonce (12) | AES-256-GCM(KEK, data key (32)) | tag (16)
//	    body:             nonce (12) | AES-256-GCM(data key, plaintext)  | tag (16)
//
// The data key is fresh for every encryption. Its wrapping binds
// "ilk:v1:<name>:<version>" and the encryption context as additional data;
// the body binds "ilk:v1:<name>" and the context, so Rewrap can re-wrap
// the data key under a newer version without ever decrypting the body.
//
// History:
//   - v1: 2026-11-29: first version
const ciphertextPrefix = "ilk:v1:"

const (
	dataKeySize    = 32
	gcmOverhead    = 12 + 16
	wrappedKeySize = dataKeySize + gcmOverhead
	// MaxPlaintext is the largest value Encrypt and secret puts accept.
	// Larger payloads use GenerateDataKey and encrypt client-side.
	MaxPlaintext = 64 << 10
	// MaxCiphertext is the longest ciphertext text Decrypt accepts.
	MaxCiphertext   = len(ciphertextPrefix) + 64 + 1 + 10 + 1 + (wrappedKeySize+gcmOverhead+MaxPlaintext)*4/3 + 4
	maxContextPairs = 16
	maxContextKey   = 128
	maxContextValue = 1024
)

var keyNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidKeyName reports whether name may name a key: 1–64 characters of
// a–z, 0–9, '.', '_' and '-', starting with a letter or digit.
func ValidKeyName(name string) bool { return keyNameRE.MatchString(name) }

func checkKeyName(name string) error {
	if !ValidKeyName(name) {
		return usererr.New(usererr.Invalid, "invalid_key_name",
			"%q is not a valid key name: use 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", clip(name))
	}
	return nil
}

// Context is an encryption context: non-secret key/value pairs bound to a
// ciphertext as additional authenticated data. Decrypt must be given the
// same pairs. Values are recorded in audit entries only as a keyed hash.
type Context map[string]string

// canonical returns an unambiguous encoding of c: pairs sorted by key,
// each as uvarint length + bytes.
func (c Context) canonical() []byte {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(c[k])))
		b = append(b, c[k]...)
	}
	return b
}

func (c Context) validate() error {
	if len(c) > maxContextPairs {
		return usererr.New(usererr.Invalid, "context_too_large", "the encryption context has %d pairs; at most %d are allowed", len(c), maxContextPairs)
	}
	for k, v := range c {
		if k == "" || len(k) > maxContextKey || !utf8.ValidString(k) {
			return usererr.New(usererr.Invalid, "invalid_context", "encryption context keys must be 1 to %d bytes of UTF-8", maxContextKey)
		}
		if len(v) > maxContextValue || !utf8.ValidString(v) {
			return usererr.New(usererr.Invalid, "invalid_context", "the encryption context value of %q must be at most %d bytes of UTF-8", clip(k), maxContextValue)
		}
	}
	return nil
}

// ParseContext turns "k=v" strings (as given on the command line) into a
// Context.
func ParseContext(pairs []string) (Context, error) {
	c := Context{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usererr.New(usererr.Invalid, "invalid_context", "encryption context %q must look like key=value", clip(p))
		}
		if _, dup := c[k]; dup {
			return nil, usererr.New(usererr.Invalid, "invalid_context", "encryption context key %q is given twice", clip(k))
		}
		c[k] = v
	}
	return c, c.validate()
}

// ciphertext is a parsed text form.
type ciphertext struct {
	Key     string
	Version int
	Wrapped []byte // wrapped data key
	Body    []byte
}

func (ct ciphertext) String() string {
	enc := base64.RawURLEncoding
	b := make([]byte, 0, len(ciphertextPrefix)+len(ct.Key)+22+enc.EncodedLen(len(ct.Wrapped)+len(ct.Body)))
	b = append(b, ciphertextPrefix...)
	b = append(b, ct.Key...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(ct.Version), 10)
	b = append(b, ':')
	if len(ct.Wrapped)%3 == 0 { // always: 60 bytes, so the two parts encode as their concatenation would
		b = enc.AppendEncode(b, ct.Wrapped)
		b = enc.AppendEncode(b, ct.Body)
	} else {
		b = enc.AppendEncode(b, append(append([]byte(nil), ct.Wrapped...), ct.Body...))
	}
	return string(b)
}

func parseCiphertext(s string) (ciphertext, error) {
	bad := func(why string) error {
		return usererr.New(usererr.Invalid, "invalid_ciphertext",
			"the ciphertext is not in Interlock's format (ilk:v1:<key>:<version>:<base64url>): %s", why)
	}
	if len(s) > MaxCiphertext {
		return ciphertext{}, usererr.New(usererr.TooLarge, "ciphertext_too_large", "the ciphertext is %d characters; at most %d are accepted", len(s), MaxCiphertext)
	}
	rest, ok := strings.CutPrefix(s, ciphertextPrefix)
	if !ok {
		if strings.HasPrefix(s, "ilk:") {
			return ciphertext{}, bad("its format version is not one this server reads")
		}
		return ciphertext{}, bad("it does not start with ilk:v1:")
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return ciphertext{}, bad("it lacks the key name, version or data")
	}
	if !ValidKeyName(parts[0]) {
		return ciphertext{}, bad("the key name is not valid")
	}
	v, err := strconv.Atoi(parts[1])
	if err != nil || v < 1 || strconv.Itoa(v) != parts[1] {
		return ciphertext{}, bad("the key version is not a positive number")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return ciphertext{}, bad("the data is not valid unpadded base64url")
	}
	if len(raw) < wrappedKeySize+gcmOverhead {
		return ciphertext{}, bad("the data is too short")
	}
	return ciphertext{Key: parts[0], Version: v, Wrapped: raw[:wrappedKeySize], Body: raw[wrappedKeySize:]}, nil
}

// ParseCiphertextKey returns the key name and version a ciphertext names,
// without decrypting it, so that the API can authorize per key first.
func ParseCiphertextKey(s string) (name string, version int, err error) {
	ct, err := parseCiphertext(s)
	return ct.Key, ct.Version, err
}

func wrapAAD(name string, version int, canon []byte) []byte {
	b := make([]byte, 0, len(ciphertextPrefix)+len(name)+12+len(canon))
	b = append(b, ciphertextPrefix...)
	b = append(b, name...)
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, 0)
	return append(b, canon...)
}

func bodyAAD(name string, canon []byte) []byte {
	b := make([]byte, 0, len(ciphertextPrefix)+len(name)+1+len(canon))
	b = append(b, ciphertextPrefix...)
	b = append(b, name...)
	b = append(b, 0)
	return append(b, canon...)
}

// seal encrypts plaintext under a fresh data key wrapped by kek.
func seal(kek cipher.AEAD, name string, version int, canon, plaintext []byte) (ciphertext, error) {
	var dk [dataKeySize]byte
	if _, err := io.ReadFull(rand.Reader, dk[:]); err != nil {
		return ciphertext{}, fmt.Errorf("generate data key: %w", err)
	}
	defer clear(dk[:])
	body, err := sealWithDataKey(dk[:], name, canon, plaintext)
	if err != nil {
		return ciphertext{}, err
	}
	wrapped := kek.Seal(nil, nil, dk[:], wrapAAD(name, version, canon))
	return ciphertext{Key: name, Version: version, Wrapped: wrapped, Body: body}, nil
}

func sealWithDataKey(dk []byte, name string, canon, plaintext []byte) ([]byte, error) {
	a, err := newAEAD(dk)
	if err != nil {
		return nil, err
	}
	return a.Seal(make([]byte, 0, len(plaintext)+gcmOverhead), nil, plaintext, bodyAAD(name, canon)), nil
}

// unwrap returns the data key of ct, or false when the wrapping does not
// authenticate (tampered, wrong context, wrong key).
func unwrap(kek cipher.AEAD, ct ciphertext, canon []byte) ([]byte, bool) {
	dk, err := kek.Open(nil, nil, ct.Wrapped, wrapAAD(ct.Key, ct.Version, canon))
	if err != nil || len(dk) != dataKeySize {
		return nil, false
	}
	return dk, true
}

// open decrypts ct's body. ok is false when anything fails to authenticate.
func open(kek cipher.AEAD, ct ciphertext, canon []byte) ([]byte, bool) {
	dk, ok := unwrap(kek, ct, canon)
	if !ok {
		return nil, false
	}
	defer clear(dk)
	a, err := newAEAD(dk)
	if err != nil {
		return nil, false
	}
	pt, err := a.Open(nil, nil, ct.Body, bodyAAD(ct.Key, canon))
	if err != nil {
		return nil, false
	}
	return pt, true
}

// contextHasher computes the keyed hash of an encryption context that
// audit entries record instead of the context itself.
type contextHasher struct{ key []byte }

func (h contextHasher) hash(c Context) string {
	if len(c) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, h.key)
	m.Write(c.canonical())
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
