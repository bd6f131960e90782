package store

import (
	"context"
	"time"

	"github.com/interlock-dev/interlock/internal/identity"
)

// Role grants and a person's invitations: what identity.Service needs to
// tell an independent approver from a sock puppet (migration 310).

func (r identityReads) InvitationsOfPerson(ctx context.Context, personID string) ([]identity.Invitation, error) {
	rows, err := r.q.Query(ctx, `SELECT id, person_id, code_hash, invited_by, created_at, expires_at, accepted_at
		FROM invitations WHERE person_id = $1 ORDER BY created_at, id`, personID)
	if err != nil {
		return nil, identityErr("list invitations of "+personID, err)
	}
	defer rows.Close()
	var out []identity.Invitation
	for rows.Next() {
		var inv identity.Invitation
		var created, expires, accepted int64
		if err := rows.Scan(&inv.ID, &inv.PersonID, &inv.CodeHash, &inv.InvitedBy, &created, &expires, &accepted); err != nil {
			return nil, identityErr("scan invitation", err)
		}
		inv.CreatedAt, inv.ExpiresAt, inv.AcceptedAt = identityTime(created), identityTime(expires), identityTime(accepted)
		out = append(out, inv)
	}
	return out, identityErr("list invitations of "+personID, rows.Err())
}

func (r identityReads) RoleGrantsOfPerson(ctx context.Context, personID string) ([]identity.RoleGrant, error) {
	rows, err := r.q.Query(ctx, `SELECT person_id, role, granted_by, granted_at, revoked_at
		FROM role_grants WHERE person_id = $1 ORDER BY granted_at, id`, personID)
	if err != nil {
		return nil, identityErr("list role grants of "+personID, err)
	}
	defer rows.Close()
	var out []identity.RoleGrant
	for rows.Next() {
		var g identity.RoleGrant
		var granted, revoked int64
		if err := rows.Scan(&g.PersonID, &g.Role, &g.GrantedBy, &granted, &revoked); err != nil {
			return nil, identityErr("scan role grant", err)
		}
		g.GrantedAt, g.RevokedAt = identityTime(granted), identityTime(revoked)
		out = append(out, g)
	}
	return out, identityErr("list role grants of "+personID, rows.Err())
}

func (t *Tx) InvitationsOfPerson(ctx context.Context, personID string) ([]identity.Invitation, error) {
	return identityReads{t}.InvitationsOfPerson(ctx, personID)
}

func (t *Tx) RoleGrantsOfPerson(ctx context.Context, personID string) ([]identity.RoleGrant, error) {
	return identityReads{t}.RoleGrantsOfPerson(ctx, personID)
}

func (t *Tx) ReplaceRoleGrants(ctx context.Context, personID string, at time.Time, grants []identity.RoleGrant) error {
	if _, err := t.Exec(ctx, `UPDATE role_grants SET revoked_at = $2 WHERE person_id = $1 AND revoked_at = 0`, personID, identityNanos(at)); err != nil {
		return identityErr("revoke role grants of "+personID, err)
	}
	for _, g := range grants {
		if _, err := t.Exec(ctx, `INSERT INTO role_grants (person_id, role, granted_by, granted_at) VALUES ($1, $2, $3, $4)`,
			personID, g.Role, g.GrantedBy, identityNanos(g.GrantedAt)); err != nil {
			return identityErr("insert role grant of "+personID, err)
		}
	}
	return nil
}
