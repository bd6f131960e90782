package audit

import (
	"context"
	"errors"
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
	Record            // Personal holds the openings still stored
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
