package store

import (
	"context"
	"time"

	"github.com/interlock-dev/interlock/internal/identity"
)

var _ identity.RecoveryTx = (*Tx)(nil)

// ReplaceRecoveryCodes implements identity.RecoveryTx.
func (t *Tx) ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, at time.Time) error {
	if _, err := t.Exec(ctx, `DELETE FROM recovery_codes WHERE person_id = $1`, personID); err != nil {
		return identityErr("delete recovery codes", err)
	}
	for _, h := range hashes {
		if _, err := t.Exec(ctx, `INSERT INTO recovery_codes (person_id, code_hash, created_at) VALUES ($1, $2, $3)`, personID, h, identityNanos(at)); err != nil {
			return identityErr("insert recovery code", err)
		}
	}
	return nil
}

// UseRecoveryCode implements identity.RecoveryTx: one conditional write.
func (t *Tx) UseRecoveryCode(ctx context.Context, personID string, hash []byte, at time.Time) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE recovery_codes SET used_at = $3 WHERE person_id = $1 AND code_hash = $2 AND used_at = 0`, personID, hash, identityNanos(at))
	if err != nil {
		return false, identityErr("use recovery code", err)
	}
	n, err := res.RowsAffected()
	return n == 1, identityErr("use recovery code", err)
}

// UnusedRecoveryCodes implements identity.RecoveryTx.
func (t *Tx) UnusedRecoveryCodes(ctx context.Context, personID string) (int, error) {
	var n int
	err := t.QueryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE person_id = $1 AND used_at = 0`, personID).Scan(&n)
	return n, identityErr("count recovery codes", err)
}

// InsertCredentialReset implements identity.RecoveryTx.
func (t *Tx) InsertCredentialReset(ctx context.Context, r identity.CredentialReset) error {
	_, err := t.Exec(ctx, `INSERT INTO credential_resets (id, person_id, code_hash, what, issued_by, change_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		r.ID, r.PersonID, r.CodeHash, r.What, r.IssuedBy, r.ChangeID, identityNanos(r.CreatedAt), identityNanos(r.ExpiresAt))
	return identityErr("insert credential reset", err)
}

// CredentialResetByCodeHash implements identity.RecoveryTx.
func (t *Tx) CredentialResetByCodeHash(ctx context.Context, hash []byte) (identity.CredentialReset, error) {
	var r identity.CredentialReset
	var created, expires, used int64
	err := t.QueryRow(ctx, `SELECT id, person_id, code_hash, what, issued_by, change_id, created_at, expires_at, used_at
		FROM credential_resets WHERE code_hash = $1`, hash).
		Scan(&r.ID, &r.PersonID, &r.CodeHash, &r.What, &r.IssuedBy, &r.ChangeID, &created, &expires, &used)
	if err != nil {
		return identity.CredentialReset{}, identityErr("load credential reset", err)
	}
	r.CreatedAt, r.ExpiresAt, r.UsedAt = identityTime(created), identityTime(expires), identityTime(used)
	return r, nil
}

// UseCredentialReset implements identity.RecoveryTx.
func (t *Tx) UseCredentialReset(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE credential_resets SET used_at = $2 WHERE id = $1 AND used_at = 0`, id, identityNanos(at))
	if err != nil {
		return false, identityErr("use credential reset", err)
	}
	n, err := res.RowsAffected()
	return n == 1, identityErr("use credential reset", err)
}

// CredentialResetsOfPerson lists the credential resets issued for
// personID, used or not (identity's independence check reads who issued
// them).
func (r identityReads) CredentialResetsOfPerson(ctx context.Context, personID string) ([]identity.CredentialReset, error) {
	rows, err := r.q.Query(ctx, `SELECT id, person_id, what, issued_by, change_id, created_at, expires_at, used_at
		FROM credential_resets WHERE person_id = $1 ORDER BY created_at, id`, personID)
	if err != nil {
		return nil, identityErr("list credential resets of "+personID, err)
	}
	defer rows.Close()
	var out []identity.CredentialReset
	for rows.Next() {
		var c identity.CredentialReset
		var created, expires, used int64
		if err := rows.Scan(&c.ID, &c.PersonID, &c.What, &c.IssuedBy, &c.ChangeID, &created, &expires, &used); err != nil {
			return nil, identityErr("scan credential reset", err)
		}
		c.CreatedAt, c.ExpiresAt, c.UsedAt = identityTime(created), identityTime(expires), identityTime(used)
		out = append(out, c)
	}
	return out, identityErr("list credential resets of "+personID, rows.Err())
}
