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

// KindReset resets a person's TOTP, password or both (account recovery,
// internal/identity/recovery.go). Target: username; Content: what it
// resets (identity.ResetKinds); Base: "". It is always a request, approved
// by another admin (role admin, checked here whatever the policy says);
// once approved its requester collects the one-time reset code
// ([Service.CollectReset]) for the person, who re-enrols with it.
const KindReset Kind = "user.reset"

// Resetter is what a reset needs of identity; *identity.Service
// implements it (and is the People of every real configuration).
type Resetter interface {
	CheckResettable(ctx context.Context, username string) error
	IssueCredentialReset(ctx context.Context, by wire.Principal, username, what, changeID string) (identity.ResetCode, error)
}

func (s *Service) resetter() (Resetter, error) {
	r, ok := s.cfg.People.(Resetter)
	if !ok {
		return nil, fmt.Errorf("change: People does not implement credential resets")
	}
	return r, nil
}

// ProposeReset asks to reset username's credentials. Nobody resets
// anyone alone: it is a change request that another, independent admin
// approves. Refused with a sentence (and an audit entry): your own
// credentials (use a recovery code), someone with no Interlock credentials
// (invited, or signing in through SSO), and an installation where no
// other active admin could approve (the person's own recovery codes are
// the way out there).
func (s *Service) ProposeReset(ctx context.Context, by wire.Principal, username, what string) (Outcome, error) {
	if !slices.Contains(identity.ResetKinds, what) {
		return Outcome{}, usererr.New(usererr.Invalid, "invalid_reset", "A reset resets one of %s, not %q.", strings.Join(identity.ResetKinds, ", "), what)
	}
	res, err := s.resetter()
	if err != nil {
		return Outcome{}, err
	}
	if username == by.Name {
		return Outcome{}, s.refuse(ctx, by, "user:"+username, "cannot_reset_self", usererr.Forbidden,
			"You cannot reset your own credentials; with your password, one of your recovery codes gives you a new authenticator (interlock user recover).")
	}
	if err := res.CheckResettable(ctx, username); err != nil {
		return Outcome{}, err
	}
	others, err := s.activeWith(ctx, by.Name, identity.RoleAdmin)
	if err != nil {
		return Outcome{}, err
	}
	if others == 0 || (others == 1 && s.isActiveAdmin(ctx, username)) {
		return Outcome{}, s.refuse(ctx, by, "user:"+username, "no_other_admin", usererr.Conflict,
			"Nobody resets credentials alone, and no other active admin could approve resetting %s's. With their password, one of %s's recovery codes gives them a new authenticator: interlock user recover --user %s.", username, username, username)
	}
	v, err := s.request(ctx, by, KindReset, username, what, "", fmt.Sprintf("reset the %s of %s", resetNoun(what), username))
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Change: &v}, nil
}

// isActiveAdmin reports whether username is an active admin: the person
// whose credentials are reset must not be the only other admin (they
// could approve their own reset, which their requester collects).
func (s *Service) isActiveAdmin(ctx context.Context, username string) bool {
	users, err := s.cfg.People.ListUsers(ctx)
	if err != nil {
		return false
	}
	for _, u := range users {
		if u.Username == username {
			return u.Status == identity.StatusActive && slices.Contains(u.Roles, identity.RoleAdmin)
		}
	}
	return false
}

func resetNoun(what string) string {
	switch what {
	case identity.ResetTOTP:
		return "authenticator (TOTP)"
	case identity.ResetPassword:
		return "password"
	}
	return "password and authenticator (TOTP)"
}

// CollectReset gives the requester of an approved reset its one-time
// code, once; handled is false when id is not a reset (the caller then
// collects an invitation).
func (s *Service) CollectReset(ctx context.Context, id string, by wire.Principal) (v View, code identity.ResetCode, handled bool, err error) {
	r, err := s.load(ctx, s.cfg.Store, id)
	if err != nil {
		return View{}, identity.ResetCode{}, true, err
	}
	if r.Kind != KindReset {
		return View{}, identity.ResetCode{}, false, nil
	}
	if by.ID != r.RequesterID {
		return View{}, identity.ResetCode{}, true, s.refuse(ctx, by, "change:"+r.ID, "not_your_change", usererr.Forbidden,
			"Only the person who requested %s can collect its reset code.", r.ID)
	}
	if st := effective(r, s.clock()); st != Approved {
		return View{}, identity.ResetCode{}, true, usererr.New(usererr.Conflict, "change_not_approved", "Change request %s is %s, not approved; there is no reset code to collect.", r.ID, st)
	}
	res, err := s.resetter()
	if err != nil {
		return View{}, identity.ResetCode{}, true, err
	}
	code, err = res.IssueCredentialReset(ctx, by, r.Target, r.Content, r.ID)
	if err != nil {
		return View{}, identity.ResetCode{}, true, err
	}
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		return s.finish(ctx, tx, &r, Applied, actorOf(by), "reset code issued", s.clock())
	})
	if err != nil {
		return View{}, identity.ResetCode{}, true, err
	}
	v, err = s.view(r)
	return v, code, true, err
}
