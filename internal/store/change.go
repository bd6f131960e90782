package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/interlock-dev/interlock/internal/change"
)

// ChangeStore returns internal/change's store: change requests (migration 300).
func (db *DB) ChangeStore() change.Store { return changeStore{db} }

type changeStore struct{ db *DB }

func (s changeStore) InTx(ctx context.Context, fn func(change.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

func (s changeStore) ChangeRequest(ctx context.Context, id string) (change.Request, error) {
	return changeRequest(ctx, s.db, id)
}

func (s changeStore) ChangeRequests(ctx context.Context, f change.Filter) ([]change.Request, error) {
	return changeRequests(ctx, s.db, f)
}

func (t *Tx) ChangeRequest(ctx context.Context, id string) (change.Request, error) {
	return changeRequest(ctx, t, id)
}

func (t *Tx) ChangeRequests(ctx context.Context, f change.Filter) ([]change.Request, error) {
	return changeRequests(ctx, t, f)
}

const changeColumns = `id, kind, target, content, base, hash, summary, requester_id, requester_name, state,
	created_at, expires_at, decided_by, decided_at, detail`

type rowScanner interface{ Scan(dest ...any) error }

func scanChange(row rowScanner) (change.Request, error) {
	var r change.Request
	var kind, state string
	var created, expires, decided int64
	err := row.Scan(&r.ID, &kind, &r.Target, &r.Content, &r.Base, &r.Hash, &r.Summary, &r.RequesterID, &r.RequesterName, &state,
		&created, &expires, &r.DecidedBy, &decided, &r.Detail)
	r.Kind, r.State = change.Kind(kind), change.State(state)
	r.CreatedAt, r.ExpiresAt, r.DecidedAt = opsTime(created), opsTime(expires), opsTime(decided)
	return r, err
}

func changeErr(what string, err error) error {
	err = mapErr(err)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s: %w: %w", what, change.ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func changeRequest(ctx context.Context, q opsQuerier, id string) (change.Request, error) {
	r, err := scanChange(q.QueryRow(ctx, `SELECT `+changeColumns+` FROM change_requests WHERE id = $1`, id))
	if err != nil {
		return change.Request{}, changeErr("load change request "+id, err)
	}
	return r, nil
}

func changeRequests(ctx context.Context, q opsQuerier, f change.Filter) ([]change.Request, error) {
	query := `SELECT ` + changeColumns + ` FROM change_requests`
	var args []any
	if len(f.States) > 0 {
		marks := make([]string, len(f.States))
		for i, s := range f.States {
			args = append(args, string(s))
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
		query += ` WHERE state IN (` + strings.Join(marks, ", ") + `)`
	}
	query += ` ORDER BY created_at DESC, id`
	if f.Limit > 0 {
		query += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, changeErr("list change requests", err)
	}
	defer rows.Close()
	var out []change.Request
	for rows.Next() {
		r, err := scanChange(rows)
		if err != nil {
			return nil, changeErr("scan change request", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, changeErr("list change requests", err)
	}
	return out, nil
}

// InsertChangeRequest stores a new request.
func (t *Tx) InsertChangeRequest(ctx context.Context, r change.Request) error {
	_, err := t.Exec(ctx, `INSERT INTO change_requests (`+changeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.ID, string(r.Kind), r.Target, r.Content, r.Base, r.Hash, r.Summary, r.RequesterID, r.RequesterName, string(r.State),
		opsNanos(r.CreatedAt), opsNanos(r.ExpiresAt), r.DecidedBy, opsNanos(r.DecidedAt), r.Detail)
	if err != nil {
		return changeErr("insert change request", err)
	}
	return nil
}

// UpdateChangeRequest moves a request out of state from.
func (t *Tx) UpdateChangeRequest(ctx context.Context, r change.Request, from change.State) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE change_requests SET state = $1, decided_by = $2, decided_at = $3, detail = $4
		WHERE id = $5 AND state = $6`, string(r.State), r.DecidedBy, opsNanos(r.DecidedAt), r.Detail, r.ID, string(from))
	if err != nil {
		return false, changeErr("update change request", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, changeErr("update change request", err)
	}
	return n == 1, nil
}
