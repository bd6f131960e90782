package identity

import (
	"context"
	"fmt"
	"slices"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// RemoveStandingRole takes role away from personID, as an access review's
// "revoke" does: taking access away only tightens, so it applies at once.
// Nobody removes a role from themselves (the last admin cannot lock
// everyone out by accident), and a person keeps at least one role. The
// grants of the roles that stay keep who gave them and when.
func (s *Service) RemoveStandingRole(ctx context.Context, by wire.Principal, personID, role, reviewLine string) error {
	now := s.now()
	return s.store.InTx(ctx, func(tx Tx) error {
		p, err := tx.PersonByID(ctx, personID)
		if s.store.IsNotFound(err) {
			return usererr.New(usererr.NotFound, "user_not_found", "There is no person %s.", personID)
		} else if err != nil {
			return fmt.Errorf("load person: %w", err)
		}
		if !slices.Contains(p.Roles, role) {
			return usererr.New(usererr.Conflict, "role_not_held", "%s no longer holds %s.", p.Username, role)
		}
		if p.ID == by.ID {
			return usererr.New(usererr.Forbidden, "cannot_revoke_self", "You cannot take a role from yourself in a review; another admin must.")
		}
		rest := slices.DeleteFunc(slices.Clone(p.Roles), func(r string) bool { return r == role })
		if len(rest) == 0 {
			return usererr.New(usererr.Invalid, "last_role", "%s holds only %s; disable the account instead (interlock user disable %s).", p.Username, role, p.Username)
		}
		grants, err := tx.RoleGrantsOfPerson(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("read role grants: %w", err)
		}
		var keep []RoleGrant
		for _, g := range grants {
			if g.RevokedAt.IsZero() && slices.Contains(rest, g.Role) {
				keep = append(keep, RoleGrant{PersonID: p.ID, Role: g.Role, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt})
			}
		}
		if err := tx.SetPersonRoles(ctx, p.ID, rest); err != nil {
			return fmt.Errorf("set roles: %w", err)
		}
		if err := tx.ReplaceRoleGrants(ctx, p.ID, now, keep); err != nil {
			return fmt.Errorf("record role grants: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.role_removed", Actor: by.Actor(), Subject: personSubject(p.ID), Time: now,
			Data:     map[string]any{"role": role, "roles": rest, "review_line": reviewLine},
			Personal: map[string]string{"username": p.Username}})
	})
}
