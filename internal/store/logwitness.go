package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LogWitnessSize returns the size of the latest checkpoint the witness
// with verifier key vkey cosigned (logwitness.Store); ok is false when the
// log never heard from it.
func (db *DB) LogWitnessSize(ctx context.Context, vkey string) (size uint64, ok bool, err error) {
	var n int64
	err = db.QueryRow(ctx, `SELECT size FROM log_witness_state WHERE vkey = $1`, vkey).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read witness state: %w", err)
	}
	return uint64(n), true, nil
}

// PutLogWitnessSize records the size a witness last cosigned (or told the
// log it has, in a 409 answer).
func (db *DB) PutLogWitnessSize(ctx context.Context, vkey, url string, size uint64, at time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO log_witness_state (vkey, url, size, updated_unix_nano) VALUES ($1, $2, $3, $4)
		ON CONFLICT (vkey) DO UPDATE SET url = excluded.url, size = excluded.size, updated_unix_nano = excluded.updated_unix_nano`,
		vkey, url, int64(size), at.UnixNano())
	if err != nil {
		return fmt.Errorf("store witness state: %w", mapErr(err))
	}
	return nil
}
