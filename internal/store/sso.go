package store

import (
	"context"
	"errors"
	"time"

	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/sso"
)

var (
	_ identity.SSOTx = (*Tx)(nil)
	_ sso.Tx         = (*Tx)(nil)
)

// PersonIDBySSO implements identity.SSOTx.
func (t *Tx) PersonIDBySSO(ctx context.Context, issuer, subject string) (string, error) {
	var id string
	err := t.QueryRow(ctx, `SELECT person_id FROM sso_identities WHERE issuer = $1 AND subject = $2`, issuer, subject).Scan(&id)
	return id, identityErr("look up sso identity", err)
}

// InsertSSOIdentity implements identity.SSOTx.
func (t *Tx) InsertSSOIdentity(ctx context.Context, issuer, subject, personID string, at time.Time) error {
	_, err := t.Exec(ctx, `INSERT INTO sso_identities (issuer, subject, person_id, created_at) VALUES ($1, $2, $3, $4)`,
		issuer, subject, personID, identityNanos(at))
	return identityErr("insert sso identity", err)
}

// SSOIssuerOfPerson implements identity.SSOTx.
func (t *Tx) SSOIssuerOfPerson(ctx context.Context, personID string) (string, error) {
	var iss string
	err := t.QueryRow(ctx, `SELECT issuer FROM sso_identities WHERE person_id = $1`, personID).Scan(&iss)
	if errors.Is(mapErr(err), ErrNotFound) {
		return "", nil
	}
	return iss, identityErr("look up sso issuer", err)
}

// SSOStore returns the adapter that satisfies sso.Store.
func (db *DB) SSOStore() sso.Store { return ssoStore{db} }

type ssoStore struct{ db *DB }

func (s ssoStore) InTx(ctx context.Context, fn func(sso.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

func (ssoStore) IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// InsertSSOLogin implements sso.Tx. It also forgets sign-ins that expired
// more than a day ago (housekeeping).
func (t *Tx) InsertSSOLogin(ctx context.Context, l sso.PendingLogin) error {
	if _, err := t.Exec(ctx, `DELETE FROM sso_logins WHERE expires_at < $1`, identityNanos(l.CreatedAt.Add(-24*time.Hour))); err != nil {
		return identityErr("prune sso logins", err)
	}
	_, err := t.Exec(ctx, `INSERT INTO sso_logins (id, state_hash, issuer_name, jkt, redirect_uri, nonce_hash, verifier_sealed, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		l.ID, l.StateHash, l.IssuerName, l.JKT, l.RedirectURI, l.NonceHash, l.VerifierSealed, identityNanos(l.CreatedAt), identityNanos(l.ExpiresAt))
	return identityErr("insert sso login", err)
}

// SSOLoginByStateHash implements sso.Tx.
func (t *Tx) SSOLoginByStateHash(ctx context.Context, stateHash []byte) (sso.PendingLogin, error) {
	var l sso.PendingLogin
	var created, expires, used int64
	err := t.QueryRow(ctx, `SELECT id, state_hash, issuer_name, jkt, redirect_uri, nonce_hash, verifier_sealed, created_at, expires_at, used_at
		FROM sso_logins WHERE state_hash = $1`, stateHash).
		Scan(&l.ID, &l.StateHash, &l.IssuerName, &l.JKT, &l.RedirectURI, &l.NonceHash, &l.VerifierSealed, &created, &expires, &used)
	if err != nil {
		return sso.PendingLogin{}, identityErr("load sso login", err)
	}
	l.CreatedAt, l.ExpiresAt, l.UsedAt = identityTime(created), identityTime(expires), identityTime(used)
	return l, nil
}

// UseSSOLogin implements sso.Tx: one conditional write, so that two
// servers cannot both complete one sign-in.
func (t *Tx) UseSSOLogin(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE sso_logins SET used_at = $2 WHERE id = $1 AND used_at = 0`, id, identityNanos(at))
	if err != nil {
		return false, identityErr("use sso login", err)
	}
	n, err := res.RowsAffected()
	return n == 1, identityErr("use sso login", err)
}
