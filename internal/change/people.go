package change

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Enabling a person and setting their roles (`interlock user enable`,
// `user set-roles`): tightening applies at once; what grants approver or
// admin — a role added, or a disabled approver or admin enabled — is a
// change request once two admins exist, as an invitation is.
const (
	KindEnable Kind = "user.enable" // Target: username; Content: "active"; Base: the status before
	KindRoles  Kind = "user.roles"  // Target: username; Content and Base: the roles after and before, comma-separated
)

// PeopleAdmin is what enabling and setting roles need of identity;
// *identity.Service implements it.
type PeopleAdmin interface {
	EnableUser(ctx context.Context, by wire.Principal, username string) error
	EnableUserIn(ctx context.Context, tx identity.Tx, by wire.Principal, username string) error
	SetUserRoles(ctx context.Context, by wire.Principal, username string, roles []string) error
	SetUserRolesIn(ctx context.Context, tx identity.Tx, by wire.Principal, username string, roles []string) error
	PersonForRoles(ctx context.Context, by wire.Principal, username string) (identity.Person, error)
}

func (s *Service) peopleAdmin() (PeopleAdmin, error) {
	p, ok := s.cfg.People.(PeopleAdmin)
	if !ok {
		return nil, fmt.Errorf("change: People does not implement enabling and setting roles")
	}
	return p, nil
}

func privileged(roles []string) bool {
	return slices.Contains(roles, identity.RoleApprover) || slices.Contains(roles, identity.RoleAdmin)
}

// Enable enables a disabled person: at once, unless they hold approver or
// admin and two admins exist (then a change request).
func (s *Service) Enable(ctx context.Context, by wire.Principal, username string) (Outcome, error) {
	pa, err := s.peopleAdmin()
	if err != nil {
		return Outcome{}, err
	}
	users, err := s.cfg.People.ListUsers(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("list users: %w", err)
	}
	i := slices.IndexFunc(users, func(u identity.User) bool { return u.Username == username })
	if i < 0 {
		return Outcome{}, usererr.New(usererr.NotFound, "user_not_found", "There is no user %s.", username)
	}
	u := users[i]
	if u.Status == identity.StatusActive {
		return Outcome{Unchanged: true}, nil
	}
	held := u.Roles
	if s.cfg.GrantedRoles != nil {
		// A grant outlives its holder's disabling: enabling them gives its
		// role back, so it counts as much as a standing one.
		granted, err := s.cfg.GrantedRoles(ctx, u.ID)
		if err != nil {
			return Outcome{}, fmt.Errorf("granted roles of %s: %w", username, err)
		}
		held = append(slices.Clone(held), granted...)
	}
	gate := false
	if u.Status == identity.StatusDisabled && privileged(held) && username != by.Name {
		if gate, err = s.grantsNeedApproval(ctx, identity.RoleAdmin); err != nil {
			return Outcome{}, err
		}
	}
	if !gate {
		return Outcome{}, pa.EnableUser(ctx, by, username)
	}
	v, err := s.request(ctx, by, KindEnable, username, identity.StatusActive, u.Status,
		fmt.Sprintf("enable %s, who holds %s", username, strings.Join(held, ", ")))
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// SetRoles gives username exactly roles: at once when it adds neither
// approver nor admin (or while there is a single admin), else as a change
// request.
func (s *Service) SetRoles(ctx context.Context, by wire.Principal, username string, roles []string) (Outcome, error) {
	pa, err := s.peopleAdmin()
	if err != nil {
		return Outcome{}, err
	}
	roles, err = identity.CheckRoles(roles)
	if err != nil {
		return Outcome{}, err
	}
	p, err := pa.PersonForRoles(ctx, by, username)
	if err != nil {
		return Outcome{}, err
	}
	old := slices.Clone(p.Roles)
	slices.SortFunc(old, func(a, b string) int { return slices.Index(identity.Roles, a) - slices.Index(identity.Roles, b) })
	if slices.Equal(old, roles) {
		return Outcome{Unchanged: true}, nil
	}
	var added []string
	for _, r := range roles {
		if !slices.Contains(old, r) {
			added = append(added, r)
		}
	}
	gate := false
	if privileged(added) {
		if gate, err = s.grantsNeedApproval(ctx, identity.RoleAdmin); err != nil {
			return Outcome{}, err
		}
	}
	if !gate {
		return Outcome{}, pa.SetUserRoles(ctx, by, username, roles)
	}
	v, err := s.request(ctx, by, KindRoles, username, strings.Join(roles, ","), strings.Join(old, ","),
		fmt.Sprintf("set the roles of %s: %s → %s", username, orNoRoles(old), strings.Join(roles, ", ")))
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

func orNoRoles(r []string) string {
	if len(r) == 0 {
		return "none"
	}
	return strings.Join(r, ", ")
}

// applyPeople applies an approved user.enable or user.roles in tx, as its
// requester (who is recorded as the granter), after checking that what it
// changes is still what the approver saw.
func (s *Service) applyPeople(ctx context.Context, tx Tx, r Request, requester wire.Principal) error {
	pa, err := s.peopleAdmin()
	if err != nil {
		return err
	}
	itx, ok := tx.(identity.Tx)
	if !ok {
		return fmt.Errorf("change: the store's transaction is not an identity transaction")
	}
	p, err := itx.PersonByUsername(ctx, r.Target)
	if err != nil {
		return usererr.New(usererr.Conflict, "change_stale", "%s no longer exists, so %s is void.", r.Target, r.ID)
	}
	switch r.Kind {
	case KindEnable:
		if p.Status != r.Base {
			return usererr.New(usererr.Conflict, "change_stale", "%s is %s now, not %s as when %s was requested; it is void. Request it again.", r.Target, p.Status, r.Base, r.ID)
		}
		return pa.EnableUserIn(ctx, itx, requester, r.Target)
	case KindRoles:
		cur := slices.Clone(p.Roles)
		slices.SortFunc(cur, func(a, b string) int { return slices.Index(identity.Roles, a) - slices.Index(identity.Roles, b) })
		if strings.Join(cur, ",") != r.Base {
			return usererr.New(usererr.Conflict, "change_stale", "The roles of %s changed after %s was requested; it is void. Request it again.", r.Target, r.ID)
		}
		return pa.SetUserRolesIn(ctx, itx, requester, r.Target, strings.Split(r.Content, ","))
	}
	return fmt.Errorf("change %s: kind %q is not a people change", r.ID, r.Kind)
}

func peopleDiff(r Request) wire.ChangeDiff {
	if r.Kind == KindEnable {
		return wire.ChangeDiff{User: &wire.UserChange{Username: r.Target, Status: r.Base, Enable: true}}
	}
	var old []string
	if r.Base != "" {
		old = strings.Split(r.Base, ",")
	}
	return wire.ChangeDiff{User: &wire.UserChange{Username: r.Target, Roles: strings.Split(r.Content, ","), OldRoles: old}}
}
