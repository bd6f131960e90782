package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/identity"
)

// IdentityStore returns the adapter that satisfies identity.Store.
func (db *DB) IdentityStore() identity.Store { return identityStore{identityReads{db}, db} }

type identityStore struct {
	identityReads
	db *DB
}

func (s identityStore) InTx(ctx context.Context, fn func(identity.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

func (identityStore) IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

var _ identity.Tx = (*Tx)(nil)

type identityQuerier interface {
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

// identityReads implements identity.Reader on a DB or a Tx.
type identityReads struct{ q identityQuerier }

func identityNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func identityTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func identityRoles(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func identityErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, mapErr(err))
}

const identityPersonCols = `id, username, roles, status, password_sealed, totp_sealed, totp_last_step, created_at`

func scanIdentityPerson(sc interface{ Scan(...any) error }) (identity.Person, error) {
	var p identity.Person
	var roles string
	var created int64
	if err := sc.Scan(&p.ID, &p.Username, &roles, &p.Status, &p.PasswordSealed, &p.TOTPSealed, &p.TOTPLastStep, &created); err != nil {
		return identity.Person{}, err
	}
	p.Roles = identityRoles(roles)
	p.CreatedAt = identityTime(created)
	return p, nil
}

func (r identityReads) CountPersons(ctx context.Context) (int, error) {
	var n int
	err := r.q.QueryRow(ctx, `SELECT COUNT(*) FROM persons`).Scan(&n)
	return n, identityErr("count persons", err)
}

func (r identityReads) PersonByID(ctx context.Context, id string) (identity.Person, error) {
	p, err := scanIdentityPerson(r.q.QueryRow(ctx, `SELECT `+identityPersonCols+` FROM persons WHERE id = $1`, id))
	return p, identityErr("load person "+id, err)
}

func (r identityReads) PersonByUsername(ctx context.Context, username string) (identity.Person, error) {
	p, err := scanIdentityPerson(r.q.QueryRow(ctx, `SELECT `+identityPersonCols+` FROM persons WHERE username = $1`, username))
	return p, identityErr("load person by username", err)
}

func (r identityReads) ListPersons(ctx context.Context) ([]identity.Person, error) {
	rows, err := r.q.Query(ctx, `SELECT `+identityPersonCols+` FROM persons ORDER BY username`)
	if err != nil {
		return nil, identityErr("list persons", err)
	}
	defer rows.Close()
	var out []identity.Person
	for rows.Next() {
		p, err := scanIdentityPerson(rows)
		if err != nil {
			return nil, identityErr("scan person", err)
		}
		out = append(out, p)
	}
	return out, identityErr("list persons", rows.Err())
}

const identityDeviceCols = `id, person_id, jkt, public_jwk, name, created_at, last_used_at, revoked_at`

func scanIdentityDevice(sc interface{ Scan(...any) error }) (identity.Device, error) {
	var d identity.Device
	var created, used, revoked int64
	if err := sc.Scan(&d.ID, &d.PersonID, &d.JKT, &d.PublicJWK, &d.Name, &created, &used, &revoked); err != nil {
		return identity.Device{}, err
	}
	d.CreatedAt, d.LastUsed, d.RevokedAt = identityTime(created), identityTime(used), identityTime(revoked)
	return d, nil
}

func (r identityReads) DeviceByID(ctx context.Context, id string) (identity.Device, error) {
	d, err := scanIdentityDevice(r.q.QueryRow(ctx, `SELECT `+identityDeviceCols+` FROM devices WHERE id = $1`, id))
	return d, identityErr("load device "+id, err)
}

func (r identityReads) DeviceByJKT(ctx context.Context, jkt string) (identity.Device, error) {
	d, err := scanIdentityDevice(r.q.QueryRow(ctx, `SELECT `+identityDeviceCols+` FROM devices WHERE jkt = $1`, jkt))
	return d, identityErr("load device by key", err)
}

func (r identityReads) ListDevices(ctx context.Context, personID string) ([]identity.Device, error) {
	rows, err := r.q.Query(ctx, `SELECT `+identityDeviceCols+` FROM devices WHERE $1 = '' OR person_id = $1 ORDER BY created_at, id`, personID)
	if err != nil {
		return nil, identityErr("list devices", err)
	}
	defer rows.Close()
	var out []identity.Device
	for rows.Next() {
		d, err := scanIdentityDevice(rows)
		if err != nil {
			return nil, identityErr("scan device", err)
		}
		out = append(out, d)
	}
	return out, identityErr("list devices", rows.Err())
}

func (r identityReads) LoginSessionByTokenHash(ctx context.Context, tokenHash []byte) (identity.SessionView, error) {
	var v identity.SessionView
	var s = &v.Session
	var created, expires, mfa, revoked int64
	var roles string
	var pCreated, dCreated, dUsed, dRevoked int64
	err := r.q.QueryRow(ctx, `SELECT s.id, s.token_hash, s.person_id, s.device_id, s.created_at, s.expires_at, s.mfa_at, s.revoked_at,
			d.id, d.person_id, d.jkt, d.public_jwk, d.name, d.created_at, d.last_used_at, d.revoked_at,
			p.id, p.username, p.roles, p.status, p.totp_last_step, p.created_at
		FROM login_sessions s JOIN devices d ON d.id = s.device_id JOIN persons p ON p.id = s.person_id
		WHERE s.token_hash = $1`, tokenHash).Scan(
		&s.ID, &s.TokenHash, &s.PersonID, &s.DeviceID, &created, &expires, &mfa, &revoked,
		&v.Device.ID, &v.Device.PersonID, &v.Device.JKT, &v.Device.PublicJWK, &v.Device.Name, &dCreated, &dUsed, &dRevoked,
		&v.Person.ID, &v.Person.Username, &roles, &v.Person.Status, &v.Person.TOTPLastStep, &pCreated)
	if err != nil {
		return identity.SessionView{}, identityErr("load session", err)
	}
	s.CreatedAt, s.ExpiresAt, s.MFAAt, s.RevokedAt = identityTime(created), identityTime(expires), identityTime(mfa), identityTime(revoked)
	v.Device.CreatedAt, v.Device.LastUsed, v.Device.RevokedAt = identityTime(dCreated), identityTime(dUsed), identityTime(dRevoked)
	v.Person.Roles, v.Person.CreatedAt = identityRoles(roles), identityTime(pCreated)
	return v, nil
}

func (r identityReads) BootstrapCodeByHash(ctx context.Context, codeHash []byte) (identity.BootstrapCode, error) {
	c := identity.BootstrapCode{}
	var created, expires, used int64
	err := r.q.QueryRow(ctx, `SELECT code_hash, created_at, expires_at, used_at FROM bootstrap_codes WHERE code_hash = $1`, codeHash).
		Scan(&c.CodeHash, &created, &expires, &used)
	if err != nil {
		return identity.BootstrapCode{}, identityErr("load bootstrap code", err)
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = identityTime(created), identityTime(expires), identityTime(used)
	return c, nil
}

func (r identityReads) InvitationByCodeHash(ctx context.Context, codeHash []byte) (identity.Invitation, error) {
	var inv identity.Invitation
	var created, expires, accepted int64
	err := r.q.QueryRow(ctx, `SELECT id, person_id, code_hash, invited_by, created_at, expires_at, accepted_at
		FROM invitations WHERE code_hash = $1`, codeHash).
		Scan(&inv.ID, &inv.PersonID, &inv.CodeHash, &inv.InvitedBy, &created, &expires, &accepted)
	if err != nil {
		return identity.Invitation{}, identityErr("load invitation", err)
	}
	inv.CreatedAt, inv.ExpiresAt, inv.AcceptedAt = identityTime(created), identityTime(expires), identityTime(accepted)
	return inv, nil
}

func (r identityReads) LoginFailuresSince(ctx context.Context, username string, since time.Time) ([]time.Time, error) {
	rows, err := r.q.Query(ctx, `SELECT at FROM login_failures WHERE username = $1 AND at >= $2 ORDER BY at, id`, username, since.UnixNano())
	if err != nil {
		return nil, identityErr("list login failures", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var at int64
		if err := rows.Scan(&at); err != nil {
			return nil, identityErr("scan login failure", err)
		}
		out = append(out, identityTime(at))
	}
	return out, identityErr("list login failures", rows.Err())
}

// The reads inside a transaction.

func (t *Tx) CountPersons(ctx context.Context) (int, error) {
	return identityReads{t}.CountPersons(ctx)
}
func (t *Tx) PersonByID(ctx context.Context, id string) (identity.Person, error) {
	return identityReads{t}.PersonByID(ctx, id)
}
func (t *Tx) PersonByUsername(ctx context.Context, username string) (identity.Person, error) {
	return identityReads{t}.PersonByUsername(ctx, username)
}
func (t *Tx) ListPersons(ctx context.Context) ([]identity.Person, error) {
	return identityReads{t}.ListPersons(ctx)
}
func (t *Tx) DeviceByID(ctx context.Context, id string) (identity.Device, error) {
	return identityReads{t}.DeviceByID(ctx, id)
}
func (t *Tx) DeviceByJKT(ctx context.Context, jkt string) (identity.Device, error) {
	return identityReads{t}.DeviceByJKT(ctx, jkt)
}
func (t *Tx) ListDevices(ctx context.Context, personID string) ([]identity.Device, error) {
	return identityReads{t}.ListDevices(ctx, personID)
}
func (t *Tx) LoginSessionByTokenHash(ctx context.Context, h []byte) (identity.SessionView, error) {
	return identityReads{t}.LoginSessionByTokenHash(ctx, h)
}
func (t *Tx) BootstrapCodeByHash(ctx context.Context, h []byte) (identity.BootstrapCode, error) {
	return identityReads{t}.BootstrapCodeByHash(ctx, h)
}
func (t *Tx) InvitationByCodeHash(ctx context.Context, h []byte) (identity.Invitation, error) {
	return identityReads{t}.InvitationByCodeHash(ctx, h)
}
func (t *Tx) LoginFailuresSince(ctx context.Context, username string, since time.Time) ([]time.Time, error) {
	return identityReads{t}.LoginFailuresSince(ctx, username, since)
}

// The writes.

func identityOne(res sql.Result, err error, what string) error {
	if err != nil {
		return identityErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return identityErr(what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

func identityChanged(res sql.Result, err error, what string) (bool, error) {
	if err != nil {
		return false, identityErr(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, identityErr(what, err)
	}
	return n > 0, nil
}

func (t *Tx) InsertPerson(ctx context.Context, p identity.Person) error {
	_, err := t.Exec(ctx, `INSERT INTO persons (`+identityPersonCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		p.ID, p.Username, strings.Join(p.Roles, ","), p.Status, p.PasswordSealed, p.TOTPSealed, p.TOTPLastStep, identityNanos(p.CreatedAt))
	return identityErr("insert person", err)
}

func (t *Tx) SetPersonCredentials(ctx context.Context, personID string, passwordSealed, totpSealed []byte, status string) error {
	res, err := t.Exec(ctx, `UPDATE persons SET password_sealed = $2, totp_sealed = $3, totp_last_step = 0, status = $4 WHERE id = $1`,
		personID, passwordSealed, totpSealed, status)
	return identityOne(res, err, "set credentials of "+personID)
}

func (t *Tx) SetPersonStatus(ctx context.Context, personID, status string) error {
	res, err := t.Exec(ctx, `UPDATE persons SET status = $2 WHERE id = $1`, personID, status)
	return identityOne(res, err, "set status of "+personID)
}

func (t *Tx) SetPersonRoles(ctx context.Context, personID string, roles []string) error {
	res, err := t.Exec(ctx, `UPDATE persons SET roles = $2 WHERE id = $1`, personID, strings.Join(roles, ","))
	return identityOne(res, err, "set roles of "+personID)
}

func (t *Tx) AdvancePersonTOTPStep(ctx context.Context, personID string, step int64) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE persons SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2`, personID, step)
	return identityChanged(res, err, "advance totp step of "+personID)
}

func (t *Tx) ReplaceBootstrapCode(ctx context.Context, c identity.BootstrapCode) error {
	if _, err := t.Exec(ctx, `DELETE FROM bootstrap_codes`); err != nil {
		return identityErr("delete bootstrap codes", err)
	}
	_, err := t.Exec(ctx, `INSERT INTO bootstrap_codes (code_hash, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4)`,
		c.CodeHash, identityNanos(c.CreatedAt), identityNanos(c.ExpiresAt), identityNanos(c.UsedAt))
	return identityErr("insert bootstrap code", err)
}

func (t *Tx) UseBootstrapCode(ctx context.Context, codeHash []byte, at time.Time) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE bootstrap_codes SET used_at = $2 WHERE code_hash = $1 AND used_at = 0`, codeHash, identityNanos(at))
	return identityChanged(res, err, "use bootstrap code")
}

func (t *Tx) ReplaceInvitation(ctx context.Context, inv identity.Invitation) error {
	if _, err := t.Exec(ctx, `DELETE FROM invitations WHERE person_id = $1 AND accepted_at = 0`, inv.PersonID); err != nil {
		return identityErr("delete earlier invitations", err)
	}
	_, err := t.Exec(ctx, `INSERT INTO invitations (id, person_id, code_hash, invited_by, created_at, expires_at, accepted_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, inv.ID, inv.PersonID, inv.CodeHash, inv.InvitedBy,
		identityNanos(inv.CreatedAt), identityNanos(inv.ExpiresAt), identityNanos(inv.AcceptedAt))
	return identityErr("insert invitation", err)
}

func (t *Tx) AcceptInvitation(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := t.Exec(ctx, `UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at = 0`, id, identityNanos(at))
	return identityChanged(res, err, "accept invitation "+id)
}

func (t *Tx) InsertDevice(ctx context.Context, d identity.Device) error {
	_, err := t.Exec(ctx, `INSERT INTO devices (`+identityDeviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		d.ID, d.PersonID, d.JKT, d.PublicJWK, d.Name, identityNanos(d.CreatedAt), identityNanos(d.LastUsed), identityNanos(d.RevokedAt))
	return identityErr("insert device", err)
}

func (t *Tx) RevokeDevice(ctx context.Context, id string, at time.Time) error {
	res, err := t.Exec(ctx, `UPDATE devices SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0`, id, identityNanos(at))
	if _, err := identityChanged(res, err, "revoke device "+id); err != nil {
		return err
	}
	_, err = t.Exec(ctx, `UPDATE login_sessions SET revoked_at = $2 WHERE device_id = $1 AND revoked_at = 0`, id, identityNanos(at))
	return identityErr("revoke sessions of device "+id, err)
}

func (t *Tx) TouchDevice(ctx context.Context, id string, at time.Time) error {
	res, err := t.Exec(ctx, `UPDATE devices SET last_used_at = $2 WHERE id = $1`, id, identityNanos(at))
	return identityOne(res, err, "touch device "+id)
}

func (t *Tx) InsertLoginSession(ctx context.Context, s identity.LoginSession) error {
	_, err := t.Exec(ctx, `INSERT INTO login_sessions (id, token_hash, person_id, device_id, created_at, expires_at, mfa_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, s.ID, s.TokenHash, s.PersonID, s.DeviceID,
		identityNanos(s.CreatedAt), identityNanos(s.ExpiresAt), identityNanos(s.MFAAt), identityNanos(s.RevokedAt))
	return identityErr("insert session", err)
}

func (t *Tx) RevokeLoginSession(ctx context.Context, id string, at time.Time) error {
	_, err := t.Exec(ctx, `UPDATE login_sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0`, id, identityNanos(at))
	return identityErr("revoke session "+id, err)
}

func (t *Tx) RevokePersonLoginSessions(ctx context.Context, personID string, at time.Time) error {
	_, err := t.Exec(ctx, `UPDATE login_sessions SET revoked_at = $2 WHERE person_id = $1 AND revoked_at = 0`, personID, identityNanos(at))
	return identityErr("revoke sessions of "+personID, err)
}

func (t *Tx) SetLoginSessionMFA(ctx context.Context, id string, at time.Time) error {
	res, err := t.Exec(ctx, `UPDATE login_sessions SET mfa_at = $2 WHERE id = $1`, id, identityNanos(at))
	return identityOne(res, err, "set mfa time of session "+id)
}

func (t *Tx) InsertLoginFailure(ctx context.Context, username string, at time.Time) error {
	_, err := t.Exec(ctx, `INSERT INTO login_failures (username, at) VALUES ($1, $2)`, username, identityNanos(at))
	return identityErr("insert login failure", err)
}

// ReserveLoginAttempt implements identity.Tx. On PostgreSQL a transaction
// advisory lock on the username makes count-then-insert atomic across
// servers; SQLite transactions are already serialized (BEGIN IMMEDIATE).
func (t *Tx) ReserveLoginAttempt(ctx context.Context, username string, since, now time.Time, max int) (bool, error) {
	if t.dialect == Postgres {
		if _, err := t.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "interlock-login:"+username); err != nil {
			return false, identityErr("lock login attempts of "+username, err)
		}
	}
	var n int
	if err := t.QueryRow(ctx, `SELECT COUNT(*) FROM login_failures WHERE username = $1 AND at >= $2`, username, since.UnixNano()).Scan(&n); err != nil {
		return false, identityErr("count login failures", err)
	}
	if n >= max {
		return false, nil
	}
	if err := t.InsertLoginFailure(ctx, username, now); err != nil {
		return false, err
	}
	return true, nil
}

func (t *Tx) DeleteLoginFailures(ctx context.Context, username string, before time.Time) error {
	_, err := t.Exec(ctx, `DELETE FROM login_failures WHERE username = $1 OR at < $2`, username, before.UnixNano())
	return identityErr("delete login failures", err)
}
