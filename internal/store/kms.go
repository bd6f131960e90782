package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/kms"
)

// This file implements kms.Store. Key versions hold key-encryption keys
// sealed by the root key; secret versions hold envelope ciphertext text.
// Nothing here ever sees a plaintext key or secret.

// KMSStore returns the kms.Store backed by db.
func (db *DB) KMSStore() kms.Store { return kmsStore{db} }

type kmsStore struct{ db *DB }

func (s kmsStore) InTx(ctx context.Context, fn func(kms.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

// CheckpointKMS moves the SQLite write-ahead log into the main file and
// truncates it, so that a destroyed key's overwritten bytes do not linger
// in the WAL. It does nothing on PostgreSQL.
func (s kmsStore) CheckpointKMS(ctx context.Context) error {
	if s.db.dialect != SQLite {
		return nil
	}
	_, err := s.db.sql.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

type kmsQuerier interface {
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func kmsErr(err error) error {
	err = mapErr(err)
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", kms.ErrNoRecord, err)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("%w: %w", kms.ErrDuplicate, err)
	}
	return err
}

func kmsNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func kmsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func kmsBool(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

type kmsScanner interface{ Scan(dest ...any) error }

const kmsKeyCols = `name, created_at, created_by, current_version, min_decryption_version, disabled, rotation_period_ns, max_encryptions`

func scanKMSKey(r kmsScanner) (kms.KeyRecord, error) {
	var k kms.KeyRecord
	var created, period, disabled int64
	err := r.Scan(&k.Name, &created, &k.CreatedBy, &k.CurrentVersion, &k.MinDecryptionVersion, &disabled, &period, &k.MaxEncryptions)
	k.CreatedAt, k.Disabled, k.RotationPeriod = kmsTime(created), disabled != 0, time.Duration(period)
	return k, err
}

func kmsGetKey(ctx context.Context, q kmsQuerier, name, lock string) (kms.KeyRecord, error) {
	k, err := scanKMSKey(q.QueryRow(ctx, `SELECT `+kmsKeyCols+` FROM kms_keys WHERE name = $1`+lock, name))
	if err != nil {
		return kms.KeyRecord{}, kmsErr(err)
	}
	return k, nil
}

func kmsListKeys(ctx context.Context, q kmsQuerier) ([]kms.KeyRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+kmsKeyCols+` FROM kms_keys ORDER BY name`)
	if err != nil {
		return nil, kmsErr(err)
	}
	defer rows.Close()
	var out []kms.KeyRecord
	for rows.Next() {
		k, err := scanKMSKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

func kmsListKeyVersions(ctx context.Context, q kmsQuerier, name string) ([]kms.VersionRecord, error) {
	rows, err := q.Query(ctx, `SELECT key_name, version, wrapped, created_at, encryptions, decryptions, destroyed_at
		FROM kms_key_versions WHERE key_name = $1 ORDER BY version`, name)
	if err != nil {
		return nil, kmsErr(err)
	}
	defer rows.Close()
	var out []kms.VersionRecord
	for rows.Next() {
		var v kms.VersionRecord
		var created, destroyed int64
		if err := rows.Scan(&v.KeyName, &v.Version, &v.Wrapped, &created, &v.Encryptions, &v.Decryptions, &destroyed); err != nil {
			return nil, err
		}
		v.CreatedAt, v.DestroyedAt = kmsTime(created), kmsTime(destroyed)
		out = append(out, v)
	}
	return out, rows.Err()
}

const kmsSecretCols = `path, key_name, critical, current_version, created_at, updated_at, deleted_at`

func scanKMSSecret(r kmsScanner) (kms.SecretRecord, error) {
	var s kms.SecretRecord
	var critical, created, updated, deleted int64
	err := r.Scan(&s.Path, &s.KeyName, &critical, &s.CurrentVersion, &created, &updated, &deleted)
	s.Critical, s.CreatedAt, s.UpdatedAt, s.DeletedAt = critical != 0, kmsTime(created), kmsTime(updated), kmsTime(deleted)
	return s, err
}

func kmsGetSecret(ctx context.Context, q kmsQuerier, path, lock string) (kms.SecretRecord, error) {
	s, err := scanKMSSecret(q.QueryRow(ctx, `SELECT `+kmsSecretCols+` FROM kms_secrets WHERE path = $1`+lock, path))
	if err != nil {
		return kms.SecretRecord{}, kmsErr(err)
	}
	return s, nil
}

func kmsListSecrets(ctx context.Context, q kmsQuerier, prefix string) ([]kms.SecretRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+kmsSecretCols+` FROM kms_secrets WHERE deleted_at = 0 AND path >= $1 ORDER BY path`, prefix)
	if err != nil {
		return nil, kmsErr(err)
	}
	defer rows.Close()
	var out []kms.SecretRecord
	for rows.Next() {
		s, err := scanKMSSecret(rows)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(s.Path, prefix) {
			break
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func kmsGetSecretVersion(ctx context.Context, q kmsQuerier, path string, version int) (kms.SecretVersionRecord, error) {
	v := kms.SecretVersionRecord{Path: path, Version: version}
	var created int64
	err := q.QueryRow(ctx, `SELECT ciphertext, created_at, created_by FROM kms_secret_versions WHERE path = $1 AND version = $2`,
		path, version).Scan(&v.Ciphertext, &created, &v.CreatedBy)
	if err != nil {
		return kms.SecretVersionRecord{}, kmsErr(err)
	}
	v.CreatedAt = kmsTime(created)
	return v, nil
}

func kmsListSecretVersions(ctx context.Context, q kmsQuerier, path string) ([]kms.SecretVersionRecord, error) {
	rows, err := q.Query(ctx, `SELECT version, created_at, created_by FROM kms_secret_versions WHERE path = $1 ORDER BY version`, path)
	if err != nil {
		return nil, kmsErr(err)
	}
	defer rows.Close()
	var out []kms.SecretVersionRecord
	for rows.Next() {
		v := kms.SecretVersionRecord{Path: path}
		var created int64
		if err := rows.Scan(&v.Version, &created, &v.CreatedBy); err != nil {
			return nil, err
		}
		v.CreatedAt = kmsTime(created)
		out = append(out, v)
	}
	return out, rows.Err()
}

const kmsRequestCols = `id, action, subject, content, payload, hash, requested_by, requested_at, expires_at, state,
	approved_by, approved_at, execute_after, finished_at, note`

func scanKMSRequest(r kmsScanner) (kms.RequestRecord, error) {
	var q kms.RequestRecord
	var requested, expires, approved, after, finished int64
	err := r.Scan(&q.ID, &q.Action, &q.Subject, &q.Content, &q.Payload, &q.Hash, &q.RequestedBy, &requested, &expires, &q.State,
		&q.ApprovedBy, &approved, &after, &finished, &q.Note)
	q.RequestedAt, q.ExpiresAt, q.ApprovedAt, q.ExecuteAfter, q.FinishedAt = kmsTime(requested), kmsTime(expires), kmsTime(approved), kmsTime(after), kmsTime(finished)
	return q, err
}

func kmsGetRequest(ctx context.Context, q kmsQuerier, id, lock string) (kms.RequestRecord, error) {
	r, err := scanKMSRequest(q.QueryRow(ctx, `SELECT `+kmsRequestCols+` FROM kms_requests WHERE id = $1`+lock, id))
	if err != nil {
		return kms.RequestRecord{}, kmsErr(err)
	}
	return r, nil
}

func kmsListRequests(ctx context.Context, q kmsQuerier, state string) ([]kms.RequestRecord, error) {
	rows, err := q.Query(ctx, `SELECT `+kmsRequestCols+` FROM kms_requests WHERE $1 = '' OR state = $1 ORDER BY requested_at DESC, id`, state)
	if err != nil {
		return nil, kmsErr(err)
	}
	defer rows.Close()
	var out []kms.RequestRecord
	for rows.Next() {
		r, err := scanKMSRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func kmsGetMeta(ctx context.Context, q kmsQuerier, name string) ([]byte, error) {
	var v []byte
	if err := q.QueryRow(ctx, `SELECT value FROM kms_meta WHERE name = $1`, name).Scan(&v); err != nil {
		return nil, kmsErr(err)
	}
	return v, nil
}

// Reads outside a transaction.

func (s kmsStore) GetKMSKey(ctx context.Context, name string) (kms.KeyRecord, error) {
	return kmsGetKey(ctx, s.db, name, "")
}
func (s kmsStore) ListKMSKeys(ctx context.Context) ([]kms.KeyRecord, error) {
	return kmsListKeys(ctx, s.db)
}
func (s kmsStore) ListKMSKeyVersions(ctx context.Context, name string) ([]kms.VersionRecord, error) {
	return kmsListKeyVersions(ctx, s.db, name)
}
func (s kmsStore) GetKMSSecret(ctx context.Context, path string) (kms.SecretRecord, error) {
	return kmsGetSecret(ctx, s.db, path, "")
}
func (s kmsStore) ListKMSSecrets(ctx context.Context, prefix string) ([]kms.SecretRecord, error) {
	return kmsListSecrets(ctx, s.db, prefix)
}
func (s kmsStore) GetKMSSecretVersion(ctx context.Context, path string, version int) (kms.SecretVersionRecord, error) {
	return kmsGetSecretVersion(ctx, s.db, path, version)
}
func (s kmsStore) ListKMSSecretVersions(ctx context.Context, path string) ([]kms.SecretVersionRecord, error) {
	return kmsListSecretVersions(ctx, s.db, path)
}
func (s kmsStore) GetKMSRequest(ctx context.Context, id string) (kms.RequestRecord, error) {
	return kmsGetRequest(ctx, s.db, id, "")
}
func (s kmsStore) ListKMSRequests(ctx context.Context, state string) ([]kms.RequestRecord, error) {
	return kmsListRequests(ctx, s.db, state)
}
func (s kmsStore) GetKMSMeta(ctx context.Context, name string) ([]byte, error) {
	return kmsGetMeta(ctx, s.db, name)
}

// Reads inside a transaction (kms.Tx). On PostgreSQL a single-row read
// locks the row (FOR UPDATE), so that read-check-write sequences (rotate,
// approve, put a secret) on several servers serialize instead of losing
// an update; SQLite transactions are already serialized (BEGIN IMMEDIATE).

func (t *Tx) kmsLock() string {
	if t.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (t *Tx) GetKMSKey(ctx context.Context, name string) (kms.KeyRecord, error) {
	return kmsGetKey(ctx, t, name, t.kmsLock())
}
func (t *Tx) ListKMSKeys(ctx context.Context) ([]kms.KeyRecord, error) { return kmsListKeys(ctx, t) }
func (t *Tx) ListKMSKeyVersions(ctx context.Context, name string) ([]kms.VersionRecord, error) {
	return kmsListKeyVersions(ctx, t, name)
}
func (t *Tx) GetKMSSecret(ctx context.Context, path string) (kms.SecretRecord, error) {
	return kmsGetSecret(ctx, t, path, t.kmsLock())
}
func (t *Tx) ListKMSSecrets(ctx context.Context, prefix string) ([]kms.SecretRecord, error) {
	return kmsListSecrets(ctx, t, prefix)
}
func (t *Tx) GetKMSSecretVersion(ctx context.Context, path string, version int) (kms.SecretVersionRecord, error) {
	return kmsGetSecretVersion(ctx, t, path, version)
}
func (t *Tx) ListKMSSecretVersions(ctx context.Context, path string) ([]kms.SecretVersionRecord, error) {
	return kmsListSecretVersions(ctx, t, path)
}
func (t *Tx) GetKMSRequest(ctx context.Context, id string) (kms.RequestRecord, error) {
	return kmsGetRequest(ctx, t, id, t.kmsLock())
}
func (t *Tx) ListKMSRequests(ctx context.Context, state string) ([]kms.RequestRecord, error) {
	return kmsListRequests(ctx, t, state)
}
func (t *Tx) GetKMSMeta(ctx context.Context, name string) ([]byte, error) {
	return kmsGetMeta(ctx, t, name)
}

// Writes (kms.Tx).

func (t *Tx) kmsExec(ctx context.Context, what string, q string, args ...any) error {
	if _, err := t.Exec(ctx, q, args...); err != nil {
		return fmt.Errorf("%s: %w", what, kmsErr(err))
	}
	return nil
}

func (t *Tx) kmsExecOne(ctx context.Context, what string, q string, args ...any) error {
	res, err := t.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, kmsErr(err))
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%s: %w (%d rows, %v)", what, kms.ErrNoRecord, n, err)
	}
	return nil
}

func (t *Tx) InsertKMSKey(ctx context.Context, k kms.KeyRecord) error {
	return t.kmsExec(ctx, "insert kms key", `INSERT INTO kms_keys (`+kmsKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.Name, kmsNS(k.CreatedAt), k.CreatedBy, k.CurrentVersion, k.MinDecryptionVersion, kmsBool(k.Disabled), int64(k.RotationPeriod), k.MaxEncryptions)
}

func (t *Tx) UpdateKMSKey(ctx context.Context, k kms.KeyRecord) error {
	return t.kmsExecOne(ctx, "update kms key", `UPDATE kms_keys SET current_version = $2, min_decryption_version = $3, disabled = $4,
		rotation_period_ns = $5, max_encryptions = $6 WHERE name = $1`,
		k.Name, k.CurrentVersion, k.MinDecryptionVersion, kmsBool(k.Disabled), int64(k.RotationPeriod), k.MaxEncryptions)
}

func (t *Tx) InsertKMSKeyVersion(ctx context.Context, v kms.VersionRecord) error {
	return t.kmsExec(ctx, "insert kms key version", `INSERT INTO kms_key_versions (key_name, version, wrapped, created_at, encryptions, decryptions, destroyed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, v.KeyName, v.Version, v.Wrapped, kmsNS(v.CreatedAt), v.Encryptions, v.Decryptions, kmsNS(v.DestroyedAt))
}

func (t *Tx) AddKMSKeyUsage(ctx context.Context, name string, version int, encryptions, decryptions int64) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE kms_key_versions SET encryptions = encryptions + $3, decryptions = decryptions + $4
		WHERE key_name = $1 AND version = $2 AND destroyed_at = 0
		AND EXISTS (SELECT 1 FROM kms_keys k WHERE k.name = $1 AND k.disabled = 0 AND k.min_decryption_version <= $2)`,
		name, version, encryptions, decryptions)
	if err != nil {
		return false, fmt.Errorf("count kms key usage: %w", kmsErr(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("count kms key usage: %w", err)
	}
	return n == 1, nil
}

// DestroyKMSKeyVersion overwrites the sealed key in place (SQLite: with
// zeros of the same length, so the old bytes do not survive in the page's
// free space) and marks the version destroyed.
func (t *Tx) DestroyKMSKeyVersion(ctx context.Context, name string, version int, at time.Time) error {
	q := `UPDATE kms_key_versions SET wrapped = NULL, destroyed_at = $3 WHERE key_name = $1 AND version = $2`
	if t.dialect == SQLite {
		q = `UPDATE kms_key_versions SET wrapped = zeroblob(length(wrapped)), destroyed_at = $3 WHERE key_name = $1 AND version = $2`
	}
	return t.kmsExecOne(ctx, "destroy kms key version", q, name, version, kmsNS(at))
}

func (t *Tx) PutKMSSecret(ctx context.Context, s kms.SecretRecord) error {
	return t.kmsExec(ctx, "put kms secret", `INSERT INTO kms_secrets (`+kmsSecretCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (path) DO UPDATE SET key_name = excluded.key_name, critical = excluded.critical, current_version = excluded.current_version,
		updated_at = excluded.updated_at, deleted_at = excluded.deleted_at`,
		s.Path, s.KeyName, kmsBool(s.Critical), s.CurrentVersion, kmsNS(s.CreatedAt), kmsNS(s.UpdatedAt), kmsNS(s.DeletedAt))
}

func (t *Tx) InsertKMSSecretVersion(ctx context.Context, v kms.SecretVersionRecord) error {
	return t.kmsExec(ctx, "insert kms secret version", `INSERT INTO kms_secret_versions (path, version, ciphertext, created_at, created_by)
		VALUES ($1, $2, $3, $4, $5)`, v.Path, v.Version, v.Ciphertext, kmsNS(v.CreatedAt), v.CreatedBy)
}

func (t *Tx) DeleteKMSSecretVersions(ctx context.Context, path string) error {
	return t.kmsExec(ctx, "delete kms secret versions", `DELETE FROM kms_secret_versions WHERE path = $1`, path)
}

func (t *Tx) InsertKMSRequest(ctx context.Context, r kms.RequestRecord) error {
	return t.kmsExec(ctx, "insert kms request", `INSERT INTO kms_requests (`+kmsRequestCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		r.ID, r.Action, r.Subject, r.Content, r.Payload, r.Hash, r.RequestedBy, kmsNS(r.RequestedAt), kmsNS(r.ExpiresAt), r.State,
		r.ApprovedBy, kmsNS(r.ApprovedAt), kmsNS(r.ExecuteAfter), kmsNS(r.FinishedAt), r.Note)
}

func (t *Tx) UpdateKMSRequest(ctx context.Context, r kms.RequestRecord) error {
	return t.kmsExecOne(ctx, "update kms request", `UPDATE kms_requests SET state = $2, approved_by = $3, approved_at = $4,
		execute_after = $5, finished_at = $6, note = $7 WHERE id = $1`,
		r.ID, r.State, r.ApprovedBy, kmsNS(r.ApprovedAt), kmsNS(r.ExecuteAfter), kmsNS(r.FinishedAt), r.Note)
}

func (t *Tx) PutKMSMeta(ctx context.Context, name string, value []byte) error {
	return t.kmsExec(ctx, "put kms meta", `INSERT INTO kms_meta (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
}

var _ kms.Tx = (*Tx)(nil)
var _ kms.Store = kmsStore{}
