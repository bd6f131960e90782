// Package passkey owns people's passkeys (WebAuthn credentials, through
// github.com/go-webauthn/webauthn): registering one from the web console,
// signing in with one, and proving a second factor with one for a single
// stated purpose, such as approving one plan hash.
//
// A ceremony (begin → browser → finish) is held in memory for two minutes
// and bound to what began it: the person and session for registration and
// step-up, the purpose's text for step-up. The challenge of a step-up is
// SHA-256 of the purpose and a random nonce, so the authenticator's
// signature covers the plan hash the approver is signing: an assertion
// made for one plan cannot approve another. User verification is required
// everywhere: a passkey stands for both factors.
package passkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ceremonyTTL is how long a begun ceremony may wait for the browser.
const ceremonyTTL = 2 * time.Minute

// maxCeremonies bounds the ceremonies held at once (anonymous sign-ins
// can begin them).
const maxCeremonies = 10_000

// maxPerPerson bounds one person's passkeys.
const maxPerPerson = 20

// Config configures the Service. Store, RPID and Origins are required.
type Config struct {
	Store Store
	// RPID is the relying party id: the host name browsers reach the
	// console by (never an IP address; WebAuthn refuses those).
	RPID string
	// Origins gives the exact origins the console is served from
	// ("https://localhost:8443"); it is asked once, at the first ceremony,
	// because the port is known only once the server listens.
	Origins func() []string
	// Names gives a person's username for the authenticator's display.
	Names func(ctx context.Context, personID string) (string, error)
	Now   func() time.Time // nil means time.Now
}

// Service registers and checks passkeys.
type Service struct {
	cfg    Config
	now    func() time.Time
	waOnce sync.Once
	wa     *webauthn.WebAuthn
	waErr  error

	mu         sync.Mutex
	ceremonies map[string]ceremony
}

type ceremonyKind int

const (
	kindRegister ceremonyKind = iota + 1
	kindSignIn
	kindStepUp
)

type ceremony struct {
	kind      ceremonyKind
	personID  string
	sessionID string
	purpose   string
	nonce     []byte
	data      webauthn.SessionData
	expires   time.Time
}

// New builds the Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.RPID == "" || cfg.Origins == nil {
		return nil, errors.New("passkey: Store, RPID and Origins are required")
	}
	s := &Service{cfg: cfg, now: cfg.Now, ceremonies: map[string]ceremony{}}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// webauthn returns the relying party, made at first use.
func (s *Service) webauthn() (*webauthn.WebAuthn, error) {
	s.waOnce.Do(func() {
		s.wa, s.waErr = webauthn.New(&webauthn.Config{RPID: s.cfg.RPID, RPDisplayName: "Interlock", RPOrigins: s.cfg.Origins(),
			AuthenticatorSelection: protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
				RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationRequired}})
		if s.waErr != nil {
			s.waErr = fmt.Errorf("passkey relying party %s: %w", s.cfg.RPID, s.waErr)
		}
	})
	return s.wa, s.waErr
}

// user is a person as go-webauthn sees them.
type user struct {
	id, name string
	creds    []webauthn.Credential
}

func (u user) WebAuthnID() []byte                         { return []byte(u.id) }
func (u user) WebAuthnName() string                       { return u.name }
func (u user) WebAuthnDisplayName() string                { return u.name }
func (u user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Service) loadUser(ctx context.Context, personID string) (user, []Passkey, error) {
	u := user{id: personID, name: personID}
	if s.cfg.Names != nil {
		if n, err := s.cfg.Names(ctx, personID); err == nil {
			u.name = n
		}
	}
	pks, err := s.cfg.Store.Passkeys(ctx, personID)
	if err != nil {
		return u, nil, fmt.Errorf("load passkeys of %s: %w", personID, err)
	}
	for _, pk := range pks {
		var c webauthn.Credential
		if err := json.Unmarshal(pk.Credential, &c); err != nil {
			return u, nil, fmt.Errorf("decode passkey %s: %w", pk.ID, err)
		}
		u.creds = append(u.creds, c)
	}
	return u, pks, nil
}

func (s *Service) hold(c ceremony) (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ceremonies) >= maxCeremonies {
		for k, v := range s.ceremonies {
			if now.After(v.expires) {
				delete(s.ceremonies, k)
			}
		}
		if len(s.ceremonies) >= maxCeremonies {
			return "", usererr.New(usererr.RateLimited, "passkey_busy", "Too many passkey ceremonies are under way; try again in a minute.")
		}
	}
	c.expires = now.Add(ceremonyTTL)
	s.ceremonies[id] = c
	return id, nil
}

// take removes and returns a ceremony of kind; it works once.
func (s *Service) take(id string, kind ceremonyKind) (ceremony, error) {
	s.mu.Lock()
	c, ok := s.ceremonies[id]
	delete(s.ceremonies, id)
	s.mu.Unlock()
	if !ok || c.kind != kind || s.now().After(c.expires) {
		return ceremony{}, usererr.New(usererr.Invalid, "passkey_ceremony_unknown",
			"This passkey request has expired or was already used; start again.")
	}
	return c, nil
}

func errAssertion(err error) error {
	return usererr.Wrap(err, usererr.Unauthenticated, "passkey_refused", "The passkey's answer was not accepted (%s).", protocolReason(err))
}

func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return pe.Details
	}
	return "it does not verify"
}

// Options is what the browser passes to navigator.credentials.
type Options struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

// BeginRegistration starts registering a passkey for the calling person.
func (s *Service) BeginRegistration(ctx context.Context, p wire.Principal) (Options, error) {
	u, pks, err := s.loadUser(ctx, p.ID)
	if err != nil {
		return Options{}, err
	}
	if len(pks) >= maxPerPerson {
		return Options{}, usererr.New(usererr.Conflict, "passkey_limit", "You have %d passkeys, the most one person may have; remove one first.", len(pks))
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	wa, err := s.webauthn()
	if err != nil {
		return Options{}, err
	}
	creation, data, err := wa.BeginRegistration(u, webauthn.WithExclusions(exclude))
	if err != nil {
		return Options{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	id, err := s.hold(ceremony{kind: kindRegister, personID: p.ID, sessionID: p.SessionID, data: *data})
	if err != nil {
		return Options{}, err
	}
	opts, err := json.Marshal(creation)
	return Options{Ceremony: id, Options: opts}, err
}

// FinishRegistration checks the browser's answer and stores the passkey,
// with its audit entry.
func (s *Service) FinishRegistration(ctx context.Context, p wire.Principal, ceremonyID, name string, response []byte) (Passkey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return Passkey{}, usererr.New(usererr.Invalid, "passkey_name", "Give the passkey a name of 1 to 64 characters, such as \"work laptop\".")
	}
	c, err := s.take(ceremonyID, kindRegister)
	if err != nil {
		return Passkey{}, err
	}
	if c.personID != p.ID || c.sessionID != p.SessionID {
		return Passkey{}, usererr.New(usererr.Forbidden, "passkey_ceremony_foreign", "This passkey request was begun by another session.")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Passkey{}, usererr.Wrap(err, usererr.Invalid, "passkey_response", "The browser's passkey answer could not be read (%s).", protocolReason(err))
	}
	u, _, err := s.loadUser(ctx, p.ID)
	if err != nil {
		return Passkey{}, err
	}
	wa, err := s.webauthn()
	if err != nil {
		return Passkey{}, err
	}
	cred, err := wa.CreateCredential(u, c.data, parsed)
	if err != nil {
		return Passkey{}, errAssertion(err)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return Passkey{}, err
	}
	now := s.now()
	pk := Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), PersonID: p.ID, Name: name, Credential: raw, CreatedAt: now}
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertPasskey(ctx, pk); err != nil {
			return fmt.Errorf("insert passkey: %w", err)
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "passkey.registered", Version: 1, Actor: p.Actor(), Subject: "passkey:" + pk.ID, Time: now,
			Data: map[string]any{"session_id": p.SessionID, "aaguid": fmt.Sprintf("%x", cred.Authenticator.AAGUID)}, Personal: map[string]string{"name": name}})
	})
	if err != nil {
		return Passkey{}, err
	}
	return pk, nil
}

// List returns a person's passkeys.
func (s *Service) List(ctx context.Context, personID string) ([]Passkey, error) {
	return s.cfg.Store.Passkeys(ctx, personID)
}

// Remove deletes one of the calling person's passkeys.
func (s *Service) Remove(ctx context.Context, p wire.Principal, id string) error {
	now := s.now()
	return s.cfg.Store.InTx(ctx, func(tx Tx) error {
		ok, err := tx.DeletePasskey(ctx, p.ID, id)
		if err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
		if !ok {
			return usererr.New(usererr.NotFound, "passkey_not_found", "You have no passkey %q; `interlock passkey list` shows yours.", id)
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "passkey.removed", Version: 1, Actor: p.Actor(), Subject: "passkey:" + id, Time: now})
	})
}

// BeginSignIn starts a sign-in with a discoverable passkey (no username).
func (s *Service) BeginSignIn(ctx context.Context) (Options, error) {
	wa, err := s.webauthn()
	if err != nil {
		return Options{}, err
	}
	assertion, data, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Options{}, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	id, err := s.hold(ceremony{kind: kindSignIn, data: *data})
	if err != nil {
		return Options{}, err
	}
	opts, err := json.Marshal(assertion)
	return Options{Ceremony: id, Options: opts}, err
}

// FinishSignIn checks a sign-in assertion and names the person and passkey.
func (s *Service) FinishSignIn(ctx context.Context, ceremonyID string, response []byte) (personID, passkeyID string, err error) {
	c, err := s.take(ceremonyID, kindSignIn)
	if err != nil {
		return "", "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", "", usererr.Wrap(err, usererr.Invalid, "passkey_response", "The browser's passkey answer could not be read (%s).", protocolReason(err))
	}
	var who user
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		pk, err := s.cfg.Store.Passkey(ctx, base64.RawURLEncoding.EncodeToString(rawID))
		if err != nil || !bytes.Equal([]byte(pk.PersonID), userHandle) {
			return nil, errors.New("unknown passkey")
		}
		u, _, err := s.loadUser(ctx, pk.PersonID)
		who = u
		return u, err
	}
	wa, err := s.webauthn()
	if err != nil {
		return "", "", err
	}
	cred, err := wa.ValidateDiscoverableLogin(handler, c.data, parsed)
	if err != nil {
		return "", "", errAssertion(err)
	}
	id, err := s.recordUse(ctx, cred)
	if err != nil {
		return "", "", err
	}
	return who.id, id, nil
}

// StepUpChallenge is the challenge of a step-up for purpose: what the
// authenticator signs covers the purpose (an approval's plan hash).
func StepUpChallenge(purpose string, nonce []byte) []byte {
	h := sha256.New()
	h.Write([]byte("interlock passkey step-up v1\x00"))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(nonce)
	return h.Sum(nil)
}

// BeginStepUp starts a second-factor proof by passkey for the calling
// session, for one purpose (e.g. "approve op_… plan sha256:…").
func (s *Service) BeginStepUp(ctx context.Context, p wire.Principal, purpose string) (Options, error) {
	if purpose == "" || len(purpose) > 512 {
		return Options{}, usererr.New(usererr.Invalid, "passkey_purpose", "Say what the passkey is proving (1 to 512 characters).")
	}
	u, _, err := s.loadUser(ctx, p.ID)
	if err != nil {
		return Options{}, err
	}
	if len(u.creds) == 0 {
		return Options{}, usererr.New(usererr.NotFound, "no_passkey", "You have no passkey; register one on the console's Passkeys page, or use a one-time code.")
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return Options{}, err
	}
	wa, err := s.webauthn()
	if err != nil {
		return Options{}, err
	}
	assertion, data, err := wa.BeginLogin(u, webauthn.WithChallenge(StepUpChallenge(purpose, nonce)),
		webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Options{}, fmt.Errorf("begin passkey step-up: %w", err)
	}
	id, err := s.hold(ceremony{kind: kindStepUp, personID: p.ID, sessionID: p.SessionID, purpose: purpose, nonce: nonce, data: *data})
	if err != nil {
		return Options{}, err
	}
	opts, err := json.Marshal(assertion)
	return Options{Ceremony: id, Options: opts}, err
}

// FinishStepUp checks a step-up assertion made for exactly purpose by the
// session that began it, and returns the passkey's id.
func (s *Service) FinishStepUp(ctx context.Context, p wire.Principal, ceremonyID, purpose string, response []byte) (string, error) {
	c, err := s.take(ceremonyID, kindStepUp)
	if err != nil {
		return "", err
	}
	if c.personID != p.ID || c.sessionID != p.SessionID {
		return "", usererr.New(usererr.Forbidden, "passkey_ceremony_foreign", "This passkey request was begun by another session.")
	}
	// The challenge the authenticator signed must be the one made for
	// this purpose: a ceremony begun for one plan hash never approves
	// another.
	want := base64.RawURLEncoding.EncodeToString(StepUpChallenge(purpose, c.nonce))
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.data.Challenge)) != 1 {
		return "", usererr.New(usererr.Forbidden, "passkey_purpose_mismatch", "This passkey answer was made for something else than %q; start again.", purpose)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", usererr.Wrap(err, usererr.Invalid, "passkey_response", "The browser's passkey answer could not be read (%s).", protocolReason(err))
	}
	u, _, err := s.loadUser(ctx, p.ID)
	if err != nil {
		return "", err
	}
	wa, err := s.webauthn()
	if err != nil {
		return "", err
	}
	cred, err := wa.ValidateLogin(u, c.data, parsed)
	if err != nil {
		return "", errAssertion(err)
	}
	return s.recordUse(ctx, cred)
}

// recordUse stores the new sign counter, refusing an authenticator that
// looks cloned (its counter went backwards).
func (s *Service) recordUse(ctx context.Context, cred *webauthn.Credential) (string, error) {
	id := base64.RawURLEncoding.EncodeToString(cred.ID)
	if cred.Authenticator.CloneWarning {
		return "", usererr.New(usererr.Forbidden, "passkey_cloned", "This passkey's signature counter went backwards, so it may have been copied; it is refused. Remove it and register a new one.")
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return "", err
	}
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error { return tx.UpdatePasskeyUse(ctx, id, raw, s.now()) })
	return id, err
}
