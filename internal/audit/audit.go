// Package audit owns Interlock's record of every privileged action: the
// entry kinds, Append (which writes an entry inside the caller's database
// transaction), and — with internal/tlog — the sequencer and signed
// checkpoints that make the record tamper-evident.
//
// Invariant: no privileged state change commits without its entry. Callers
// MUST call Append with the same transaction that carries the change.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
}

// Record is an Entry as the store keeps it.
type Record struct {
	Kind     string
	Version  int
	Actor    string
	Subject  string
	Time     time.Time
	Data     []byte // canonical JSON of Entry.Data
	Personal []byte // JSON of Entry.Personal
}

// Tx is the part of a database transaction that Append needs. store.Tx
// implements it; every domain's Tx interface embeds it.
type Tx interface {
	InsertAuditRecord(ctx context.Context, r Record) error
}

// Append records e inside tx. It returns an error if e is incomplete; the
// caller MUST then roll back its change.
func Append(ctx context.Context, tx Tx, e Entry) error {
	if e.Kind == "" || e.Version < 1 || e.Actor == "" || e.Time.IsZero() {
		return errors.New("audit: entry needs kind, version, actor and time")
	}
	data, err := json.Marshal(e.Data) // map keys are sorted: canonical enough for now
	if err != nil {
		return fmt.Errorf("audit: encode %s data: %w", e.Kind, err)
	}
	personal, err := json.Marshal(e.Personal)
	if err != nil {
		return fmt.Errorf("audit: encode %s personal data: %w", e.Kind, err)
	}
	r := Record{Kind: e.Kind, Version: e.Version, Actor: e.Actor, Subject: e.Subject, Time: e.Time.UTC(), Data: data, Personal: personal}
	if err := tx.InsertAuditRecord(ctx, r); err != nil {
		return fmt.Errorf("audit: append %s: %w", e.Kind, err)
	}
	return nil
}
