package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// EnableUser lets a disabled person sign in again (their sessions stay
// ended: they sign in anew). Enabling an active person changes nothing.
// internal/change decides whether it needs another person's approval.
func (s *Service) EnableUser(ctx context.Context, by wire.Principal, username string) error {
	return s.store.InTx(ctx, func(tx Tx) error { return s.EnableUserIn(ctx, tx, by, username) })
}

// EnableUserIn is EnableUser inside the caller's transaction (an approved
// change request commits with it).
func (s *Service) EnableUserIn(ctx context.Context, tx Tx, by wire.Principal, username string) error {
	p, err := s.personNamed(ctx, tx, username)
	if err != nil {
		return err
	}
	switch p.Status {
	case StatusActive:
		return nil
	case StatusInvited:
		return usererr.New(usererr.Conflict, "user_not_enrolled", "%s has not accepted their invitation yet; there is nothing to enable.", username)
	}
	if p.ID == by.ID {
		return usererr.New(usererr.Forbidden, "cannot_enable_self", "You cannot enable your own account.")
	}
	if err := tx.SetPersonStatus(ctx, p.ID, StatusActive); err != nil {
		return fmt.Errorf("enable person: %w", err)
	}
	return appendAudit(ctx, tx, audit.Entry{Kind: "identity.user_enabled", Actor: by.Actor(), Subject: personSubject(p.ID), Time: s.now(),
		Data: map[string]any{"previous_status": p.Status, "roles": canonicalRoles(p.Roles)}, Personal: map[string]string{"username": username}})
}

// SetUserRoles gives username exactly roles. internal/change decides
// whether it needs another person's approval (adding approver or admin
// once two admins exist).
func (s *Service) SetUserRoles(ctx context.Context, by wire.Principal, username string, roles []string) error {
	return s.store.InTx(ctx, func(tx Tx) error { return s.SetUserRolesIn(ctx, tx, by, username, roles) })
}

// CheckRoles returns roles in canonical order, or a sentence saying why
// they cannot be anyone's roles.
func CheckRoles(roles []string) ([]string, error) {
	for _, r := range roles {
		if !validRole(r) {
			return nil, usererr.New(usererr.Invalid, "invalid_role", "Role %q does not exist; use one or more of %s.", r, strings.Join(Roles, ", "))
		}
	}
	out := canonicalRoles(roles)
	if len(out) == 0 {
		return nil, usererr.New(usererr.Invalid, "no_roles", "A person needs at least one role; to stop someone acting, disable them (interlock user disable).")
	}
	return out, nil
}

// SetUserRolesIn is SetUserRoles inside the caller's transaction. Roles
// the person keeps keep their grant (who gave it, and when); new ones are
// recorded as granted by by. Refused with a sentence: your own roles, a
// person whose roles come from an identity provider, a person not yet
// enrolled, and taking admin from the last active admin.
func (s *Service) SetUserRolesIn(ctx context.Context, tx Tx, by wire.Principal, username string, roles []string) error {
	roles, err := CheckRoles(roles)
	if err != nil {
		return err
	}
	p, err := s.personNamed(ctx, tx, username)
	if err != nil {
		return err
	}
	if err := s.CheckRolesSettable(ctx, tx, by, p); err != nil {
		return err
	}
	old := canonicalRoles(p.Roles)
	if slices.Equal(old, roles) {
		return nil
	}
	if slices.Contains(old, RoleAdmin) && !slices.Contains(roles, RoleAdmin) && p.Status == StatusActive {
		ps, err := tx.ListPersons(ctx)
		if err != nil {
			return fmt.Errorf("list persons: %w", err)
		}
		others := 0
		for _, o := range ps {
			if o.ID != p.ID && o.Status == StatusActive && slices.Contains(o.Roles, RoleAdmin) {
				others++
			}
		}
		if others == 0 {
			return usererr.New(usererr.Conflict, "last_admin", "%s is the last active admin; taking admin from them would leave nobody to manage Interlock.", username)
		}
	}
	grants, err := tx.RoleGrantsOfPerson(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("load role grants: %w", err)
	}
	now := s.now()
	var next []RoleGrant
	for _, r := range roles {
		g := RoleGrant{PersonID: p.ID, Role: r, GrantedBy: by.Actor(), GrantedAt: now}
		for _, cur := range grants {
			if cur.Role == r && cur.RevokedAt.IsZero() {
				g = cur // kept: who granted it, and when, stays true
			}
		}
		next = append(next, g)
	}
	if err := tx.SetPersonRoles(ctx, p.ID, roles); err != nil {
		return fmt.Errorf("set roles: %w", err)
	}
	if err := tx.ReplaceRoleGrants(ctx, p.ID, now, next); err != nil {
		return fmt.Errorf("record role grants: %w", err)
	}
	return appendAudit(ctx, tx, audit.Entry{Kind: "identity.roles_set", Actor: by.Actor(), Subject: personSubject(p.ID), Time: now,
		Data: map[string]any{"previous_roles": old, "roles": roles}, Personal: map[string]string{"username": username}})
}

// CheckRolesSettable refuses setting p's roles by by: their own, a person
// not yet enrolled, or one whose roles follow an identity provider.
func (s *Service) CheckRolesSettable(ctx context.Context, tx Tx, by wire.Principal, p Person) error {
	if p.ID == by.ID {
		return usererr.New(usererr.Forbidden, "cannot_set_own_roles", "You cannot change your own roles; ask another admin.")
	}
	if p.Status == StatusInvited {
		return usererr.New(usererr.Conflict, "user_not_enrolled", "%s has not accepted their invitation yet; invite them again with the role they need.", p.Username)
	}
	iss, err := s.ssoIssuerOf(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	if iss != "" {
		return usererr.New(usererr.Conflict, "roles_from_idp",
			"%s signs in through %s and their roles follow its groups (the role_rules of serve's sso config); change their groups there.", p.Username, iss)
	}
	return nil
}

// PersonForRoles loads username and checks that by may set their roles.
func (s *Service) PersonForRoles(ctx context.Context, by wire.Principal, username string) (Person, error) {
	var p Person
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		if p, err = s.personNamed(ctx, tx, username); err != nil {
			return err
		}
		return s.CheckRolesSettable(ctx, tx, by, p)
	})
	return p, err
}

func (s *Service) personNamed(ctx context.Context, tx Tx, username string) (Person, error) {
	p, err := tx.PersonByUsername(ctx, username)
	if s.store.IsNotFound(err) {
		return Person{}, usererr.New(usererr.NotFound, "user_not_found", "There is no user %s.", username)
	} else if err != nil {
		return Person{}, fmt.Errorf("load person: %w", err)
	}
	return p, nil
}
