package identity

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// Separation of duties by person is not enough when one person can make
// more persons: an admin who invites "puppet" as an approver, accepts the
// invitation on their own machine and signs in as puppet has a second
// person only on paper. CheckIndependentApprover refuses such approvers
// by what the store knows about how the approver came to exist and to
// hold their roles (invitations.invited_by and role_grants).
//
// What it cannot see: a puppet made through a third account (A invites B,
// B invites C, C approves A's request long after). The account-age rule
// stops that trick when it is played for one request; ActiveAdmins and
// the single-admin warning make the remaining trust in admins visible.

// CheckIndependentApprover reports whether approverID may approve a
// request that requesterID made at requestedAt. It returns nil when the
// approver is independent, and otherwise a *usererr.Error (Forbidden)
// whose sentence says why, when:
//   - the approver is the requester;
//   - the approver is not an active person;
//   - the requester invited the approver (any invitation of the approver);
//   - the requester granted the approver a role the approver holds now,
//     or nobody recorded who did;
//   - the approver invited the requester, or granted a role the requester
//     holds now (the puppet asks, its maker approves);
//   - the requester's account is no longer active;
//   - either of them was issued a credential reset of the other's account
//     (its requester collects the code, and may have re-enrolled it);
//   - the approver's account became usable (invitation accepted) or one of
//     their roles was granted after requestedAt: a person made for the
//     request is not a second pair of eyes.
//
// It only reads. Callers MUST record a refusal in their own audit log
// (with the sentence) and leave the request as it was.
func (s *Service) CheckIndependentApprover(ctx context.Context, requesterID, approverID string, requestedAt time.Time) error {
	refuse := func(code, format string, args ...any) error {
		return usererr.New(usererr.Forbidden, code, format, args...)
	}
	if requesterID == "" || approverID == "" {
		return refuse("person_required", "Only a person can approve, and only a person's request.")
	}
	if requesterID == approverID {
		return refuse("self_approval", "You made this request yourself, so you cannot approve it; another person must.")
	}
	approver, err := s.store.PersonByID(ctx, approverID)
	if s.store.IsNotFound(err) {
		return refuse("approver_unknown", "There is no person %s to approve this request.", approverID)
	} else if err != nil {
		return fmt.Errorf("load approver %s: %w", approverID, err)
	}
	requesterName := requesterID
	rq, err := s.store.PersonByID(ctx, requesterID)
	switch {
	case err == nil:
		requesterName = rq.Username
		if rq.Status != StatusActive {
			// Whoever made the request can no longer stand behind it, and
			// a copied session may be why they were disabled.
			return refuse("requester_not_active",
				"%s's account is %s, so their request is not approved on their behalf; deny it, and let someone active ask again if it is still needed.", rq.Username, rq.Status)
		}
	case !s.store.IsNotFound(err):
		return fmt.Errorf("load requester %s: %w", requesterID, err)
	}
	who := approver.Username
	if approver.Status != StatusActive {
		return refuse("approver_not_active", "%s cannot approve: the account is %s, not active.", who, approver.Status)
	}
	if err := s.checkRequesterNotMadeBy(ctx, requesterID, requesterName, approverID, who); err != nil {
		return err
	}
	requester := personActor(requesterID)
	// The requester of a credential reset collects its one-time code and
	// may have re-enrolled the account themselves: from then on it may be
	// theirs, as an account they invited may be. Both ways round.
	for _, pair := range []struct{ of, by, ofName, byName string }{
		{approverID, requester, who, requesterName}, {requesterID, personActor(approverID), requesterName, who},
	} {
		if reset, err := s.resetBy(ctx, pair.of, pair.by); err != nil {
			return err
		} else if reset {
			return refuse("credentials_reset_by_other",
				"%s cannot approve %s's request: %s asked for the reset of %s's credentials and collected its code, so %s's account may be in %s's hands. Ask someone else.",
				who, requesterName, pair.byName, pair.ofName, pair.ofName, pair.byName)
		}
	}
	invs, err := s.store.InvitationsOfPerson(ctx, approverID)
	if err != nil {
		return fmt.Errorf("list invitations of %s: %w", approverID, err)
	}
	var activeSince time.Time // when the approver could first sign in
	for _, inv := range invs {
		if inv.InvitedBy == requester {
			return refuse("approver_invited_by_requester",
				"%s cannot approve %s's request: %s invited %s, and an approver must not owe their account to the person asking. Ask someone %s did not invite.",
				who, requesterName, requesterName, who, requesterName)
		}
		if !inv.AcceptedAt.IsZero() && (activeSince.IsZero() || inv.AcceptedAt.Before(activeSince)) {
			activeSince = inv.AcceptedAt
		}
	}
	if len(invs) == 0 {
		activeSince = approver.CreatedAt // the bootstrap admin
	}
	if activeSince.After(requestedAt) {
		return refuse("approver_account_too_new",
			"%s cannot approve %s's request: %s's account became usable at %s, after the request was made at %s. An account made after a request cannot approve it.",
			who, requesterName, who, stamp(activeSince), stamp(requestedAt))
	}
	grants, err := s.store.RoleGrantsOfPerson(ctx, approverID)
	if err != nil {
		return fmt.Errorf("list role grants of %s: %w", approverID, err)
	}
	for _, role := range approver.Roles {
		i := slices.IndexFunc(grants, func(g RoleGrant) bool { return g.Role == role && g.RevokedAt.IsZero() })
		if i < 0 {
			return refuse("approver_grant_unknown",
				"%s cannot approve: nothing records who granted %s the role %s, so their independence cannot be shown. An admin can invite them again.", who, who, role)
		}
		g := grants[i]
		if g.GrantedBy == requester {
			return refuse("approver_role_from_requester",
				"%s cannot approve %s's request: %s got the role %s from %s, and an approver must not owe their power to the person asking.",
				who, requesterName, who, role, requesterName)
		}
		if g.GrantedAt.After(requestedAt) {
			return refuse("approver_role_too_new",
				"%s cannot approve %s's request: %s got the role %s at %s, after the request was made at %s. A role granted after a request cannot approve it.",
				who, requesterName, who, role, stamp(g.GrantedAt), stamp(requestedAt))
		}
	}
	return nil
}

// checkRequesterNotMadeBy refuses the puppet the other way round: the
// approver invited the requester, or granted a role the requester holds
// now. Whoever invites holds the invitation code and can accept it
// themselves, so a request of the invitee may be the inviter's own, and
// the inviter's approval of it would be one person acting alone. (Like the
// approver's side, this looks one hop back; see the note above.)
func (s *Service) checkRequesterNotMadeBy(ctx context.Context, requesterID, requesterName, approverID, approverName string) error {
	approver := personActor(approverID)
	invs, err := s.store.InvitationsOfPerson(ctx, requesterID)
	if err != nil {
		return fmt.Errorf("list invitations of %s: %w", requesterID, err)
	}
	for _, inv := range invs {
		if inv.InvitedBy == approver {
			return usererr.New(usererr.Forbidden, "requester_invited_by_approver",
				"%s cannot approve %s's request: %s invited %s, so %s owes their account to %s, and a request of theirs could be %s's own. Ask someone who did not invite %s.",
				approverName, requesterName, approverName, requesterName, requesterName, approverName, approverName, requesterName)
		}
	}
	rq, err := s.store.PersonByID(ctx, requesterID)
	if s.store.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("load requester %s: %w", requesterID, err)
	}
	grants, err := s.store.RoleGrantsOfPerson(ctx, requesterID)
	if err != nil {
		return fmt.Errorf("list role grants of %s: %w", requesterID, err)
	}
	for _, g := range grants {
		if g.RevokedAt.IsZero() && g.GrantedBy == approver && slices.Contains(rq.Roles, g.Role) {
			return usererr.New(usererr.Forbidden, "requester_role_from_approver",
				"%s cannot approve %s's request: %s got the role %s from %s, so %s owes their power to %s. Ask someone else.",
				approverName, requesterName, requesterName, g.Role, approverName, requesterName, approverName)
		}
	}
	return nil
}

// resetHistory is the optional read of the credential resets issued for a
// person (internal/store implements it; test fakes need not).
type resetHistory interface {
	CredentialResetsOfPerson(ctx context.Context, personID string) ([]CredentialReset, error)
}

// resetBy reports whether actor was issued a credential reset of personID.
func (s *Service) resetBy(ctx context.Context, personID, actor string) (bool, error) {
	rh, ok := s.store.(resetHistory)
	if !ok {
		return false, nil
	}
	rs, err := rh.CredentialResetsOfPerson(ctx, personID)
	if err != nil {
		return false, fmt.Errorf("list credential resets of %s: %w", personID, err)
	}
	return slices.ContainsFunc(rs, func(r CredentialReset) bool { return r.IssuedBy == actor }), nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ActiveAdmins counts the active persons who hold the admin role.
func (s *Service) ActiveAdmins(ctx context.Context) (int, error) {
	ps, err := s.store.ListPersons(ctx)
	if err != nil {
		return 0, fmt.Errorf("list persons: %w", err)
	}
	n := 0
	for _, p := range ps {
		if p.Status == StatusActive && slices.Contains(p.Roles, RoleAdmin) {
			n++
		}
	}
	return n, nil
}

// SingleAdminWarning is the sentence shown while exactly one active admin
// exists.
const SingleAdminWarning = "Separation of duties rests on one person: this installation has a single active admin, " +
	"who can invite approvers, grant roles and change policy alone. Invite a second admin (interlock user invite NAME --role admin)."

// SeparationOfDutiesWarning returns SingleAdminWarning while the
// installation has a single active admin, and "" otherwise. A failed read
// is logged and says nothing rather than failing the caller's request.
func (s *Service) SeparationOfDutiesWarning(ctx context.Context) string {
	n, err := s.ActiveAdmins(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "count active admins", slog.String("error", err.Error()))
		return ""
	}
	if n == 1 {
		return SingleAdminWarning
	}
	return ""
}
