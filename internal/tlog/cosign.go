package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// C2SP tlog-cosignature v1: a witness signs
//
//	"cosignature/v1\ntime <t>\n" + checkpoint body
//
// with Ed25519; the note signature is the 8-byte big-endian t followed by
// the 64-byte Ed25519 signature, and the key ID is
// SHA-256(name || "\n" || 0x04 || public key)[:4].
const algCosignatureV1 = 0x04

func cosignatureKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write([]byte{algCosignatureV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func cosignedMessage(t uint64, body []byte) []byte {
	return append([]byte("cosignature/v1\ntime "+strconv.FormatUint(t, 10)+"\n"), body...)
}

// Cosigner signs checkpoints as a C2SP tlog-cosignature/v1 witness.
type Cosigner struct {
	name string
	key  ed25519.PrivateKey
	hash uint32
	// Now gives the cosignature time; nil means time.Now.
	Now func() time.Time
}

// NewCosigner returns a witness signer named name with the given key.
func NewCosigner(name string, key ed25519.PrivateKey) (*Cosigner, error) {
	if name == "" || strings.ContainsAny(name, "+ \n") {
		return nil, fmt.Errorf("witness name %q must be non-empty and free of '+', spaces and newlines", name)
	}
	return &Cosigner{name: name, key: key, hash: cosignatureKeyHash(name, key.Public().(ed25519.PublicKey))}, nil
}

// Name implements note.Signer.
func (c *Cosigner) Name() string { return c.name }

// KeyHash implements note.Signer.
func (c *Cosigner) KeyHash() uint32 { return c.hash }

// Sign implements note.Signer: msg is the checkpoint body.
func (c *Cosigner) Sign(msg []byte) ([]byte, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := uint64(now().Unix())
	sig := ed25519.Sign(c.key, cosignedMessage(t, msg))
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(sig)), t), sig...), nil
}

// VerifierKey returns the witness's public verifier key
// ("name+hash+base64(0x04||pub)").
func (c *Cosigner) VerifierKey() string {
	pub := c.key.Public().(ed25519.PublicKey)
	return fmt.Sprintf("%s+%08x+%s", c.name, c.hash, base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, pub...)))
}

type cosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

func newCosignatureVerifier(vkey string) (*cosignatureVerifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	h, k, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || name == "" {
		return nil, errors.New("malformed verifier key")
	}
	hash, err := strconv.ParseUint(h, 16, 32)
	if err != nil || len(h) != 8 {
		return nil, errors.New("malformed verifier key hash")
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algCosignatureV1 {
		return nil, errors.New("not a cosignature/v1 verifier key")
	}
	pub := ed25519.PublicKey(raw[1:])
	if cosignatureKeyHash(name, pub) != uint32(hash) {
		return nil, errors.New("verifier key hash does not match")
	}
	return &cosignatureVerifier{name: name, hash: uint32(hash), pub: pub}, nil
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	return ed25519.Verify(v.pub, cosignedMessage(t, msg), sig[8:])
}

// CosignatureTime returns the time inside a cosignature/v1 signature.
func CosignatureTime(sig []byte) (time.Time, error) {
	if len(sig) != 8+ed25519.SignatureSize {
		return time.Time{}, errors.New("not a cosignature/v1 signature")
	}
	return time.Unix(int64(binary.BigEndian.Uint64(sig[:8])), 0).UTC(), nil
}

// Cosign verifies signed (a checkpoint note signed by logKey) and returns
// it with w's cosignature appended, plus the cosignature line alone
// ("— name base64\n") for a log to store. The caller MUST have checked
// consistency with the last checkpoint it cosigned ([CheckExtension]).
func Cosign(signed []byte, logKey note.Verifier, w note.Signer) (cosigned []byte, line string, err error) {
	n, err := note.Open(signed, note.VerifierList(logKey))
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint signature: %w", err)
	}
	out, err := note.Sign(n, w)
	if err != nil {
		return nil, "", fmt.Errorf("cosign: %w", err)
	}
	// The new signature is the last line of the signature block.
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	return out, lines[len(lines)-1] + "\n", nil
}
