package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/passkey"
)

// PasskeyStore returns internal/passkey's store (migration 440).
func (db *DB) PasskeyStore() passkey.Store { return passkeyStore{db} }

type passkeyStore struct{ db *DB }

func (s passkeyStore) InTx(ctx context.Context, fn func(passkey.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const passkeyColumns = `id, person_id, name, credential, created_at, last_used_at`

func scanPasskey(row rowScanner) (passkey.Passkey, error) {
	var p passkey.Passkey
	var created, used int64
	err := row.Scan(&p.ID, &p.PersonID, &p.Name, &p.Credential, &created, &used)
	p.CreatedAt, p.LastUsed = opsTime(created), opsTime(used)
	return p, err
}

func (s passkeyStore) Passkeys(ctx context.Context, personID string) ([]passkey.Passkey, error) {
	rows, err := s.db.Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE person_id = $1 ORDER BY created_at`, personID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", mapErr(err))
	}
	defer rows.Close()
	var out []passkey.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, fmt.Errorf("scan passkey: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s passkeyStore) Passkey(ctx context.Context, id string) (passkey.Passkey, error) {
	p, err := scanPasskey(s.db.QueryRow(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE id = $1`, id))
	if err = mapErr(err); errors.Is(err, ErrNotFound) {
		return p, fmt.Errorf("load passkey: %w: %w", passkey.ErrNotFound, err)
	}
	return p, err
}

func (t *Tx) InsertPasskey(ctx context.Context, p passkey.Passkey) error {
	_, err := t.Exec(ctx, `INSERT INTO passkeys (`+passkeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		p.ID, p.PersonID, p.Name, p.Credential, identityNanos(p.CreatedAt), identityNanos(p.LastUsed))
	return mapErr(err)
}

func (t *Tx) DeletePasskey(ctx context.Context, personID, id string) (bool, error) {
	res, err := t.Exec(ctx, `DELETE FROM passkeys WHERE id = $1 AND person_id = $2`, id, personID)
	if err != nil {
		return false, mapErr(err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *Tx) UpdatePasskeyUse(ctx context.Context, id string, credential []byte, at time.Time) error {
	_, err := t.Exec(ctx, `UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3`, credential, identityNanos(at), id)
	return mapErr(err)
}
