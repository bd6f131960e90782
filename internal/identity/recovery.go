package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Account recovery. A person who loses their authenticator is not locked
// out for good, and nobody resets a credential alone:
//
//   - At enrolment (bootstrap, accepting an invitation, re-enrolling) a
//     person gets RecoveryCodeCount one-time recovery codes, shown once and
//     stored as SHA-256 hashes (80 random bits each). With one of them and
//     their password, [Service.Recover] gives them a new TOTP seed: this
//     works however many admins there are, and is the way out when there is
//     no second admin to approve a reset.
//   - An admin resets another person's TOTP, password or both only as a
//     change request (internal/change, kind user.reset) that another,
//     independent admin approves. The requester then collects a one-time
//     reset code ([Service.IssueCredentialReset]) for the person, who
//     re-enrols the reset credentials with it ([Service.AcceptReset]), as
//     with an invitation.
//
// Either way the person's sessions end, and every step is an audit entry.

// RecoveryCodeCount is how many recovery codes an enrolment issues.
const RecoveryCodeCount = 10

// Text prefixes of recovery bearer codes (Interlock's scanner finds them).
const (
	RecoveryCodePrefix = "ilk_rc_"
	ResetCodePrefix    = "ilk_rst_"
)

// What a credential reset resets.
const (
	ResetTOTP        = "totp"
	ResetPassword    = "password"
	ResetCredentials = "credentials" // both
)

// ResetKinds lists the valid values of what a reset resets.
var ResetKinds = []string{ResetTOTP, ResetPassword, ResetCredentials}

// RecoveryTx is what recovery needs from a transaction beyond [Tx]; the
// store's transaction implements it (internal/store/recovery.go).
type RecoveryTx interface {
	// ReplaceRecoveryCodes deletes the person's recovery codes and stores hashes.
	ReplaceRecoveryCodes(ctx context.Context, personID string, hashes [][]byte, at time.Time) error
	// UseRecoveryCode marks the person's unused code with hash used and
	// reports whether it did (one conditional write).
	UseRecoveryCode(ctx context.Context, personID string, hash []byte, at time.Time) (bool, error)
	// UnusedRecoveryCodes counts the person's unused recovery codes.
	UnusedRecoveryCodes(ctx context.Context, personID string) (int, error)
	InsertCredentialReset(ctx context.Context, r CredentialReset) error
	CredentialResetByCodeHash(ctx context.Context, hash []byte) (CredentialReset, error)
	// UseCredentialReset marks the reset used if it was not, and reports whether it did.
	UseCredentialReset(ctx context.Context, id string, at time.Time) (bool, error)
}

// CredentialReset is an issued reset code, stored by hash.
type CredentialReset struct {
	ID        string
	PersonID  string
	CodeHash  []byte
	What      string
	IssuedBy  string // the requester's audit actor
	ChangeID  string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// ResetCode is a new reset code for the person, shown once to the admin
// who requested the reset.
type ResetCode struct {
	Code      Secret
	Username  string
	What      string
	ExpiresAt time.Time
}

func recoveryTx(tx Tx) (RecoveryTx, error) {
	rtx, ok := tx.(RecoveryTx)
	if !ok {
		return nil, errors.New("identity: the store does not support account recovery")
	}
	return rtx, nil
}

// newRecoveryCodes makes RecoveryCodeCount codes and their hashes.
func (s *Service) newRecoveryCodes() ([]Secret, [][]byte, error) {
	codes := make([]Secret, 0, RecoveryCodeCount)
	hashes := make([][]byte, 0, RecoveryCodeCount)
	for range RecoveryCodeCount {
		b, err := s.randBytes(10)
		if err != nil {
			return nil, nil, err
		}
		c := strings.ToLower(idEncoding.EncodeToString(b))
		code := RecoveryCodePrefix + c[:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:]
		codes = append(codes, Secret(code))
		hashes = append(hashes, hashToken(code))
	}
	return codes, hashes, nil
}

// storeRecoveryCodes replaces the person's recovery codes in tx.
func storeRecoveryCodes(ctx context.Context, tx Tx, personID string, hashes [][]byte, now time.Time) error {
	rtx, err := recoveryTx(tx)
	if err != nil {
		return err
	}
	if err := rtx.ReplaceRecoveryCodes(ctx, personID, hashes, now); err != nil {
		return fmt.Errorf("store recovery codes: %w", err)
	}
	return nil
}

// normalizeRecoveryCode accepts a code as printed, in any case, with or
// without its dashes.
func normalizeRecoveryCode(code string) string {
	c := strings.ToLower(strings.TrimSpace(code))
	c = strings.TrimPrefix(c, RecoveryCodePrefix)
	c = strings.ReplaceAll(c, "-", "")
	if len(c) != 16 {
		return ""
	}
	return RecoveryCodePrefix + c[:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:]
}

// RecoverRequest is a person's own recovery of a lost authenticator.
type RecoverRequest struct {
	Username     string
	Password     string
	RecoveryCode string
	SourceIP     string
}

func errRecoveryFailed() error {
	return usererr.New(usererr.Unauthenticated, "recovery_failed",
		"The username, password or recovery code is wrong, or the recovery code was already used.")
}

// Recover gives a person who lost their authenticator a new TOTP seed, with
// their password and one of their recovery codes (used up). It counts
// toward the sign-in lockout like a failed login, ends the person's
// sessions and never says whether the user exists.
func (s *Service) Recover(ctx context.Context, in RecoverRequest) (Enrollment, error) {
	if in.Username == "" || in.Password == "" || in.RecoveryCode == "" {
		return Enrollment{}, usererr.New(usererr.Invalid, "recovery_incomplete", "Recovering needs a username, your password and one of your recovery codes.")
	}
	if len(in.Password) > MaxPasswordLength || len(in.RecoveryCode) > 64 {
		return Enrollment{}, usererr.New(usererr.Invalid, "login_too_long", "The password or recovery code is too long.")
	}
	if err := validateUsername(in.Username); err != nil {
		return Enrollment{}, err
	}
	now := s.now()
	if err := s.checkLockout(ctx, in.Username, in.SourceIP, now); err != nil {
		return Enrollment{}, err
	}
	p, err := s.store.PersonByUsername(ctx, in.Username)
	if err != nil && !s.store.IsNotFound(err) {
		return Enrollment{}, fmt.Errorf("load person: %w", err)
	}
	known := err == nil && p.Status == StatusActive && len(p.PasswordSealed) > 0
	ok, err := s.checkPassword(ctx, p, known, in.Password)
	if err != nil {
		return Enrollment{}, err
	}
	code := normalizeRecoveryCode(in.RecoveryCode)
	if !ok || code == "" {
		return Enrollment{}, s.recoveryFailure(ctx, p.ID, in, "bad_credentials", now)
	}
	secret, uri, err := s.newTOTP(p.Username)
	if err != nil {
		return Enrollment{}, err
	}
	totpSealed, err := s.sealer.Seal([]byte(secret), totpAAD(p.ID))
	if err != nil {
		return Enrollment{}, fmt.Errorf("seal totp seed: %w", err)
	}
	errUsed := errors.New("recovery code not usable")
	left := 0
	err = s.store.InTx(ctx, func(tx Tx) error {
		rtx, err := recoveryTx(tx)
		if err != nil {
			return err
		}
		cur, err := tx.PersonByID(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("reload person: %w", err)
		}
		if cur.Status != StatusActive {
			return errUsed
		}
		if ok, err := rtx.UseRecoveryCode(ctx, p.ID, hashToken(code), now); err != nil {
			return fmt.Errorf("use recovery code: %w", err)
		} else if !ok {
			return errUsed
		}
		if err := tx.SetPersonCredentials(ctx, p.ID, cur.PasswordSealed, totpSealed, StatusActive); err != nil {
			return fmt.Errorf("set credentials: %w", err)
		}
		if err := tx.RevokePersonLoginSessions(ctx, p.ID, now); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		if err := tx.DeleteLoginFailures(ctx, in.Username, now.Add(-s.lockoutWindow)); err != nil {
			return fmt.Errorf("clear login failures: %w", err)
		}
		if left, err = rtx.UnusedRecoveryCodes(ctx, p.ID); err != nil {
			return fmt.Errorf("count recovery codes: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.recovered", Actor: personActor(p.ID), Subject: personSubject(p.ID), Time: now,
			Data:     map[string]any{"reset": ResetTOTP, "recovery_codes_left": left},
			Personal: map[string]string{"username": p.Username, "source_ip": in.SourceIP}})
	})
	if errors.Is(err, errUsed) {
		return Enrollment{}, s.recoveryFailure(ctx, p.ID, in, "recovery_code_unusable", now)
	}
	if err != nil {
		return Enrollment{}, err
	}
	return Enrollment{PersonID: p.ID, Username: p.Username, TOTPSecret: Secret(secret), TOTPURI: Secret(uri), RecoveryCodesLeft: left}, nil
}

func (s *Service) recoveryFailure(ctx context.Context, personID string, in RecoverRequest, reason string, now time.Time) error {
	if err := s.recordFailure(ctx, "identity.recovery_failed", personID, in.Username, in.SourceIP, reason, now); err != nil {
		if _, ok := usererr.As(err); !ok {
			return err
		}
	}
	return errRecoveryFailed()
}

// IssueCredentialReset makes the one-time reset code of an approved
// user.reset change request (internal/change checks the approval; only
// its requester collects). The code works once, for Config.InvitationTTL.
func (s *Service) IssueCredentialReset(ctx context.Context, by wire.Principal, username, what, changeID string) (ResetCode, error) {
	if !slices.Contains(ResetKinds, what) {
		return ResetCode{}, usererr.New(usererr.Invalid, "invalid_reset", "A reset resets one of %s, not %q.", strings.Join(ResetKinds, ", "), what)
	}
	now := s.now()
	code, hash, err := s.newToken(ResetCodePrefix)
	if err != nil {
		return ResetCode{}, err
	}
	id, err := s.newID("rst_")
	if err != nil {
		return ResetCode{}, err
	}
	out := ResetCode{Code: code, Username: username, What: what, ExpiresAt: now.Add(s.invitationTTL)}
	err = s.store.InTx(ctx, func(tx Tx) error {
		p, err := s.resettable(ctx, tx, username)
		if err != nil {
			return err
		}
		rtx, err := recoveryTx(tx)
		if err != nil {
			return err
		}
		if err := rtx.InsertCredentialReset(ctx, CredentialReset{ID: id, PersonID: p.ID, CodeHash: hash, What: what, IssuedBy: by.Actor(),
			ChangeID: changeID, CreatedAt: now, ExpiresAt: out.ExpiresAt}); err != nil {
			return fmt.Errorf("store credential reset: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.reset_issued", Actor: by.Actor(), Subject: personSubject(p.ID), Time: now,
			Data:     map[string]any{"reset_id": id, "reset": what, "change_id": changeID, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339)},
			Personal: map[string]string{"username": username}})
	})
	if err != nil {
		return ResetCode{}, err
	}
	return out, nil
}

// CheckResettable refuses, with a sentence, a reset of someone who has no
// Interlock credentials to reset (unknown, only invited, or signing in
// through SSO).
func (s *Service) CheckResettable(ctx context.Context, username string) error {
	return s.store.InTx(ctx, func(tx Tx) error {
		_, err := s.resettable(ctx, tx, username)
		return err
	})
}

func (s *Service) resettable(ctx context.Context, tx Tx, username string) (Person, error) {
	p, err := tx.PersonByUsername(ctx, username)
	if s.store.IsNotFound(err) {
		return Person{}, usererr.New(usererr.NotFound, "user_not_found", "There is no user %s.", username)
	} else if err != nil {
		return Person{}, fmt.Errorf("load person: %w", err)
	}
	if p.Status == StatusInvited {
		return Person{}, usererr.New(usererr.Conflict, "user_not_enrolled", "%s has not accepted their invitation yet; invite them again instead.", username)
	}
	iss, err := s.ssoIssuerOf(ctx, tx, p.ID)
	if err != nil {
		return Person{}, err
	}
	if iss != "" {
		return Person{}, usererr.New(usererr.Conflict, "user_is_sso", "%s signs in through %s and has no Interlock credentials; reset them at the identity provider.", username, iss)
	}
	return p, nil
}

func errResetCode() error {
	return usererr.New(usererr.Unauthenticated, "reset_code_invalid",
		"The reset code is wrong, already used or expired; ask an admin to request the reset again.")
}

// AcceptReset re-enrols what an approved reset resets, with its one-time
// code: a new TOTP seed (and new recovery codes), a new password, or both.
// The person's sessions end.
func (s *Service) AcceptReset(ctx context.Context, code, password string) (Enrollment, error) {
	if !strings.HasPrefix(code, ResetCodePrefix) || len(code) > 128 {
		return Enrollment{}, errResetCode()
	}
	now := s.now()
	hash := hashToken(code)
	load := func(tx Tx) (CredentialReset, Person, error) {
		rtx, err := recoveryTx(tx)
		if err != nil {
			return CredentialReset{}, Person{}, err
		}
		r, err := rtx.CredentialResetByCodeHash(ctx, hash)
		if s.store.IsNotFound(err) {
			return CredentialReset{}, Person{}, errResetCode()
		} else if err != nil {
			return CredentialReset{}, Person{}, fmt.Errorf("load credential reset: %w", err)
		}
		if !r.UsedAt.IsZero() || !now.Before(r.ExpiresAt) {
			return CredentialReset{}, Person{}, errResetCode()
		}
		p, err := tx.PersonByID(ctx, r.PersonID)
		if err != nil {
			return CredentialReset{}, Person{}, fmt.Errorf("load person: %w", err)
		}
		if p.Status != StatusActive {
			return CredentialReset{}, Person{}, usererr.New(usererr.Forbidden, "account_disabled", "This account is disabled; ask an admin.")
		}
		return r, p, nil
	}
	var r CredentialReset
	var p Person
	if err := s.store.InTx(ctx, func(tx Tx) (err error) { r, p, err = load(tx); return err }); err != nil {
		return Enrollment{}, err
	}
	newPassword, newTOTP := r.What != ResetTOTP, r.What != ResetPassword
	if newPassword && password == "" {
		return Enrollment{}, usererr.New(usererr.Invalid, "password_required", "This reset sets a new password: choose one (at least %d characters).", MinPasswordLength)
	}
	enr := Enrollment{PersonID: p.ID, Username: p.Username}
	pwSealed, totpSealed := p.PasswordSealed, p.TOTPSealed
	switch {
	case newPassword && newTOTP:
		if err := checkPasswordPolicy(password, p.Username); err != nil {
			return Enrollment{}, err
		}
		e, pw, tp, err := s.credentials(ctx, p.ID, p.Username, password)
		if err != nil {
			return Enrollment{}, err
		}
		enr, pwSealed, totpSealed = e, pw, tp
	case newPassword:
		if err := checkPasswordPolicy(password, p.Username); err != nil {
			return Enrollment{}, err
		}
		e, pw, _, err := s.credentials(ctx, p.ID, p.Username, password)
		if err != nil {
			return Enrollment{}, err
		}
		enr, pwSealed = Enrollment{PersonID: e.PersonID, Username: e.Username}, pw
	default:
		if password != "" {
			return Enrollment{}, usererr.New(usererr.Invalid, "password_not_reset", "This reset gives you a new authenticator only; your password stays as it is, so send none.")
		}
		secret, uri, err := s.newTOTP(p.Username)
		if err != nil {
			return Enrollment{}, err
		}
		if totpSealed, err = s.sealer.Seal([]byte(secret), totpAAD(p.ID)); err != nil {
			return Enrollment{}, fmt.Errorf("seal totp seed: %w", err)
		}
		enr.TOTPSecret, enr.TOTPURI = Secret(secret), Secret(uri)
	}
	var codes []Secret
	var hashes [][]byte
	if newTOTP {
		var err error
		if codes, hashes, err = s.newRecoveryCodes(); err != nil {
			return Enrollment{}, err
		}
	}
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, p, err := load(tx)
		if err != nil {
			return err
		}
		rtx, err := recoveryTx(tx)
		if err != nil {
			return err
		}
		if ok, err := rtx.UseCredentialReset(ctx, r.ID, now); err != nil {
			return fmt.Errorf("use credential reset: %w", err)
		} else if !ok {
			return errResetCode()
		}
		if err := tx.SetPersonCredentials(ctx, p.ID, pwSealed, totpSealed, StatusActive); err != nil {
			return fmt.Errorf("set credentials: %w", err)
		}
		if newTOTP {
			if err := storeRecoveryCodes(ctx, tx, p.ID, hashes, now); err != nil {
				return err
			}
		} else if _, err := tx.AdvancePersonTOTPStep(ctx, p.ID, p.TOTPLastStep); err != nil {
			// The seed stays: so must the record of the codes already used.
			return fmt.Errorf("keep totp step: %w", err)
		}
		if err := tx.RevokePersonLoginSessions(ctx, p.ID, now); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.credentials_reset", Actor: personActor(p.ID), Subject: personSubject(p.ID), Time: now,
			Data:     map[string]any{"reset_id": r.ID, "reset": r.What, "change_id": r.ChangeID, "issued_by": r.IssuedBy},
			Personal: map[string]string{"username": p.Username}})
	})
	if err != nil {
		return Enrollment{}, err
	}
	enr.RecoveryCodes = codes
	return enr, nil
}

// enrolRecoveryCodes makes the recovery codes an enrolment shows once.
func (s *Service) enrolRecoveryCodes() ([]Secret, error) {
	codes, _, err := s.newRecoveryCodes()
	return codes, err
}

func hashRecoveryCodes(codes []Secret) [][]byte {
	out := make([][]byte, 0, len(codes))
	for _, c := range codes {
		out = append(out, hashToken(c.Reveal()))
	}
	return out
}
