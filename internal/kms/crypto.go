package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// DataKeySize is the length of keys GenerateDataKey returns.
const DataKeySize = dataKeySize

// Plaintext is decrypted data. It prints as "[redacted]" so that it
// cannot reach a log by accident; use Bytes to get at it.
type Plaintext struct {
	_ [0]func()
	b []byte
}

// Bytes returns the plaintext. The caller owns it.
func (p Plaintext) Bytes() []byte { return p.b }

// String returns "[redacted]".
func (Plaintext) String() string { return "[redacted]" }

// LogValue returns "[redacted]".
func (Plaintext) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// EncryptResult is a ciphertext in its text form.
type EncryptResult struct {
	Ciphertext string
	Key        string
	Version    int
}

// Encrypt encrypts plaintext under key name's current version, binding
// ctxPairs. The call and a keyed hash of the context are audited.
func (s *Service) Encrypt(ctx context.Context, c Caller, name string, plaintext []byte, ctxPairs Context) (EncryptResult, error) {
	if err := s.checkEncrypt(c, name, plaintext, ctxPairs); err != nil {
		return EncryptResult{}, err
	}
	return s.encrypt(ctx, c, name, plaintext, ctxPairs, "kms.encrypt")
}

func (s *Service) checkEncrypt(c Caller, name string, plaintext []byte, ctxPairs Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if err := checkKeyName(name); err != nil {
		return err
	}
	if len(plaintext) == 0 {
		return usererr.New(usererr.Invalid, "empty_plaintext", "there is nothing to encrypt: the plaintext is empty")
	}
	if len(plaintext) > MaxPlaintext {
		return usererr.New(usererr.TooLarge, "plaintext_too_large",
			"the plaintext is %d bytes; at most %d are accepted (for larger data, generate a data key and encrypt locally)", len(plaintext), MaxPlaintext)
	}
	return ctxPairs.validate()
}

func (s *Service) encrypt(ctx context.Context, c Caller, name string, plaintext []byte, ctxPairs Context, kind string) (EncryptResult, error) {
	canon := ctxPairs.canonical()
	for attempt := 0; ; attempt++ {
		kek, version, err := s.reserve(ctx, name)
		if err != nil {
			return EncryptResult{}, err
		}
		ct, err := seal(kek, name, version, canon, plaintext)
		if err != nil {
			return EncryptResult{}, err
		}
		err = s.batch.do(ctx, &job{
			entry: audit.Entry{Kind: kind, Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: s.now(),
				Data: map[string]any{"key": name, "version": version, "bytes": len(plaintext), "context_hmac": s.ctxHash.hash(ctxPairs)}},
			usages: []usage{{key: name, version: version, enc: 1}},
		})
		if errors.Is(err, errStale) && attempt == 0 {
			s.forget(name)
			continue
		}
		if err != nil {
			return EncryptResult{}, s.staleErr(err, name)
		}
		return EncryptResult{Ciphertext: ct.String(), Key: name, Version: version}, nil
	}
}

func (s *Service) staleErr(err error, name string) error {
	if errors.Is(err, errStale) {
		s.forget(name)
		return usererr.Wrap(err, usererr.Conflict, "key_changed", "key %q changed while the request ran (disabled, rotated or a version destroyed); try again", name)
	}
	return err
}

// DecryptResult is what Decrypt returns.
type DecryptResult struct {
	Plaintext Plaintext
	Key       string
	Version   int
}

// Decrypt decrypts a ciphertext from Encrypt. ctxPairs must equal the
// encryption context. If wantKey is not empty, the ciphertext must name
// that key.
func (s *Service) Decrypt(ctx context.Context, c Caller, ciphertextText, wantKey string, ctxPairs Context) (DecryptResult, error) {
	if err := c.check(); err != nil {
		return DecryptResult{}, err
	}
	if err := ctxPairs.validate(); err != nil {
		return DecryptResult{}, err
	}
	ct, err := parseCiphertext(ciphertextText)
	if err != nil {
		return DecryptResult{}, err
	}
	if wantKey != "" && wantKey != ct.Key {
		return DecryptResult{}, usererr.New(usererr.Invalid, "key_mismatch", "the ciphertext was made with key %q, not %q", ct.Key, clip(wantKey))
	}
	pt, err := s.decrypt(ctx, c, ct, ctxPairs, audit.Entry{Kind: "kms.decrypt"})
	if err != nil {
		return DecryptResult{}, err
	}
	return DecryptResult{Plaintext: Plaintext{b: pt}, Key: ct.Key, Version: ct.Version}, nil
}

var errDecryptFailed = usererr.New(usererr.Invalid, "decrypt_failed",
	"the ciphertext could not be decrypted: it was altered, or the encryption context is not the one it was encrypted with")

// decrypt opens ct and commits e (completed here) with the usage count.
func (s *Service) decrypt(ctx context.Context, c Caller, ct ciphertext, ctxPairs Context, e audit.Entry) ([]byte, error) {
	canon := ctxPairs.canonical()
	for attempt := 0; ; attempt++ {
		kek, err := s.decryptable(ctx, ct.Key, ct.Version)
		if err != nil {
			return nil, err
		}
		pt, ok := open(kek, ct, canon)
		if !ok {
			return nil, errDecryptFailed
		}
		e.Version, e.Actor, e.Time = 1, c.Actor(), s.now()
		if e.Subject == "" {
			e.Subject = "key:" + ct.Key
		}
		if e.Data == nil {
			e.Data = map[string]any{}
		}
		e.Data["key"], e.Data["version"], e.Data["context_hmac"] = ct.Key, ct.Version, s.ctxHash.hash(ctxPairs)
		err = s.batch.do(ctx, &job{entry: e, usages: []usage{{key: ct.Key, version: ct.Version, dec: 1}}})
		if errors.Is(err, errStale) && attempt == 0 {
			clear(pt)
			s.forget(ct.Key)
			continue
		}
		if err != nil {
			clear(pt)
			return nil, s.staleErr(err, ct.Key)
		}
		return pt, nil
	}
}

// DataKey is a fresh data key for client-side envelope encryption: use
// Plaintext to encrypt locally, store Ciphertext beside the data, and
// forget Plaintext; Decrypt of Ciphertext (same context) returns it.
type DataKey struct {
	Plaintext  Plaintext
	Ciphertext string
	Key        string
	Version    int
}

// GenerateDataKey returns a new 256-bit data key and its encryption under
// key name.
func (s *Service) GenerateDataKey(ctx context.Context, c Caller, name string, ctxPairs Context) (DataKey, error) {
	dk := make([]byte, dataKeySize)
	if _, err := rand.Read(dk); err != nil {
		return DataKey{}, err
	}
	if err := s.checkEncrypt(c, name, dk, ctxPairs); err != nil {
		return DataKey{}, err
	}
	r, err := s.encrypt(ctx, c, name, dk, ctxPairs, "kms.datakey")
	if err != nil {
		clear(dk)
		return DataKey{}, err
	}
	return DataKey{Plaintext: Plaintext{b: dk}, Ciphertext: r.Ciphertext, Key: r.Key, Version: r.Version}, nil
}

// Rewrap re-wraps a ciphertext's data key under the key's current version
// (rotating first if the current version is due). The body is not
// decrypted: neither the caller nor this process sees the plaintext.
func (s *Service) Rewrap(ctx context.Context, c Caller, ciphertextText string, ctxPairs Context) (EncryptResult, error) {
	if err := c.check(); err != nil {
		return EncryptResult{}, err
	}
	if err := ctxPairs.validate(); err != nil {
		return EncryptResult{}, err
	}
	ct, err := parseCiphertext(ciphertextText)
	if err != nil {
		return EncryptResult{}, err
	}
	canon := ctxPairs.canonical()
	for attempt := 0; ; attempt++ {
		oldKEK, err := s.decryptable(ctx, ct.Key, ct.Version)
		if err != nil {
			return EncryptResult{}, err
		}
		dk, ok := unwrap(oldKEK, ct, canon)
		if !ok {
			return EncryptResult{}, errDecryptFailed
		}
		newKEK, version, err := s.reserve(ctx, ct.Key)
		if err != nil {
			clear(dk)
			return EncryptResult{}, err
		}
		out := ciphertext{Key: ct.Key, Version: version, Body: ct.Body,
			Wrapped: newKEK.Seal(nil, nil, dk, wrapAAD(ct.Key, version, canon))}
		clear(dk)
		err = s.batch.do(ctx, &job{
			entry: audit.Entry{Kind: "kms.rewrap", Version: 1, Actor: c.Actor(), Subject: "key:" + ct.Key, Time: s.now(),
				Data: map[string]any{"key": ct.Key, "from_version": ct.Version, "version": version, "context_hmac": s.ctxHash.hash(ctxPairs)}},
			usages: []usage{{key: ct.Key, version: ct.Version, dec: 1}, {key: ct.Key, version: version, enc: 1}},
		})
		if errors.Is(err, errStale) && attempt == 0 {
			s.forget(ct.Key)
			continue
		}
		if err != nil {
			return EncryptResult{}, s.staleErr(err, ct.Key)
		}
		return EncryptResult{Ciphertext: out.String(), Key: ct.Key, Version: version}, nil
	}
}
