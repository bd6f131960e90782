package tlog

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a C2SP tlog-checkpoint body. Interlock adds one extension
// line, "time <unix seconds>", so that a checkpoint re-published while
// the log is idle still shows when it was signed: a client that sees an
// old time knows the log has stopped.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   []byte
	// Time is when the log signed the checkpoint (whole seconds); zero
	// when the checkpoint carries no time line.
	Time time.Time
	// Epoch counts the log's recorded forks plus one; EpochStart is the
	// index of the fork entry that began it. Both are zero for epoch 1,
	// whose checkpoints carry no epoch line (see epoch.go).
	Epoch, EpochStart uint64
}

const timeExtension = "time "

// Marshal returns the checkpoint body: origin, size, base64 root hash,
// then the time extension line.
func (c Checkpoint) Marshal() []byte {
	b := log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash}.Marshal()
	if !c.Time.IsZero() {
		b = append(b, timeExtension+strconv.FormatInt(c.Time.Unix(), 10)+"\n"...)
	}
	return appendEpochLine(b, c)
}

// ParseCheckpoint parses a checkpoint body (not a signed note).
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	var lc log.Checkpoint
	rest, err := lc.Unmarshal(body)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(lc.Hash) != HashSize {
		return Checkpoint{}, fmt.Errorf("invalid checkpoint - root hash is %d bytes", len(lc.Hash))
	}
	c := Checkpoint{Origin: lc.Origin, Size: lc.Size, Hash: lc.Hash}
	for _, line := range strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n") {
		if v, ok := strings.CutPrefix(line, timeExtension); ok {
			s, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Checkpoint{}, fmt.Errorf("invalid checkpoint - bad time line %q", line)
			}
			c.Time = time.Unix(s, 0).UTC()
		}
		if v, ok := strings.CutPrefix(line, epochExtension); ok {
			if err := parseEpochLine(&c, v); err != nil {
				return Checkpoint{}, err
			}
		}
	}
	return c, nil
}

// PrivateKey is a log's Ed25519 signing key in signed-note form. It
// prints as "[redacted]"; [PrivateKey.Reveal] is for sealing it at rest.
type PrivateKey struct {
	_ [0]func() // not comparable
	s string
}

// String implements fmt.Stringer without revealing the key.
func (PrivateKey) String() string { return "[redacted]" }

// LogValue implements slog.LogValuer without revealing the key.
func (PrivateKey) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Reveal returns the note private key ("PRIVATE+KEY+…"): only seal it.
func (k PrivateKey) Reveal() string { return k.s }

// ParsePrivateKey wraps a note private key read back from storage.
func ParsePrivateKey(s string) (PrivateKey, error) {
	if _, err := note.NewSigner(s); err != nil {
		return PrivateKey{}, fmt.Errorf("parse log private key: %v", err)
	}
	return PrivateKey{s: s}, nil
}

// Signer returns a note signer for the key.
func (k PrivateKey) Signer() (note.Signer, error) { return note.NewSigner(k.s) }

// GenerateLogKey creates an Ed25519 log key named origin (the C2SP
// convention: the key name is the log's origin). vkey is the public
// verifier key ("origin+hash+base64") that clients pin.
func GenerateLogKey(rand io.Reader, origin string) (PrivateKey, string, error) {
	skey, vkey, err := note.GenerateKey(rand, origin)
	if err != nil {
		return PrivateKey{}, "", fmt.Errorf("generate log key: %w", err)
	}
	return PrivateKey{s: skey}, vkey, nil
}

// SignCheckpoint signs c as a C2SP signed note.
func SignCheckpoint(s note.Signer, c Checkpoint) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("sign checkpoint: key %q does not match origin %q", s.Name(), c.Origin)
	}
	return note.Sign(&note.Note{Text: string(c.Marshal())}, s)
}

// OpenCheckpoint verifies the log's signature on a signed checkpoint and
// parses it. The origin MUST equal the log key's name. Signatures by
// other keys (e.g. witnesses) are kept in the returned note; those named
// in others are verified too.
func OpenCheckpoint(signed []byte, logKey note.Verifier, others ...note.Verifier) (Checkpoint, *note.Note, error) {
	vs := append([]note.Verifier{logKey}, others...)
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	signedByLog := false
	for _, s := range n.Sigs {
		if s.Name == logKey.Name() && s.Hash == logKey.KeyHash() {
			signedByLog = true
		}
	}
	if !signedByLog {
		return Checkpoint{}, n, errors.New("checkpoint is not signed by the log key")
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, n, err
	}
	if c.Origin != logKey.Name() {
		return Checkpoint{}, n, fmt.Errorf("checkpoint origin %q does not match log key %q", c.Origin, logKey.Name())
	}
	return c, n, nil
}

// NewVerifier parses a signed-note verifier key: Ed25519 (type 0x01) or
// C2SP tlog-cosignature Ed25519 (type 0x04).
func NewVerifier(vkey string) (note.Verifier, error) {
	if v, err := newCosignatureVerifier(vkey); err == nil {
		return v, nil
	}
	return note.NewVerifier(vkey)
}

// ForkError reports two validly signed checkpoints of one size with
// different roots: the log has shown two different histories.
type ForkError struct {
	Size         uint64
	Root1, Root2 []byte
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("log fork: two signed checkpoints of size %d have different roots (%x and %x)", e.Size, e.Root1, e.Root2)
}

// RollbackError reports a checkpoint smaller than one already seen.
type RollbackError struct{ Seen, Got uint64 }

func (e *RollbackError) Error() string {
	return fmt.Sprintf("log rollback: got a checkpoint of size %d after one of size %d", e.Got, e.Seen)
}

// CheckExtension checks that next extends prev (the last checkpoint a
// client or witness trusted), given a consistency proof from prev.Size
// to next.Size. Both MUST already be signature-verified. A nil prev is
// trust on first use. Forks are reported as *[ForkError], shrinking as
// *[RollbackError], and a later epoch that began before prev's size as
// *[EpochError] (the caller checks the fork entry).
func CheckExtension(prev *Checkpoint, next Checkpoint, consistency [][]byte) error {
	if prev == nil {
		return nil
	}
	if prev.Origin != next.Origin {
		return fmt.Errorf("checkpoint origin changed from %q to %q", prev.Origin, next.Origin)
	}
	switch pe, ne := EpochOf(*prev), EpochOf(next); {
	case ne < pe:
		return fmt.Errorf("log rollback: got a checkpoint of epoch %d after one of epoch %d", ne, pe)
	case ne > pe && next.EpochStart < prev.Size:
		return &EpochError{Prev: *prev, Next: next}
	}
	switch {
	case next.Size < prev.Size:
		return &RollbackError{Seen: prev.Size, Got: next.Size}
	case next.Size == prev.Size:
		if subtle.ConstantTimeCompare(prev.Hash, next.Hash) != 1 {
			return &ForkError{Size: next.Size, Root1: prev.Hash, Root2: next.Hash}
		}
		return nil
	}
	if err := VerifyConsistency(prev.Size, next.Size, consistency, prev.Hash, next.Hash); err != nil {
		return fmt.Errorf("checkpoint of size %d is not consistent with the one of size %d seen before: %w", next.Size, prev.Size, err)
	}
	return nil
}

// SameTree reports whether two checkpoints describe the same tree
// (their time lines may differ).
func SameTree(a, b Checkpoint) bool {
	return a.Origin == b.Origin && a.Size == b.Size && bytes.Equal(a.Hash, b.Hash)
}
