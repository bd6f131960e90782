package store

import (
	"context"
	"fmt"

	"github.com/interlock-dev/interlock/internal/audit"
)

// InsertSequencerEntry implements audit.ForkTx: it inserts r as a pending
// entry inside the sequencer's transaction and returns the stored row, so
// that the sequencer can integrate exactly that entry next (the entry that
// records a fork MUST be the first of its epoch, before anything pending).
func (s seqTx) InsertSequencerEntry(ctx context.Context, r audit.Record) (audit.StoredEntry, error) {
	args, err := auditArgs(r)
	if err != nil {
		return audit.StoredEntry{}, err
	}
	var id int64
	if err := s.t.QueryRow(ctx, `INSERT INTO audit_entries (`+auditInsertCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`, args...).Scan(&id); err != nil {
		return audit.StoredEntry{}, fmt.Errorf("insert %s entry: %w", r.Kind, mapErr(err))
	}
	rows, err := s.t.Query(ctx, `SELECT `+entryCols+` FROM audit_entries WHERE id = $1`, id)
	if err != nil {
		return audit.StoredEntry{}, fmt.Errorf("read back %s entry: %w", r.Kind, err)
	}
	es, err := scanEntries(rows)
	if err != nil || len(es) != 1 {
		return audit.StoredEntry{}, fmt.Errorf("read back %s entry %d: %d rows, %v", r.Kind, id, len(es), err)
	}
	return es[0], nil
}
