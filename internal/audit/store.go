package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// ErrNotFound is wrapped by Store implementations when a row asked for
// does not exist (no checkpoint yet, no key yet, no entry at an index).
var ErrNotFound = errors.New("audit: not found")

// Store is what the log needs from the database. internal/store
// implements it (store.DB.AuditStore); the conformance suite in
// internal/store/storetest/audit.go runs it on SQLite and PostgreSQL.
type Store interface {
	// Sequence runs fn in one transaction holding the sequencer lock, so
	// that one sequencer at a time integrates entries and signs
	// checkpoints (PostgreSQL: an advisory lock; SQLite: the write lock).
	Sequence(ctx context.Context, fn func(SeqTx) error) error
	// Redact runs fn in one transaction in which deletions overwrite the
	// deleted bytes (SQLite secure_delete); after commit the store MUST
	// make sure no copy of the erased bytes stays in its files (SQLite:
	// checkpoint and truncate the WAL).
	Redact(ctx context.Context, fn func(RedactTx) error) error

	TreeState(ctx context.Context) (TreeState, error)
	// Entries returns the integrated entries with start <= index < end,
	// in index order, with the personal openings still stored.
	Entries(ctx context.Context, start, end uint64) ([]StoredEntry, error)
	// ReadTiles implements tlog.TileReader over the stored tiles.
	ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error)
	// LatestCheckpoint returns the newest checkpoint (ErrNotFound if none).
	LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error)
	// CheckpointsSince returns up to limit stored checkpoints with
	// ID > afterID, in ID order.
	CheckpointsSince(ctx context.Context, afterID int64, limit int) ([]StoredCheckpoint, error)
	// Cosignatures returns the witness cosignature lines stored for a
	// checkpoint; AddCosignature stores one (replacing that witness's).
	Cosignatures(ctx context.Context, checkpointID int64) ([]string, error)
	AddCosignature(ctx context.Context, checkpointID int64, witness, line string) error
	// LogKey returns the sealed private key and the public verifier key
	// (ErrNotFound if none). PutLogKey stores them unless a key exists.
	LogKey(ctx context.Context) (sealed []byte, vkey string, err error)
	PutLogKey(ctx context.Context, sealed []byte, vkey string) error
	// PendingCount counts committed entries not yet integrated.
	PendingCount(ctx context.Context) (int64, error)
}

// SeqTx is the sequencer's transaction.
type SeqTx interface {
	TreeState(ctx context.Context) (TreeState, error)
	// PendingEntries returns up to limit entries not yet integrated, in
	// the order they were inserted.
	PendingEntries(ctx context.Context, limit int) ([]StoredEntry, error)
	ActorStates(ctx context.Context, actors []string) (map[string]ActorState, error)
	ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error)
	// IntegrateEntries records each entry's index and actor chain.
	IntegrateEntries(ctx context.Context, es []Sequenced) error
	PutActorStates(ctx context.Context, states map[string]ActorState) error
	// PutTiles stores tiles at the given widths, replacing narrower ones.
	PutTiles(ctx context.Context, tiles []tlog.Tile, data [][]byte) error
	PutTreeState(ctx context.Context, s TreeState) error
	LatestCheckpoint(ctx context.Context) (StoredCheckpoint, error)
	InsertCheckpoint(ctx context.Context, c StoredCheckpoint) (id int64, err error)
}

// RedactTx is the redaction transaction; it can also Append.
type RedactTx interface {
	Tx
	// EntryAt returns the integrated entry at index (ErrNotFound if none).
	EntryAt(ctx context.Context, index uint64) (StoredEntry, error)
	// ErasePersonal deletes the personal openings of the entry with the
	// given row ID and returns how many fields it erased.
	ErasePersonal(ctx context.Context, entryID int64) (int, error)
}

// TreeState is the integrated tree: its size, root, and compact-range
// frontier (concatenated hashes, see tlog.EncodeFrontier).
type TreeState struct {
	Size     uint64
	Root     []byte
	Frontier []byte
}

// ActorState is the tail of one actor's chain.
type ActorState struct {
	Seq      uint64
	LastHash []byte
}

// Sequenced is the sequencer's decision for one pending entry.
type Sequenced struct {
	ID        int64
	Index     uint64
	ActorSeq  uint64
	ActorPrev []byte
}

// StoredEntry is one entry row.
type StoredEntry struct {
	ID         int64
	Integrated bool
	Index      uint64
	ActorSeq   uint64
	ActorPrev  []byte // nil for the actor's first entry
	Record            // Personal is not filled on reads: see Openings
	// PersonalJSON and SaltsJSON are the stored openings (see
	// EncodeOpenings); both nil once redacted.
	PersonalJSON, SaltsJSON []byte
}

// Openings decodes the personal openings still stored.
func (e StoredEntry) Openings() ([]PersonalField, error) {
	return DecodeOpenings(e.PersonalJSON, e.SaltsJSON)
}

// EncodeOpenings is the stored form of personal openings: two JSON
// objects, {name: value} and {name: base64 salt}; nil when there are none.
func EncodeOpenings(fs []PersonalField) (values, salts []byte, err error) {
	if len(fs) == 0 {
		return nil, nil, nil
	}
	v := make(map[string]string, len(fs))
	s := make(map[string][]byte, len(fs))
	for _, f := range fs {
		v[f.Name], s[f.Name] = f.Value, f.Salt
	}
	if values, err = json.Marshal(v); err != nil {
		return nil, nil, err
	}
	salts, err = json.Marshal(s)
	return values, salts, err
}

// DecodeOpenings reverses EncodeOpenings.
func DecodeOpenings(values, salts []byte) ([]PersonalField, error) {
	if len(values) == 0 && len(salts) == 0 {
		return nil, nil
	}
	var v map[string]string
	var s map[string][]byte
	if err := json.Unmarshal(values, &v); err != nil {
		return nil, fmt.Errorf("decode personal data: %w", err)
	}
	if err := json.Unmarshal(salts, &s); err != nil {
		return nil, fmt.Errorf("decode personal salts: %w", err)
	}
	out := make([]PersonalField, 0, len(v))
	for name, value := range v {
		out = append(out, PersonalField{Name: name, Salt: s[name], Value: value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// StoredCheckpoint is one signed checkpoint as published.
type StoredCheckpoint struct {
	ID   int64
	Size uint64
	Root []byte
	Time time.Time
	// Note is the signed note (log signature only).
	Note []byte
}
