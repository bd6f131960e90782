package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// EnsureBootstrapCode makes a new one-time bootstrap code when nobody has
// an account yet, and returns it for the server to print (ok = true). Only
// its hash is stored; it works for Config.BootstrapCodeTTL (1 h) and only
// once, and a new call (the next server start) replaces any earlier code.
// Once a person exists it returns ok = false and does nothing.
func (s *Service) EnsureBootstrapCode(ctx context.Context) (code Secret, expires time.Time, ok bool, err error) {
	now := s.now()
	tok, hash, err := s.newToken(BootstrapCodePrefix)
	if err != nil {
		return "", time.Time{}, false, err
	}
	expires = now.Add(s.bootstrapTTL)
	err = s.store.InTx(ctx, func(tx Tx) error {
		n, err := tx.CountPersons(ctx)
		if err != nil {
			return fmt.Errorf("count persons: %w", err)
		}
		if n > 0 {
			ok = false
			return nil
		}
		ok = true
		if err := tx.ReplaceBootstrapCode(ctx, BootstrapCode{CodeHash: hash, CreatedAt: now, ExpiresAt: expires}); err != nil {
			return fmt.Errorf("store bootstrap code: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.bootstrap_code_issued", Actor: "system", Time: now,
			Data: map[string]any{"expires_at": expires.UTC().Format(time.RFC3339)}})
	})
	if err != nil || !ok {
		return "", time.Time{}, false, err
	}
	return tok, expires, true, nil
}

func errBootstrapCode() error {
	return usererr.New(usererr.Unauthenticated, "bootstrap_code_invalid",
		"The bootstrap code is wrong, already used or expired; restart the server to print a new one (it only does while nobody has an account).")
}

// Bootstrap creates the first admin with the code from EnsureBootstrapCode.
// It returns the TOTP enrollment that the admin's authenticator app needs.
func (s *Service) Bootstrap(ctx context.Context, code, username, password string) (Enrollment, error) {
	if err := validateUsername(username); err != nil {
		return Enrollment{}, err
	}
	if err := checkPasswordPolicy(password, username); err != nil {
		return Enrollment{}, err
	}
	if !strings.HasPrefix(code, BootstrapCodePrefix) {
		return Enrollment{}, errBootstrapCode()
	}
	now := s.now()
	hash := hashToken(code)
	usable := func(r Reader) error {
		bc, err := r.BootstrapCodeByHash(ctx, hash)
		if s.store.IsNotFound(err) {
			return errBootstrapCode()
		} else if err != nil {
			return fmt.Errorf("load bootstrap code: %w", err)
		}
		if !bc.UsedAt.IsZero() || !now.Before(bc.ExpiresAt) {
			return errBootstrapCode()
		}
		return nil
	}
	// Check before the expensive hashing, and again inside the transaction.
	if err := usable(s.store); err != nil {
		return Enrollment{}, err
	}
	id, err := s.newID("p_")
	if err != nil {
		return Enrollment{}, err
	}
	enr, pwSealed, totpSealed, err := s.credentials(ctx, id, username, password)
	if err != nil {
		return Enrollment{}, err
	}
	if enr.RecoveryCodes, err = s.enrolRecoveryCodes(); err != nil {
		return Enrollment{}, err
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		n, err := tx.CountPersons(ctx)
		if err != nil {
			return fmt.Errorf("count persons: %w", err)
		}
		if n > 0 {
			return usererr.New(usererr.Conflict, "already_bootstrapped",
				"Interlock already has an admin; ask them for an invitation (interlock user invite).")
		}
		if err := usable(tx); err != nil {
			return err
		}
		if ok, err := tx.UseBootstrapCode(ctx, hash, now); err != nil {
			return fmt.Errorf("use bootstrap code: %w", err)
		} else if !ok {
			return errBootstrapCode()
		}
		p := Person{ID: id, Username: username, Roles: []string{RoleAdmin}, Status: StatusActive,
			PasswordSealed: pwSealed, TOTPSealed: totpSealed, CreatedAt: now}
		if err := tx.InsertPerson(ctx, p); err != nil {
			return fmt.Errorf("insert person: %w", err)
		}
		if err := tx.ReplaceRoleGrants(ctx, id, now, []RoleGrant{{PersonID: id, Role: RoleAdmin, GrantedBy: GrantedByBootstrap, GrantedAt: now}}); err != nil {
			return fmt.Errorf("record role grant: %w", err)
		}
		if err := storeRecoveryCodes(ctx, tx, id, hashRecoveryCodes(enr.RecoveryCodes), now); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.bootstrapped", Actor: personActor(id), Subject: personSubject(id),
			Time: now, Data: map[string]any{"roles": []string{RoleAdmin}}, Personal: map[string]string{"username": username}})
	})
	if err != nil {
		return Enrollment{}, err
	}
	return enr, nil
}

// credentials hashes and seals a new password and makes and seals a TOTP seed.
func (s *Service) credentials(ctx context.Context, personID, username, password string) (Enrollment, []byte, []byte, error) {
	if err := s.acquireHash(ctx); err != nil {
		return Enrollment{}, nil, nil, err
	}
	defer s.releaseHash()
	salt, err := s.randBytes(saltLen)
	if err != nil {
		return Enrollment{}, nil, nil, err
	}
	pwSealed, err := s.sealer.Seal([]byte(hashPassword(password, salt, s.argon)), passwordAAD(personID))
	if err != nil {
		return Enrollment{}, nil, nil, fmt.Errorf("seal password hash: %w", err)
	}
	secret, uri, err := s.newTOTP(username)
	if err != nil {
		return Enrollment{}, nil, nil, err
	}
	totpSealed, err := s.sealer.Seal([]byte(secret), totpAAD(personID))
	if err != nil {
		return Enrollment{}, nil, nil, fmt.Errorf("seal totp seed: %w", err)
	}
	return Enrollment{PersonID: personID, Username: username, TOTPSecret: Secret(secret), TOTPURI: Secret(uri)}, pwSealed, totpSealed, nil
}

func passwordAAD(personID string) []byte { return []byte("password:" + personID) }
func totpAAD(personID string) []byte     { return []byte("totp:" + personID) }

// InvitationCode is a new invitation: the code goes to the invited person
// through a channel the inviter trusts.
type InvitationCode struct {
	Code      Secret
	PersonID  string
	Username  string
	Role      string
	ExpiresAt time.Time
}

// Invite reserves username with role and returns a one-time invitation
// code (valid Config.InvitationTTL, 72 h). Inviting a username that is
// still only invited replaces the earlier invitation.
func (s *Service) Invite(ctx context.Context, by wire.Principal, username, role string) (InvitationCode, error) {
	if err := validateUsername(username); err != nil {
		return InvitationCode{}, err
	}
	if !validRole(role) {
		return InvitationCode{}, usererr.New(usererr.Invalid, "invalid_role",
			"Role %q does not exist; use one of %s.", role, strings.Join(Roles, ", "))
	}
	now := s.now()
	code, hash, err := s.newToken(InvitationCodePrefix)
	if err != nil {
		return InvitationCode{}, err
	}
	invID, err := s.newID("inv_")
	if err != nil {
		return InvitationCode{}, err
	}
	newPersonID, err := s.newID("p_")
	if err != nil {
		return InvitationCode{}, err
	}
	out := InvitationCode{Code: code, Username: username, Role: role, ExpiresAt: now.Add(s.invitationTTL)}
	err = s.store.InTx(ctx, func(tx Tx) error {
		p, err := tx.PersonByUsername(ctx, username)
		switch {
		case s.store.IsNotFound(err):
			p = Person{ID: newPersonID, Username: username, Roles: []string{role}, Status: StatusInvited, CreatedAt: now}
			if err := tx.InsertPerson(ctx, p); err != nil {
				return fmt.Errorf("insert invited person: %w", err)
			}
		case err != nil:
			return fmt.Errorf("load person: %w", err)
		case p.Status != StatusInvited:
			return usererr.New(usererr.Conflict, "user_exists", "User %s already exists.", username)
		default:
			if err := tx.SetPersonRoles(ctx, p.ID, []string{role}); err != nil {
				return fmt.Errorf("set roles: %w", err)
			}
		}
		out.PersonID = p.ID
		if err := tx.ReplaceRoleGrants(ctx, p.ID, now, []RoleGrant{{PersonID: p.ID, Role: role, GrantedBy: by.Actor(), GrantedAt: now}}); err != nil {
			return fmt.Errorf("record role grant: %w", err)
		}
		inv := Invitation{ID: invID, PersonID: p.ID, CodeHash: hash, InvitedBy: by.Actor(), CreatedAt: now, ExpiresAt: out.ExpiresAt}
		if err := tx.ReplaceInvitation(ctx, inv); err != nil {
			return fmt.Errorf("store invitation: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.invited", Actor: by.Actor(), Subject: personSubject(p.ID), Time: now,
			Data:     map[string]any{"role": role, "invitation_id": invID, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339)},
			Personal: map[string]string{"username": username}})
	})
	if err != nil {
		return InvitationCode{}, err
	}
	return out, nil
}

func errInvitationCode() error {
	return usererr.New(usererr.Unauthenticated, "invitation_code_invalid",
		"The invitation code is wrong, already used or expired; ask an admin for a new invitation.")
}

// Accept sets the invited person's password and TOTP seed with the code
// from Invite, and activates the account. The code works once.
func (s *Service) Accept(ctx context.Context, code, password string) (Enrollment, error) {
	if !strings.HasPrefix(code, InvitationCodePrefix) {
		return Enrollment{}, errInvitationCode()
	}
	now := s.now()
	hash := hashToken(code)
	load := func(r Reader) (Invitation, Person, error) {
		inv, err := r.InvitationByCodeHash(ctx, hash)
		if s.store.IsNotFound(err) {
			return Invitation{}, Person{}, errInvitationCode()
		} else if err != nil {
			return Invitation{}, Person{}, fmt.Errorf("load invitation: %w", err)
		}
		if !inv.AcceptedAt.IsZero() || !now.Before(inv.ExpiresAt) {
			return Invitation{}, Person{}, errInvitationCode()
		}
		p, err := r.PersonByID(ctx, inv.PersonID)
		if err != nil {
			return Invitation{}, Person{}, fmt.Errorf("load invited person: %w", err)
		}
		if p.Status != StatusInvited {
			return Invitation{}, Person{}, errInvitationCode()
		}
		return inv, p, nil
	}
	_, p, err := load(s.store)
	if err != nil {
		return Enrollment{}, err
	}
	if err := checkPasswordPolicy(password, p.Username); err != nil {
		return Enrollment{}, err
	}
	enr, pwSealed, totpSealed, err := s.credentials(ctx, p.ID, p.Username, password)
	if err != nil {
		return Enrollment{}, err
	}
	if enr.RecoveryCodes, err = s.enrolRecoveryCodes(); err != nil {
		return Enrollment{}, err
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		inv, p, err := load(tx)
		if err != nil {
			return err
		}
		if ok, err := tx.AcceptInvitation(ctx, inv.ID, now); err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		} else if !ok {
			return errInvitationCode()
		}
		if err := tx.SetPersonCredentials(ctx, p.ID, pwSealed, totpSealed, StatusActive); err != nil {
			return fmt.Errorf("set credentials: %w", err)
		}
		if err := storeRecoveryCodes(ctx, tx, p.ID, hashRecoveryCodes(enr.RecoveryCodes), now); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.accepted", Actor: personActor(p.ID), Subject: personSubject(p.ID), Time: now,
			Data: map[string]any{"invitation_id": inv.ID, "roles": p.Roles}, Personal: map[string]string{"username": p.Username}})
	})
	if err != nil {
		return Enrollment{}, err
	}
	return enr, nil
}

var errOTPReplay = errors.New("identity: one-time code already used")
