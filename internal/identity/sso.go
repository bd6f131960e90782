package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// SSOTx is what single sign-on needs from a transaction beyond [Tx]. The
// store's transaction implements it (internal/store/sso.go); it is kept
// apart from Tx so that stores without SSO (unit-test fakes) need not.
type SSOTx interface {
	// PersonIDBySSO returns the person linked to (issuer, subject), or an
	// error for which IsNotFound holds.
	PersonIDBySSO(ctx context.Context, issuer, subject string) (string, error)
	// InsertSSOIdentity links (issuer, subject) to personID.
	InsertSSOIdentity(ctx context.Context, issuer, subject, personID string, at time.Time) error
	// SSOIssuerOfPerson returns the issuer the person signs in through, or
	// "" for a local account.
	SSOIssuerOfPerson(ctx context.Context, personID string) (string, error)
}

// GrantedByIdP is the RoleGrant.GrantedBy prefix of roles an identity
// provider's groups gave (followed by the issuer URL): no Interlock
// person granted them.
const GrantedByIdP = "idp:"

// SSOSignIn is one sign-in an identity provider vouched for: internal/sso
// has verified the ID token (signature, issuer, audience, expiry, nonce)
// and mapped its claims to roles before calling [Service.SignInSSO].
type SSOSignIn struct {
	Issuer  string // the issuer URL, as in the token's iss
	Subject string // the token's sub
	// Username is the name the person would like (preferred_username or
	// email); it only names a new person, never finds an existing one.
	Username string
	// Roles are the roles the configured rules map the person's claims to;
	// they replace the person's roles (the IdP is the source of truth).
	Roles []string
	// MFAAt is when the IdP says the person last proved a second factor
	// (auth_time, when amr/acr say it was multi-factor); zero otherwise.
	MFAAt time.Time
	// SessionTTL, if shorter than Config.SessionTTL, caps the session.
	SessionTTL time.Duration

	DeviceJKT       string
	DevicePublicJWK string
	DeviceName      string
	SourceIP        string
}

// SSOSession is a new session of a person signed in through SSO.
type SSOSession struct {
	Session
	Username string
}

// SignInSSO starts a device-bound session for the person an identity
// provider vouched for, exactly as [Service.Login] does for a password:
// the session is bound to the device key that signed the request. The
// person is found by (issuer, subject); the first sign-in creates them
// (active, no password or TOTP, named after Username with a suffix if the
// name is taken — never linked to an existing account by name). A disabled
// person is refused even though the IdP vouched for them. The mapped roles
// replace the person's roles, recorded as granted by the IdP; a sign-in
// whose claims map to no role is refused.
func (s *Service) SignInSSO(ctx context.Context, in SSOSignIn) (SSOSession, error) {
	if in.Issuer == "" || in.Subject == "" || len(in.Subject) > 255 {
		return SSOSession{}, usererr.New(usererr.Unauthenticated, "sso_subject_missing", "The identity provider's token names no subject; Interlock cannot tell who you are.")
	}
	jkt, err := dpop.ThumbprintJWK(in.DevicePublicJWK)
	if err != nil || in.DeviceJKT == "" || subtle.ConstantTimeCompare([]byte(jkt), []byte(in.DeviceJKT)) != 1 {
		return SSOSession{}, usererr.New(usererr.Invalid, "device_key_mismatch",
			"The device key sent with the sign-in is not the one that signed the request's DPoP proof.")
	}
	roles := canonicalRoles(in.Roles)
	if len(roles) == 0 {
		return SSOSession{}, usererr.New(usererr.Forbidden, "sso_no_role",
			"Your identity provider account is in no group that Interlock maps to a role; ask an admin to add you to one.")
	}
	name := strings.TrimSpace(in.DeviceName)
	if name == "" {
		name = "unnamed device"
	}
	if len(name) > 128 {
		return SSOSession{}, usererr.New(usererr.Invalid, "login_too_long", "The device name is too long (at most 128 characters).")
	}
	now := s.now()
	ids := struct{ person, session, device string }{}
	for _, p := range []struct {
		dst    *string
		prefix string
	}{{&ids.person, "p_"}, {&ids.session, "ses_"}, {&ids.device, "dev_"}} {
		if *p.dst, err = s.newID(p.prefix); err != nil {
			return SSOSession{}, err
		}
	}
	token, hash, err := s.newToken(SessionTokenPrefix)
	if err != nil {
		return SSOSession{}, err
	}
	ttl := s.sessionTTL
	if in.SessionTTL > 0 && in.SessionTTL < ttl {
		ttl = in.SessionTTL
	}
	out := SSOSession{Session: Session{Token: token, ID: ids.session, ExpiresAt: now.Add(ttl)}}
	err = s.store.InTx(ctx, func(tx Tx) error {
		stx, ok := tx.(SSOTx)
		if !ok {
			return fmt.Errorf("identity: the store does not support single sign-on")
		}
		p, created, err := s.ssoPerson(ctx, tx, stx, in, ids.person, roles, now)
		if err != nil {
			return err
		}
		if p.Status != StatusActive {
			return usererr.New(usererr.Forbidden, "account_disabled", "Your Interlock account is disabled; your identity provider vouched for you, but an admin must enable the account (interlock user enable).")
		}
		if !created && !slices.Equal(canonicalRoles(p.Roles), roles) {
			if err := s.setSSORoles(ctx, tx, p, in.Issuer, roles, now); err != nil {
				return err
			}
		}
		out.PersonID, out.Username = p.ID, p.Username
		d, isNew, err := s.bindDevice(ctx, tx, p.ID, ids.device, jkt, in.DevicePublicJWK, name, now)
		if err != nil {
			return err
		}
		out.DeviceID, out.NewDevice = d, isNew
		ls := LoginSession{ID: ids.session, TokenHash: hash, PersonID: p.ID, DeviceID: d, CreatedAt: now, ExpiresAt: out.ExpiresAt, MFAAt: in.MFAAt}
		if err := tx.InsertLoginSession(ctx, ls); err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		data := map[string]any{"device_id": d, "new_device": out.NewDevice, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339),
			"issuer": in.Issuer, "roles": roles, "idp_mfa": !in.MFAAt.IsZero()}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.sso_login", Actor: personActor(p.ID), Subject: "session:" + ids.session, Time: now,
			Data: data, Personal: map[string]string{"username": p.Username, "subject": in.Subject, "source_ip": in.SourceIP, "device_name": name}})
	})
	if err != nil {
		return SSOSession{}, err
	}
	return out, nil
}

// ssoPerson finds the person linked to (issuer, subject), or creates and
// links a new one.
func (s *Service) ssoPerson(ctx context.Context, tx Tx, stx SSOTx, in SSOSignIn, newID string, roles []string, now time.Time) (Person, bool, error) {
	id, err := stx.PersonIDBySSO(ctx, in.Issuer, in.Subject)
	switch {
	case err == nil:
		p, err := tx.PersonByID(ctx, id)
		if err != nil {
			return Person{}, false, fmt.Errorf("load sso person: %w", err)
		}
		return p, false, nil
	case !s.store.IsNotFound(err):
		return Person{}, false, fmt.Errorf("look up sso identity: %w", err)
	}
	username, err := s.freeUsername(ctx, tx, ssoUsername(in.Username, in.Issuer, in.Subject))
	if err != nil {
		return Person{}, false, err
	}
	p := Person{ID: newID, Username: username, Roles: roles, Status: StatusActive, CreatedAt: now}
	if err := tx.InsertPerson(ctx, p); err != nil {
		return Person{}, false, fmt.Errorf("insert sso person: %w", err)
	}
	if err := stx.InsertSSOIdentity(ctx, in.Issuer, in.Subject, p.ID, now); err != nil {
		return Person{}, false, fmt.Errorf("link sso identity: %w", err)
	}
	if err := tx.ReplaceRoleGrants(ctx, p.ID, now, idpGrants(p.ID, in.Issuer, roles, now)); err != nil {
		return Person{}, false, fmt.Errorf("record role grants: %w", err)
	}
	err = appendAudit(ctx, tx, audit.Entry{Kind: "identity.sso_person_created", Actor: "idp:" + in.Issuer, Subject: personSubject(p.ID), Time: now,
		Data: map[string]any{"issuer": in.Issuer, "roles": roles}, Personal: map[string]string{"username": username, "subject": in.Subject}})
	return p, true, err
}

// setSSORoles replaces an SSO person's roles with what the IdP's claims
// map to now: a person removed from a group loses its role at their next
// sign-in.
func (s *Service) setSSORoles(ctx context.Context, tx Tx, p Person, issuer string, roles []string, now time.Time) error {
	if err := tx.SetPersonRoles(ctx, p.ID, roles); err != nil {
		return fmt.Errorf("set sso roles: %w", err)
	}
	if err := tx.ReplaceRoleGrants(ctx, p.ID, now, idpGrants(p.ID, issuer, roles, now)); err != nil {
		return fmt.Errorf("record role grants: %w", err)
	}
	return appendAudit(ctx, tx, audit.Entry{Kind: "identity.sso_roles_changed", Actor: "idp:" + issuer, Subject: personSubject(p.ID), Time: now,
		Data: map[string]any{"previous_roles": canonicalRoles(p.Roles), "roles": roles}, Personal: map[string]string{"username": p.Username}})
}

func idpGrants(personID, issuer string, roles []string, now time.Time) []RoleGrant {
	out := make([]RoleGrant, 0, len(roles))
	for _, r := range roles {
		out = append(out, RoleGrant{PersonID: personID, Role: r, GrantedBy: GrantedByIdP + issuer, GrantedAt: now})
	}
	return out
}

// bindDevice registers the device key for personID or touches it, as
// password sign-in does (session.go's Login, kept apart so that the two
// sign-ins can change independently): a key another person registered, or
// a revoked key, is refused.
func (s *Service) bindDevice(ctx context.Context, tx Tx, personID, newID, jkt, jwk, name string, now time.Time) (string, bool, error) {
	d, err := tx.DeviceByJKT(ctx, jkt)
	switch {
	case s.store.IsNotFound(err):
		d = Device{ID: newID, PersonID: personID, JKT: jkt, PublicJWK: jwk, Name: name, CreatedAt: now, LastUsed: now}
		if err := tx.InsertDevice(ctx, d); err != nil {
			return "", false, fmt.Errorf("insert device: %w", err)
		}
		return d.ID, true, appendAudit(ctx, tx, audit.Entry{Kind: "identity.device_registered", Actor: personActor(personID), Subject: "device:" + d.ID,
			Time: now, Data: map[string]any{"jkt": jkt}, Personal: map[string]string{"device_name": name}})
	case err != nil:
		return "", false, fmt.Errorf("load device: %w", err)
	case d.PersonID != personID:
		return "", false, usererr.New(usererr.Conflict, "device_key_in_use",
			"This device key belongs to another account; sign in with a profile of your own (--profile) so that a new key is made.")
	case !d.RevokedAt.IsZero():
		return "", false, usererr.New(usererr.Forbidden, "device_revoked",
			"This device key has been revoked; sign in with a new key (a new --profile, or delete this profile's device.key).")
	}
	if err := tx.TouchDevice(ctx, d.ID, now); err != nil {
		return "", false, fmt.Errorf("touch device: %w", err)
	}
	return d.ID, false, nil
}

// canonicalRoles returns the known roles of rs, each once, in Roles order.
func canonicalRoles(rs []string) []string {
	var out []string
	for _, r := range Roles {
		if slices.Contains(rs, r) {
			out = append(out, r)
		}
	}
	return out
}

// ssoUsername turns what the IdP calls the person into a valid Interlock
// username: lower case, other characters as '-', an email's domain cut
// off; with nothing usable, "sso-" and a hash of (issuer, subject).
func ssoUsername(want, issuer, subject string) string {
	want = strings.ToLower(strings.TrimSpace(want))
	if i := strings.IndexByte(want, '@'); i >= 0 {
		want = want[:i]
	}
	var b strings.Builder
	for _, c := range want {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	u := strings.Trim(b.String(), "-._")
	if len(u) > 56 {
		u = u[:56]
	}
	if validateUsername(u) != nil {
		sum := sha256.Sum256([]byte(issuer + "\x00" + subject))
		u = "sso-" + hex.EncodeToString(sum[:6])
	}
	return u
}

// freeUsername returns base, or base-2, base-3, … when it is taken.
func (s *Service) freeUsername(ctx context.Context, tx Tx, base string) (string, error) {
	for i := 1; i <= 100; i++ {
		u := base
		if i > 1 {
			u = fmt.Sprintf("%s-%d", base, i)
		}
		_, err := tx.PersonByUsername(ctx, u)
		if s.store.IsNotFound(err) {
			return u, nil
		} else if err != nil {
			return "", fmt.Errorf("check username: %w", err)
		}
	}
	return "", usererr.New(usererr.Conflict, "sso_username_taken", "Every username derived from %q is taken; ask an admin.", base)
}

// ssoIssuerOf returns the issuer a person signs in through ("" for a local
// account), or "" when the store keeps no SSO links.
func (s *Service) ssoIssuerOf(ctx context.Context, tx Tx, personID string) (string, error) {
	stx, ok := tx.(SSOTx)
	if !ok {
		return "", nil
	}
	iss, err := stx.SSOIssuerOfPerson(ctx, personID)
	if err != nil {
		return "", fmt.Errorf("look up sso issuer of %s: %w", personID, err)
	}
	return iss, nil
}

// StepUpEnrolmentMaxAge is how fresh the IdP's second factor must be for
// an SSO person to enrol an Interlock authenticator for step-up.
const StepUpEnrolmentMaxAge = 5 * time.Minute

// EnrolStepUpTOTP gives a person who signs in through SSO an Interlock
// TOTP seed of their own, for step-up MFA (approving) when their IdP
// session is older than five minutes. Enrolling needs a second factor the
// IdP attested in the last five minutes (interlock login --sso --fresh),
// so a copied session cannot give itself one; a new enrolment replaces
// the old seed. Local accounts have theirs from enrolment.
func (s *Service) EnrolStepUpTOTP(ctx context.Context, by wire.Principal) (Enrollment, error) {
	if by.Kind != "person" || by.SessionID == "" {
		return Enrollment{}, usererr.New(usererr.Forbidden, "not_a_person", "Only a person signed in with a session can enrol an authenticator.")
	}
	now := s.now()
	if by.MFAAt.IsZero() || now.Sub(by.MFAAt) > StepUpEnrolmentMaxAge {
		return Enrollment{}, usererr.New(usererr.Forbidden, "mfa_not_fresh",
			"Enrolling an authenticator needs a second factor your identity provider attested in the last 5 minutes: run interlock login --sso --fresh, then try again.")
	}
	p, err := s.store.PersonByID(ctx, by.ID)
	if err != nil {
		return Enrollment{}, fmt.Errorf("load person %s: %w", by.ID, err)
	}
	secret, uri, err := s.newTOTP(p.Username)
	if err != nil {
		return Enrollment{}, err
	}
	sealed, err := s.sealer.Seal([]byte(secret), totpAAD(p.ID))
	if err != nil {
		return Enrollment{}, fmt.Errorf("seal totp seed: %w", err)
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		iss, err := s.ssoIssuerOf(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		if iss == "" {
			return usererr.New(usererr.Conflict, "not_sso", "You have an Interlock authenticator from your enrolment; to replace a lost one, use interlock user recover.")
		}
		cur, err := tx.PersonByID(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("reload person: %w", err)
		}
		if cur.Status != StatusActive {
			return usererr.New(usererr.Forbidden, "account_disabled", "This account is disabled; ask an admin.")
		}
		if err := tx.SetPersonCredentials(ctx, p.ID, cur.PasswordSealed, sealed, StatusActive); err != nil {
			return fmt.Errorf("set totp: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.stepup_totp_enrolled", Actor: by.Actor(), Subject: personSubject(p.ID), Time: now,
			Data: map[string]any{"issuer": iss, "replaced": len(cur.TOTPSealed) > 0}, Personal: map[string]string{"username": p.Username}})
	})
	if err != nil {
		return Enrollment{}, err
	}
	return Enrollment{PersonID: p.ID, Username: p.Username, TOTPSecret: Secret(secret), TOTPURI: Secret(uri)}, nil
}
