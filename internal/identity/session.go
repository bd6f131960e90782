package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// LoginRequest is one sign-in. DeviceJKT is the thumbprint of the key that
// signed the request's DPoP proof (from dpop.Verifier.Verify), and
// DevicePublicJWK that key; Login checks that they agree, so the session
// is bound to a key the caller has just proven it holds.
type LoginRequest struct {
	Username        string
	Password        string
	OTP             string
	DeviceJKT       string
	DevicePublicJWK string
	DeviceName      string
	SourceIP        string
}

// Session is a new signed-in session. Token is shown to the client once;
// the server keeps only its hash.
type Session struct {
	Token     Secret // ilk_sess_…, 256 random bits
	ID        string
	PersonID  string
	DeviceID  string
	NewDevice bool
	ExpiresAt time.Time
}

func errLoginFailed() error {
	return usererr.New(usererr.Unauthenticated, "login_failed", "The username, password or one-time code is wrong.")
}

// Login checks password and TOTP code, registers the device (bound to its
// key's thumbprint) and starts a session (Config.SessionTTL, 12 h). After
// Config.MaxFailures failures in Config.LockoutWindow the account is locked
// (RateLimited) until the window passes, even for the right password. The
// error never says whether the user exists.
func (s *Service) Login(ctx context.Context, req LoginRequest) (Session, error) {
	if req.Username == "" || req.Password == "" || req.OTP == "" {
		return Session{}, usererr.New(usererr.Invalid, "login_incomplete", "Signing in needs a username, a password and a one-time code.")
	}
	if len(req.Username) > 64 || len(req.Password) > MaxPasswordLength || len(req.OTP) > 16 || len(req.DeviceName) > 128 {
		return Session{}, usererr.New(usererr.Invalid, "login_too_long", "A username, password, one-time code or device name is too long.")
	}
	jkt, err := dpop.ThumbprintJWK(req.DevicePublicJWK)
	if err != nil || req.DeviceJKT == "" || subtle.ConstantTimeCompare([]byte(jkt), []byte(req.DeviceJKT)) != 1 {
		return Session{}, usererr.New(usererr.Invalid, "device_key_mismatch",
			"The device key sent with the sign-in is not the one that signed the request's DPoP proof.")
	}
	// Only a well-formed username reaches the lockout counter: the
	// counters of step-up MFA are keyed by names no username can take.
	if err := validateUsername(req.Username); err != nil {
		return Session{}, err
	}
	name := strings.TrimSpace(req.DeviceName)
	if name == "" {
		name = "unnamed device"
	}
	now := s.now()
	if err := s.checkLockout(ctx, req.Username, req.SourceIP, now); err != nil {
		return Session{}, err
	}

	p, err := s.store.PersonByUsername(ctx, req.Username)
	// A person who signs in through SSO has no password: never "known" here.
	known := err == nil && p.Status == StatusActive && len(p.PasswordSealed) > 0
	if err != nil && !s.store.IsNotFound(err) {
		return Session{}, fmt.Errorf("load person: %w", err)
	}
	ok, err := s.checkPassword(ctx, p, known, req.Password)
	if err != nil {
		return Session{}, err
	}
	var step int64
	if ok {
		step, ok, err = s.checkOTP(p, req.OTP, now)
		if err != nil {
			return Session{}, err
		}
	}
	if !ok {
		return Session{}, s.recordFailure(ctx, "identity.login_failed", p.ID, req.Username, req.SourceIP, "bad_credentials", now)
	}

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
	out := Session{Token: token, ID: sessID, PersonID: p.ID, ExpiresAt: now.Add(s.sessionTTL)}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if ok, err := tx.AdvancePersonTOTPStep(ctx, p.ID, step); err != nil {
			return fmt.Errorf("advance totp step: %w", err)
		} else if !ok {
			return errOTPReplay
		}
		cur, err := tx.PersonByID(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("reload person: %w", err)
		}
		if cur.Status != StatusActive {
			return errLoginFailed()
		}
		d, err := tx.DeviceByJKT(ctx, jkt)
		switch {
		case s.store.IsNotFound(err):
			d = Device{ID: devID, PersonID: p.ID, JKT: jkt, PublicJWK: req.DevicePublicJWK, Name: name, CreatedAt: now, LastUsed: now}
			if err := tx.InsertDevice(ctx, d); err != nil {
				return fmt.Errorf("insert device: %w", err)
			}
			out.NewDevice = true
			if err := appendAudit(ctx, tx, audit.Entry{Kind: "identity.device_registered", Actor: personActor(p.ID), Subject: "device:" + d.ID,
				Time: now, Data: map[string]any{"jkt": jkt}, Personal: map[string]string{"device_name": name}}); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("load device: %w", err)
		case d.PersonID != p.ID:
			return usererr.New(usererr.Conflict, "device_key_in_use",
				"This device key belongs to another account; sign in with a profile of your own (--profile) so that a new key is made.")
		case !d.RevokedAt.IsZero():
			return usererr.New(usererr.Forbidden, "device_revoked",
				"This device key has been revoked; sign in with a new key (a new --profile, or delete this profile's device.key).")
		default:
			if err := tx.TouchDevice(ctx, d.ID, now); err != nil {
				return fmt.Errorf("touch device: %w", err)
			}
		}
		out.DeviceID = d.ID
		ls := LoginSession{ID: sessID, TokenHash: hash, PersonID: p.ID, DeviceID: d.ID, CreatedAt: now, ExpiresAt: out.ExpiresAt, MFAAt: now}
		if err := tx.InsertLoginSession(ctx, ls); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		if err := tx.DeleteLoginFailures(ctx, req.Username, now.Add(-s.lockoutWindow)); err != nil {
			return fmt.Errorf("clear login failures: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.login", Actor: personActor(p.ID), Subject: "session:" + sessID, Time: now,
			Data:     map[string]any{"device_id": d.ID, "new_device": out.NewDevice, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339)},
			Personal: map[string]string{"username": req.Username, "source_ip": req.SourceIP, "device_name": name}})
	})
	if errors.Is(err, errOTPReplay) {
		return Session{}, s.recordFailure(ctx, "identity.login_failed", p.ID, req.Username, req.SourceIP, "otp_replayed", now)
	}
	if err != nil {
		return Session{}, err
	}
	return out, nil
}

// checkPassword verifies password against p's hash, or against a dummy hash
// when the person is unknown, so that both take the same time.
func (s *Service) checkPassword(ctx context.Context, p Person, known bool, password string) (bool, error) {
	if err := s.acquireHash(ctx); err != nil {
		return false, err
	}
	defer s.releaseHash()
	if !known {
		s.dummyOnce.Do(func() { s.dummy = hashPassword("not a password of anyone", make([]byte, saltLen), s.argon) })
		_, _ = checkPassword(s.dummy, password)
		return false, nil
	}
	phc, err := s.sealer.Open(p.PasswordSealed, passwordAAD(p.ID))
	if err != nil {
		return false, fmt.Errorf("open password hash of %s: %w", p.ID, err)
	}
	ok, err := checkPassword(string(phc), password)
	if err != nil {
		return false, fmt.Errorf("check password of %s: %w", p.ID, err)
	}
	return ok, nil
}

// checkOTP returns the time step of code for p, or false.
func (s *Service) checkOTP(p Person, code string, now time.Time) (int64, bool, error) {
	seed, err := s.sealer.Open(p.TOTPSealed, totpAAD(p.ID))
	if err != nil {
		return 0, false, fmt.Errorf("open totp seed of %s: %w", p.ID, err)
	}
	if s.totpNow != nil {
		now = s.totpNow()
	}
	step, ok, err := totpStep(string(seed), code, now)
	if err != nil || !ok {
		return 0, false, err
	}
	if step <= p.TOTPLastStep {
		return 0, false, nil // replayed, or older than the last code used
	}
	return step, true, nil
}

// checkLockout refuses when username has MaxFailures failures in the window.
// checkLockout reserves one attempt for username, counted as a failure
// until a success clears it, or refuses when the account already has
// MaxFailures within the window. Reserving before the password is checked
// is what makes the limit hold against many concurrent attempts.
func (s *Service) checkLockout(ctx context.Context, username, sourceIP string, now time.Time) error {
	var reserved bool
	if err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		reserved, err = tx.ReserveLoginAttempt(ctx, username, now.Add(-s.lockoutWindow), now, s.maxFailures)
		return err
	}); err != nil {
		return fmt.Errorf("reserve login attempt: %w", err)
	}
	if reserved {
		return nil
	}
	fails, err := s.store.LoginFailuresSince(ctx, username, now.Add(-s.lockoutWindow))
	if err != nil {
		return fmt.Errorf("load login failures: %w", err)
	}
	until := now.Add(s.lockoutWindow)
	if len(fails) >= s.maxFailures {
		until = fails[len(fails)-s.maxFailures].Add(s.lockoutWindow)
	}
	if s.firstRefusalOfLock(username, until, now) {
		err = s.store.InTx(ctx, func(tx Tx) error {
			return appendAudit(ctx, tx, audit.Entry{Kind: "identity.login_locked", Actor: "anonymous", Time: now,
				Data:     map[string]any{"until": until.UTC().Format(time.RFC3339)},
				Personal: map[string]string{"username": username, "source_ip": sourceIP}})
		})
		if err != nil {
			return err
		}
	}
	what := "sign-ins for this account: it is"
	if strings.HasPrefix(username, "step-up:") {
		what = "one-time codes on your sessions: proving a second factor is"
	}
	ue := usererr.New(usererr.RateLimited, "account_locked",
		"Too many failed %s locked until %s UTC. Wait until then, or ask an admin.", what, until.UTC().Format("15:04:05"))
	ue.Details = map[string]any{"retry_after_s": int(until.Sub(now).Seconds()) + 1}
	return ue
}

// firstRefusalOfLock reports whether this refusal is the first this
// process sees of username's lock ending at until (and notes it). The map
// is bounded: expired notes are dropped, and when it is still full every
// refusal is audited again (more entries, never fewer).
func (s *Service) firstRefusalOfLock(username string, until, now time.Time) bool {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if noted, ok := s.lockNoted[username]; ok && !until.After(noted) && now.Before(noted) {
		return false
	}
	if s.lockNoted == nil {
		s.lockNoted = map[string]time.Time{}
	}
	if len(s.lockNoted) >= maxLockNotes {
		for k, t := range s.lockNoted {
			if !now.Before(t) {
				delete(s.lockNoted, k)
			}
		}
		if len(s.lockNoted) >= maxLockNotes {
			return true
		}
	}
	s.lockNoted[username] = until
	return true
}

const maxLockNotes = 10_000

// recordFailure audits one failed sign-in in its own transaction and
// returns the error for the caller. The failure itself was counted when
// checkLockout reserved the attempt.
func (s *Service) recordFailure(ctx context.Context, kind, personID, username, sourceIP, reason string, now time.Time) error {
	subject := ""
	personal := map[string]string{"source_ip": sourceIP}
	if personID != "" {
		subject = personSubject(personID)
		personal["username"] = username
	} // else the "username" may be a password typed into the wrong field: not kept
	err := s.store.InTx(ctx, func(tx Tx) error {
		// Housekeeping: forget everyone's failures older than the window.
		if err := tx.DeleteLoginFailures(ctx, "", now.Add(-s.lockoutWindow)); err != nil {
			return fmt.Errorf("prune login failures: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: kind, Actor: "anonymous", Subject: subject, Time: now,
			Data: map[string]any{"reason": reason}, Personal: personal})
	})
	if err != nil {
		return err
	}
	if kind == "identity.mfa_failed" {
		return usererr.New(usererr.Forbidden, "otp_wrong", "The one-time code is wrong or was already used; wait for the next one and try again.")
	}
	return errLoginFailed()
}

func errSession(code, msg string) error {
	return usererr.New(usererr.Unauthenticated, code, "%s", msg)
}

// Authenticate turns a session token, presented with a DPoP proof whose
// key has thumbprint jkt, into the caller's Principal. It reads the store
// on every call (no cache), so logging out, revoking a device and disabling
// a person take effect on the very next request.
func (s *Service) Authenticate(ctx context.Context, token, jkt string) (wire.Principal, error) {
	if !strings.HasPrefix(token, SessionTokenPrefix) || len(token) > 128 {
		return wire.Principal{}, errSession("session_invalid", "The session token is not valid; sign in again with interlock login.")
	}
	v, err := s.store.LoginSessionByTokenHash(ctx, hashToken(token))
	if s.store.IsNotFound(err) {
		return wire.Principal{}, errSession("session_invalid", "The session token is not valid; sign in again with interlock login.")
	} else if err != nil {
		return wire.Principal{}, fmt.Errorf("load session: %w", err)
	}
	// The key check comes first: without the device key a copied token
	// learns nothing, not even whether it has expired.
	if jkt == "" || subtle.ConstantTimeCompare([]byte(jkt), []byte(v.Device.JKT)) != 1 {
		return wire.Principal{}, errSession("device_mismatch", "The request was not signed with the key of the device this session belongs to.")
	}
	now := s.now()
	switch {
	case !v.Device.RevokedAt.IsZero():
		return wire.Principal{}, errSession("device_revoked", "This device has been revoked; sign in again to register a new one.")
	case !v.Session.RevokedAt.IsZero():
		return wire.Principal{}, errSession("session_ended", "This session has ended (logged out or revoked); sign in again with interlock login.")
	case !now.Before(v.Session.ExpiresAt):
		return wire.Principal{}, errSession("session_expired", "This session has expired; sign in again with interlock login.")
	case v.Person.Status != StatusActive:
		return wire.Principal{}, errSession("account_disabled", "This account is disabled; ask an admin.")
	}
	return wire.Principal{
		Kind: "person", ID: v.Person.ID, Name: v.Person.Username, Roles: append([]string(nil), v.Person.Roles...),
		DeviceID: v.Device.ID, SessionID: v.Session.ID, MFAAt: v.Session.MFAAt,
	}, nil
}

// VerifyOTP is step-up MFA: it checks a fresh TOTP code for the calling
// person (single-use, like at sign-in) and records the time on the calling
// session, which Authenticate then reports as Principal.MFAAt. Failures
// count toward a lockout of the person's step-up, kept apart from the
// sign-in lockout: anyone can lock a username's sign-in by guessing, and
// that must not stop people already signed in from approving or breaking
// glass; only someone holding one of the person's sessions can fill this
// one.
func (s *Service) VerifyOTP(ctx context.Context, p wire.Principal, code string) (time.Time, error) {
	if p.Kind != "person" || p.SessionID == "" {
		return time.Time{}, usererr.New(usererr.Forbidden, "not_a_person", "Only a person signed in with a session can prove a second factor.")
	}
	now := s.now()
	if err := s.checkLockout(ctx, stepUpLockoutKey(p.ID), "", now); err != nil {
		return time.Time{}, err
	}
	person, err := s.store.PersonByID(ctx, p.ID)
	if err != nil {
		return time.Time{}, fmt.Errorf("load person %s: %w", p.ID, err)
	}
	if len(person.TOTPSealed) == 0 {
		return time.Time{}, usererr.New(usererr.Forbidden, "no_totp",
			"You sign in through your identity provider and have no Interlock authenticator: run interlock login --sso --fresh to prove a fresh second factor there (then interlock user totp-enrol gives you one for later).")
	}
	step, ok, err := s.checkOTP(person, code, now)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, s.recordFailure(ctx, "identity.mfa_failed", p.ID, p.Name, "", "bad_otp", now)
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if ok, err := tx.AdvancePersonTOTPStep(ctx, p.ID, step); err != nil {
			return fmt.Errorf("advance totp step: %w", err)
		} else if !ok {
			return errOTPReplay
		}
		if err := tx.SetLoginSessionMFA(ctx, p.SessionID, now); err != nil {
			return fmt.Errorf("set session mfa: %w", err)
		}
		// A proven second factor clears the attempts checkLockout reserved.
		if err := tx.DeleteLoginFailures(ctx, stepUpLockoutKey(p.ID), now.Add(-s.lockoutWindow)); err != nil {
			return fmt.Errorf("clear login failures: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.mfa_verified", Actor: p.Actor(), Subject: "session:" + p.SessionID, Time: now})
	})
	if errors.Is(err, errOTPReplay) {
		return time.Time{}, s.recordFailure(ctx, "identity.mfa_failed", p.ID, p.Name, "", "otp_replayed", now)
	}
	if err != nil {
		return time.Time{}, err
	}
	return now, nil
}

// stepUpLockoutKey is the lockout counter of a person's step-up MFA; the
// ':' keeps it apart from every username (validateUsername).
func stepUpLockoutKey(personID string) string { return "step-up:" + personID }

// Logout ends the caller's session.
func (s *Service) Logout(ctx context.Context, p wire.Principal) error {
	if p.Kind != "person" || p.SessionID == "" {
		return usererr.New(usererr.Invalid, "no_session", "Only a person's session can log out.")
	}
	now := s.now()
	return s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.RevokeLoginSession(ctx, p.SessionID, now); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.logout", Actor: p.Actor(), Subject: "session:" + p.SessionID, Time: now})
	})
}
