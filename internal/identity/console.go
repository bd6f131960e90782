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

// Web console sessions.
//
// A console sign-in is a login session like the CLI's (same table, same
// expiry, same logout, revocation and disabling), held by a browser in a
// cookie instead of being bound to a DPoP key. Each sign-in registers its
// own device whose thumbprint is "console:<session id>": no DPoP key has a
// thumbprint with a ':' (RFC 7638 thumbprints are base64url), so a console
// token presented to the API with a DPoP proof is refused, and a CLI token
// put in a cookie is refused by AuthenticateConsole. `interlock device list`
// shows each console sign-in, and `device revoke` ends it.

// consoleJKTPrefix marks the devices of console sign-ins.
const consoleJKTPrefix = "console:"

// ConsoleSignInRequest is a password + TOTP sign-in from the web console.
type ConsoleSignInRequest struct {
	Username  string
	Password  string
	OTP       string
	SourceIP  string
	UserAgent string
}

// ConsoleSignIn checks password and one-time code with the same lockout as
// Login and starts a console session.
func (s *Service) ConsoleSignIn(ctx context.Context, req ConsoleSignInRequest) (Session, error) {
	if req.Username == "" || req.Password == "" || req.OTP == "" {
		return Session{}, usererr.New(usererr.Invalid, "login_incomplete", "Signing in needs a username, a password and a one-time code.")
	}
	if len(req.Username) > 64 || len(req.Password) > MaxPasswordLength || len(req.OTP) > 16 {
		return Session{}, usererr.New(usererr.Invalid, "login_too_long", "A username, password or one-time code is too long.")
	}
	if err := validateUsername(req.Username); err != nil {
		return Session{}, err
	}
	now := s.now()
	if err := s.checkLockout(ctx, req.Username, req.SourceIP, now); err != nil {
		return Session{}, err
	}
	p, err := s.store.PersonByUsername(ctx, req.Username)
	known := err == nil && p.Status == StatusActive
	if err != nil && !s.store.IsNotFound(err) {
		return Session{}, fmt.Errorf("load person: %w", err)
	}
	ok, err := s.checkPassword(ctx, p, known, req.Password)
	if err != nil {
		return Session{}, err
	}
	var step int64
	if ok {
		if step, ok, err = s.checkOTP(p, req.OTP, now); err != nil {
			return Session{}, err
		}
	}
	if !ok {
		return Session{}, s.recordFailure(ctx, "identity.login_failed", p.ID, req.Username, req.SourceIP, "bad_credentials", now)
	}
	sess, err := s.startConsoleSession(ctx, p.ID, "password_totp", step, req.Username, req.SourceIP, req.UserAgent, req.Username)
	if errors.Is(err, errOTPReplay) {
		return Session{}, s.recordFailure(ctx, "identity.login_failed", p.ID, req.Username, req.SourceIP, "otp_replayed", now)
	}
	return sess, err
}

// StartPasskeySession starts a console session for a person who has just
// signed in with a passkey (verified by internal/passkey, user
// verification required: a passkey is both factors).
func (s *Service) StartPasskeySession(ctx context.Context, personID, credentialID, sourceIP, userAgent string) (Session, error) {
	p, err := s.store.PersonByID(ctx, personID)
	if err != nil || p.Status != StatusActive {
		return Session{}, errLoginFailed()
	}
	return s.startConsoleSession(ctx, p.ID, "passkey", 0, p.Username, sourceIP, userAgent, "passkey "+credentialID)
}

func (s *Service) startConsoleSession(ctx context.Context, personID, method string, totpStep int64, username, sourceIP, userAgent, note string) (Session, error) {
	now := s.now()
	sessID, err := s.newID("ses_")
	if err != nil {
		return Session{}, err
	}
	devID, err := s.newID("dev_")
	if err != nil {
		return Session{}, err
	}
	token, hash, err := s.newToken(SessionTokenPrefix)
	if err != nil {
		return Session{}, err
	}
	name := "web console"
	if ua := strings.TrimSpace(userAgent); ua != "" {
		name = "web console (" + consoleTruncate(ua, 100) + ")"
	}
	out := Session{Token: token, ID: sessID, PersonID: personID, DeviceID: devID, NewDevice: true, ExpiresAt: now.Add(s.sessionTTL)}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if totpStep > 0 {
			if ok, err := tx.AdvancePersonTOTPStep(ctx, personID, totpStep); err != nil {
				return fmt.Errorf("advance totp step: %w", err)
			} else if !ok {
				return errOTPReplay
			}
		}
		cur, err := tx.PersonByID(ctx, personID)
		if err != nil {
			return fmt.Errorf("reload person: %w", err)
		}
		if cur.Status != StatusActive {
			return errLoginFailed()
		}
		d := Device{ID: devID, PersonID: personID, JKT: consoleJKTPrefix + sessID, Name: name, CreatedAt: now, LastUsed: now}
		if err := tx.InsertDevice(ctx, d); err != nil {
			return fmt.Errorf("insert console device: %w", err)
		}
		ls := LoginSession{ID: sessID, TokenHash: hash, PersonID: personID, DeviceID: devID, CreatedAt: now, ExpiresAt: out.ExpiresAt, MFAAt: now}
		if err := tx.InsertLoginSession(ctx, ls); err != nil {
			return fmt.Errorf("insert console session: %w", err)
		}
		if username != "" {
			if err := tx.DeleteLoginFailures(ctx, username, now.Add(-s.lockoutWindow)); err != nil {
				return fmt.Errorf("clear login failures: %w", err)
			}
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.console_login", Actor: personActor(personID), Subject: "session:" + sessID, Time: now,
			Data:     map[string]any{"device_id": devID, "method": method, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339)},
			Personal: map[string]string{"username": username, "source_ip": sourceIP, "device_name": name, "note": note}})
	})
	if err != nil {
		return Session{}, err
	}
	return out, nil
}

// AuthenticateConsole turns a console cookie's session token into its
// person, with every check Authenticate makes (ended, expired, revoked
// device, disabled account). A CLI session's token is refused here.
func (s *Service) AuthenticateConsole(ctx context.Context, token string) (wire.Principal, error) {
	if !strings.HasPrefix(token, SessionTokenPrefix) || len(token) > 128 {
		return wire.Principal{}, errSession("session_invalid", "The console session is not valid; sign in again.")
	}
	v, err := s.store.LoginSessionByTokenHash(ctx, hashToken(token))
	if s.store.IsNotFound(err) {
		return wire.Principal{}, errSession("session_invalid", "The console session is not valid; sign in again.")
	} else if err != nil {
		return wire.Principal{}, fmt.Errorf("load session: %w", err)
	}
	if !strings.HasPrefix(v.Device.JKT, consoleJKTPrefix) {
		return wire.Principal{}, errSession("session_invalid", "The console session is not valid; sign in again.")
	}
	return s.Authenticate(ctx, token, v.Device.JKT)
}

// RecordPasskeyMFA is step-up MFA by passkey: internal/passkey has verified
// an assertion made for one purpose (an approval's plan hash), and the
// calling session's second factor counts as fresh from now, exactly as
// after VerifyOTP.
func (s *Service) RecordPasskeyMFA(ctx context.Context, p wire.Principal, credentialID, purpose string) (time.Time, error) {
	if p.Kind != "person" || p.SessionID == "" {
		return time.Time{}, usererr.New(usererr.Forbidden, "not_a_person", "Only a person signed in with a session can prove a second factor.")
	}
	now := s.now()
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.SetLoginSessionMFA(ctx, p.SessionID, now); err != nil {
			return fmt.Errorf("set session mfa: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.passkey_mfa_verified", Actor: p.Actor(), Subject: "session:" + p.SessionID, Time: now,
			Data: map[string]any{"credential": credentialID, "purpose": purpose}})
	})
	if err != nil {
		return time.Time{}, err
	}
	return now, nil
}

func consoleTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
