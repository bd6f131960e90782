// Package audit owns Interlock's record of every privileged action: the
// entry kinds (versioned, one golden file per kind and version), Append
// (which writes an entry inside the caller's database transaction), the
// group-commit [Appender], and — with internal/tlog — the sequencer that
// integrates committed entries into an RFC 6962 Merkle tree, the signed
// checkpoints it publishes, proofs, redaction, export bundles and full
// verification.
//
// Invariant: no privileged state change commits without its entry. Callers
// MUST call Append with the same transaction that carries the change.
//
// Lifecycle of an entry: Append inserts a pending row (durable once the
// caller's transaction commits). The sequencer ([Log]) later assigns it the
// next log index, the actor's next sequence number and the hash of the
// actor's previous entry, builds its canonical leaf ([LeafV1]), and adds
// the leaf hash to the tree; a signed checkpoint then commits to it.
//
// Imported by the domain packages (identity, ops, kms, …), internal/api
// and internal/app; it imports only internal/tlog (and internal/usererr,
// which every package may).
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Entry is one record of something that happened.
type Entry struct {
	// Kind names what happened, e.g. "op.approved". Kinds are stable API.
	Kind string
	// Version is the version of Kind's Data layout, starting at 1.
	Version int
	// Actor is who did it: "person:<id>", "agent:<id>" or "system".
	Actor string
	// Subject is what it was done to, e.g. "op:42", "host:web-3".
	Subject string
	// Time is when it happened (from the caller's injected clock).
	Time time.Time
	// Data holds the public details. It MUST NOT contain secrets.
	Data map[string]any
	// Personal holds personal or sensitive details (names, addresses,
	// reasons). They are committed to the log as salted hashes so that they
	// can later be erased without breaking any proof.
	Personal map[string]string
	// IdempotencyKey, when set, makes the entry unique: a second Append
	// with the same key returns [ErrDuplicate] and records nothing.
	IdempotencyKey string
}

// Limits on one entry. The canonical leaf must fit a C2SP entry bundle
// (16-bit length prefix).
const (
	MaxLeafSize   = 65535
	maxNameLength = 200
)

// ErrDuplicate is returned by Append when an entry with the same
// IdempotencyKey already exists. The caller's transaction is still usable.
var ErrDuplicate = errors.New("audit: an entry with this idempotency key already exists")

// PersonalField is the opening of one Personal value: the salt and the
// plaintext that hash to the commitment in the leaf. Redaction erases it.
type PersonalField struct {
	Name  string
	Salt  []byte
	Value string
}

// Record is an Entry as the store keeps it before it is sequenced.
type Record struct {
	Kind           string
	Version        int
	Actor          string
	Subject        string
	Time           time.Time
	IdempotencyKey string // "" for none
	// Data is the canonical JSON object of Entry.Data.
	Data []byte
	// Commitments is the canonical JSON object {name: hex commitment} of
	// Entry.Personal ("{}" when there is none).
	Commitments []byte
	// Personal holds the openings, sorted by name.
	Personal []PersonalField
}

// Tx is the part of a database transaction that Append needs. store.Tx
// implements it; every domain's Tx interface embeds it.
//
// InsertAuditRecord MUST insert r as a pending entry in the transaction,
// and MUST return an error wrapping [ErrDuplicate] — leaving the
// transaction usable — when r.IdempotencyKey is already recorded.
type Tx interface {
	InsertAuditRecord(ctx context.Context, r Record) error
}

// Append records e inside tx. It returns an error if e is incomplete or
// too large; the caller MUST then roll back its change (except for
// [ErrDuplicate], which the caller may treat as "already done").
func Append(ctx context.Context, tx Tx, e Entry) error {
	r, err := NewRecord(e, rand.Reader)
	if err != nil {
		return err
	}
	if err := tx.InsertAuditRecord(ctx, r); err != nil {
		if errors.Is(err, ErrDuplicate) {
			return err
		}
		return fmt.Errorf("audit: append %s: %w", e.Kind, err)
	}
	return nil
}

// NewRecord validates e and turns it into a Record: canonical Data, fresh
// 32-byte salts from rand, and the commitments.
func NewRecord(e Entry, rand io.Reader) (Record, error) {
	if e.Kind == "" || e.Version < 1 || e.Actor == "" || e.Time.IsZero() {
		return Record{}, errors.New("audit: entry needs kind, version, actor and time")
	}
	for _, s := range []string{e.Kind, e.Actor, e.Subject, e.IdempotencyKey} {
		if len(s) > maxNameLength || !utf8.ValidString(s) {
			return Record{}, fmt.Errorf("audit: %s entry: kind, actor, subject and idempotency key must be valid UTF-8 of at most %d bytes", e.Kind, maxNameLength)
		}
	}
	data := []byte("{}")
	if len(e.Data) > 0 {
		var err error
		if data, err = json.Marshal(e.Data); err != nil { // map keys are sorted: canonical
			return Record{}, fmt.Errorf("audit: encode %s data: %w", e.Kind, err)
		}
	}
	r := Record{Kind: e.Kind, Version: e.Version, Actor: e.Actor, Subject: e.Subject, Time: e.Time.UTC(),
		IdempotencyKey: e.IdempotencyKey, Data: data}
	names := make([]string, 0, len(e.Personal))
	for n := range e.Personal {
		names = append(names, n)
	}
	sort.Strings(names)
	commits := make(map[string]string, len(names))
	for _, n := range names {
		salt := make([]byte, 32)
		if _, err := io.ReadFull(rand, salt); err != nil {
			return Record{}, fmt.Errorf("audit: salt for %s: %w", e.Kind, err)
		}
		f := PersonalField{Name: n, Salt: salt, Value: e.Personal[n]}
		r.Personal = append(r.Personal, f)
		commits[n] = hex.EncodeToString(Commitment(f))
	}
	c, _ := json.Marshal(commits)
	r.Commitments = c
	if size := len(r.Data) + len(r.Commitments) + 4*maxNameLength + 256; size > MaxLeafSize {
		// The entry's size follows from the request it records, so the
		// request is what is too large: a 413 that changes nothing (the
		// caller rolls back), not a server error.
		return Record{}, usererr.New(usererr.TooLarge, "audit_entry_too_large",
			"the request would be recorded as a %s log entry of about %d bytes; entries are limited to %d, so send less at once", e.Kind, size, MaxLeafSize)
	}
	return r, nil
}

// Commitment is the salted hash of one Personal value:
// SHA-256("interlock/audit/personal/v1" || 0 || salt || name || 0 || value).
func Commitment(f PersonalField) []byte {
	return tlog.PersonalCommitment(f.Name, f.Salt, f.Value)
}

// The canonical leaf format and its verification live in internal/tlog
// (pure, importable by the CLI); these aliases keep audit's API whole.
type (
	// LeafV1 is the canonical leaf; see tlog.LeafV1.
	LeafV1 = tlog.LeafV1
	// VerifyError names the first bad entry; see tlog.VerifyError.
	VerifyError = tlog.VerifyError
	// LeafReader reads canonical leaves by index.
	LeafReader = tlog.LeafReader
	// VerifyOptions refine VerifyEntries.
	VerifyOptions = tlog.VerifyOptions
	// Bundle is an offline-verifiable export; see tlog.Bundle.
	Bundle = tlog.Bundle
	// BundleEntry is one entry of a Bundle.
	BundleEntry = tlog.BundleEntry
	// BundleReport says what a verified bundle proved.
	BundleReport = tlog.BundleReport
)

// LeafFormatV1 names the version-1 leaf layout.
const LeafFormatV1 = tlog.LeafFormatV1

// BundleFormat names the export bundle layout.
const BundleFormat = tlog.BundleFormat

var (
	// ParseLeaf decodes canonical leaf bytes (tlog.ParseLeaf).
	ParseLeaf = tlog.ParseLeaf
	// VerifyEntries re-derives a tree from its leaves (tlog.VerifyEntries).
	VerifyEntries = tlog.VerifyEntries
	// VerifyBundle checks a bundle offline (tlog.VerifyBundle).
	VerifyBundle = tlog.VerifyBundle
)
