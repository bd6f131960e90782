package store

import (
	"context"

	"github.com/interlock-dev/interlock/internal/ops"
)

// OpsHostCertificate implements the ops store's host certificate reader.
func (s opsStore) OpsHostCertificate(ctx context.Context, hostID string) (ops.HostCertificate, error) {
	return opsHostCertificate(ctx, s.db, hostID)
}

// OpsHostCertificate implements the ops transaction's host certificate reader.
func (t *Tx) OpsHostCertificate(ctx context.Context, hostID string) (ops.HostCertificate, error) {
	return opsHostCertificate(ctx, t, hostID)
}

func opsHostCertificate(ctx context.Context, q opsQuerier, hostID string) (ops.HostCertificate, error) {
	c := ops.HostCertificate{HostID: hostID}
	var notAfter, issuedAt int64
	err := q.QueryRow(ctx, `SELECT fingerprint, previous, pem, not_after, issued_at FROM ops_host_certificates WHERE host_id = $1`, hostID).
		Scan(&c.Fingerprint, &c.Previous, &c.PEM, &notAfter, &issuedAt)
	if err != nil {
		return ops.HostCertificate{}, opsErr("load certificate of host "+hostID, err)
	}
	c.NotAfter, c.IssuedAt = opsTime(notAfter), opsTime(issuedAt)
	return c, nil
}

// PutHostCertificate makes c its host's one certificate. With replaces
// empty it overwrites whatever was pinned (an enrollment); otherwise it
// changes the row only if replaces is the pinned fingerprint, and fails
// with ops.ErrNotFound when it is not (another renewal won).
func (t *Tx) PutHostCertificate(ctx context.Context, c ops.HostCertificate, replaces string) error {
	if replaces == "" {
		// A host's first pin does not move the identity generation: no
		// server can hold anything about this certificate yet (it is
		// handed to the agent only after this commits), and the only
		// certificate of the host a cache could have taken as "not pinned
		// yet" is this one. Moving it would make every server forget every
		// host's pin once a second while a fleet enrolls, and read the
		// store again for each of their requests. Re-pinning (an agent
		// that enrolls again) changes what caches hold, so it moves it.
		res, err := t.Exec(ctx, `INSERT INTO ops_host_certificates (host_id, fingerprint, previous, pem, not_after, issued_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (host_id) DO NOTHING`,
			c.HostID, c.Fingerprint, c.Previous, c.PEM, opsNanos(c.NotAfter), opsNanos(c.IssuedAt))
		if err != nil {
			return opsErr("pin certificate of host "+c.HostID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return opsErr("pin certificate of host "+c.HostID, err)
		} else if n == 1 {
			return nil
		}
		if _, err := t.Exec(ctx, `UPDATE ops_host_certificates SET fingerprint = $1, previous = $2, pem = $3, not_after = $4, issued_at = $5
			WHERE host_id = $6`,
			c.Fingerprint, c.Previous, c.PEM, opsNanos(c.NotAfter), opsNanos(c.IssuedAt), c.HostID); err != nil {
			return opsErr("pin certificate of host "+c.HostID, err)
		}
		return t.bumpIdentityGeneration(ctx, "pin certificate of host "+c.HostID)
	}
	res, err := t.Exec(ctx, `UPDATE ops_host_certificates SET fingerprint = $1, previous = $2, pem = $3, not_after = $4, issued_at = $5
		WHERE host_id = $6 AND fingerprint = $7`,
		c.Fingerprint, c.Previous, c.PEM, opsNanos(c.NotAfter), opsNanos(c.IssuedAt), c.HostID, replaces)
	if err != nil {
		return opsErr("renew certificate of host "+c.HostID, err)
	}
	if err := expectOne(res, "renew certificate of host "+c.HostID); err != nil {
		return err
	}
	return t.bumpIdentityGeneration(ctx, "renew certificate of host "+c.HostID)
}
