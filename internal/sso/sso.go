// Package sso signs people in through OpenID Connect identity providers
// (github.com/coreos/go-oidc/v3 verifies the ID tokens).
//
// The server mediates the whole exchange as a confidential client, so the
// client secret never reaches a person's machine and the session it mints
// is bound to the CLI's device key exactly as a password login's is:
//
//  1. The CLI calls [Service.Start] with a DPoP proof of its device key and
//     a loopback redirect URI (RFC 8252). The server makes the state, the
//     nonce and the PKCE verifier (RFC 7636), keeps them bound to that key
//     (state and nonce only as hashes, the verifier sealed), and answers
//     the IdP's authorization URL.
//  2. The person signs in at the IdP in a browser, which brings the code
//     back to the CLI's loopback listener.
//  3. The CLI calls [Service.Finish] with the state and code, signed by the
//     same device key. The server marks the sign-in used (a code works
//     once), exchanges the code with its secret and the verifier, verifies
//     the ID token (signature, issuer, allowed audience, expiry, nonce),
//     maps its claims to roles and lets internal/identity mint the session.
//
// A code caught on its way to the CLI is useless without the device key
// that started the sign-in. Every refusal is a sentence and an audit entry
// (identity.sso_login_failed), and changes nothing else.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// DefaultLoginTTL is how long a started sign-in may take to finish.
const DefaultLoginTTL = 10 * time.Minute

// Store keeps sign-ins in flight; internal/store implements it.
type Store interface {
	InTx(ctx context.Context, fn func(Tx) error) error
	IsNotFound(err error) bool
}

// Tx is one transaction of a Store.
type Tx interface {
	audit.Tx
	InsertSSOLogin(ctx context.Context, l PendingLogin) error
	SSOLoginByStateHash(ctx context.Context, stateHash []byte) (PendingLogin, error)
	// UseSSOLogin marks the sign-in used if it was not, and reports
	// whether it did; it MUST be one conditional write.
	UseSSOLogin(ctx context.Context, id string, at time.Time) (bool, error)
}

// PendingLogin is a started sign-in.
type PendingLogin struct {
	ID             string
	StateHash      []byte
	IssuerName     string
	JKT            string // the device key that started it
	RedirectURI    string
	NonceHash      []byte
	VerifierSealed []byte
	CreatedAt      time.Time
	ExpiresAt      time.Time
	UsedAt         time.Time
}

// Config configures a Service.
type Config struct {
	Store    Store
	Sealer   identity.Sealer
	Identity *identity.Service
	Issuers  []config.SSOIssuer
	// ResolveSecret reads a client secret reference ("env:NAME",
	// "secret:PATH") when a sign-in needs it.
	ResolveSecret func(ctx context.Context, ref string) (string, error)
	// HTTPClient talks to the IdPs; nil means http.DefaultClient.
	HTTPClient *http.Client
	LoginTTL   time.Duration // 0 means DefaultLoginTTL
	Now        func() time.Time
	Rand       io.Reader
	Log        *slog.Logger
}

// Service runs SSO sign-ins. It is safe for concurrent use.
type Service struct {
	cfg     Config
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	issuers map[string]config.SSOIssuer
	names   []string

	mu        sync.Mutex
	providers map[string]*oidc.Provider
}

// New returns a Service for cfg.Issuers (none is fine: every sign-in is
// then refused with a sentence).
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sealer == nil || cfg.Identity == nil || cfg.ResolveSecret == nil {
		return nil, errors.New("sso: Store, Sealer, Identity and ResolveSecret are required")
	}
	s := &Service{cfg: cfg, now: cfg.Now, rand: cfg.Rand, log: cfg.Log, issuers: map[string]config.SSOIssuer{}, providers: map[string]*oidc.Provider{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.LoginTTL <= 0 {
		s.cfg.LoginTTL = DefaultLoginTTL
	}
	if s.cfg.HTTPClient == nil {
		s.cfg.HTTPClient = http.DefaultClient
	}
	for _, is := range cfg.Issuers {
		s.issuers[is.Name] = is
		s.names = append(s.names, is.Name)
	}
	return s, nil
}

// Issuers lists the configured issuers' names.
func (s *Service) Issuers() []string { return slices.Clone(s.names) }

// StartRequest starts a sign-in. DeviceJKT is the thumbprint of the key
// that signed the request's DPoP proof.
type StartRequest struct {
	Issuer      string // a configured name; "" when exactly one is configured
	RedirectURI string // the CLI's loopback listener
	// Fresh asks the IdP to authenticate the person again (prompt=login,
	// max_age=0), for a fresh second factor before approving.
	Fresh     bool
	DeviceJKT string
	SourceIP  string
}

// Started is what the CLI opens in the browser.
type Started struct {
	AuthURL   string
	State     string
	Issuer    string
	ExpiresAt time.Time
}

// Start begins a sign-in bound to the calling device key.
func (s *Service) Start(ctx context.Context, in StartRequest) (Started, error) {
	is, err := s.issuer(in.Issuer)
	if err != nil {
		return Started{}, err
	}
	if in.DeviceJKT == "" {
		return Started{}, usererr.New(usererr.Unauthenticated, "dpop_invalid", "Starting a sign-in needs a DPoP proof of your device key.")
	}
	if err := checkRedirect(in.RedirectURI); err != nil {
		return Started{}, err
	}
	p, err := s.provider(is)
	if err != nil {
		return Started{}, err
	}
	now := s.now()
	id, state, nonce := s.randText(10), s.randText(32), s.randText(32)
	if id == "" || state == "" || nonce == "" {
		return Started{}, errors.New("sso: read random")
	}
	id = "sso_" + id
	verifier := oauth2.GenerateVerifier()
	sealed, err := s.cfg.Sealer.Seal([]byte(verifier), verifierAAD(id))
	if err != nil {
		return Started{}, fmt.Errorf("seal pkce verifier: %w", err)
	}
	l := PendingLogin{ID: id, StateHash: hash(state), IssuerName: is.Name, JKT: in.DeviceJKT, RedirectURI: in.RedirectURI,
		NonceHash: hash(nonce), VerifierSealed: sealed, CreatedAt: now, ExpiresAt: now.Add(s.cfg.LoginTTL)}
	if err := s.cfg.Store.InTx(ctx, func(tx Tx) error { return tx.InsertSSOLogin(ctx, l) }); err != nil {
		return Started{}, fmt.Errorf("store sso login: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if in.Fresh {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	oc := s.oauth2Config(is, p, "", in.RedirectURI)
	return Started{AuthURL: oc.AuthCodeURL(state, opts...), State: state, Issuer: is.Name, ExpiresAt: l.ExpiresAt}, nil
}

// FinishRequest completes a sign-in with what the IdP sent to the
// loopback redirect. DeviceJKT and DevicePublicJWK come from the
// request's DPoP proof, as at password sign-in.
type FinishRequest struct {
	State, Code     string
	DeviceJKT       string
	DevicePublicJWK string
	DeviceName      string
	SourceIP        string
}

// Finish exchanges the code, verifies the ID token and mints a session
// bound to the device key that started the sign-in.
func (s *Service) Finish(ctx context.Context, in FinishRequest) (identity.SSOSession, error) {
	issuerURL, subject := "", ""
	sess, err := s.finish(ctx, in, &issuerURL, &subject)
	if err != nil {
		if ue, ok := usererr.As(err); ok {
			if aerr := s.recordFailure(ctx, issuerURL, subject, in.SourceIP, ue.Code); aerr != nil {
				return identity.SSOSession{}, aerr
			}
		}
		return identity.SSOSession{}, err
	}
	return sess, nil
}

func (s *Service) finish(ctx context.Context, in FinishRequest, issuerURL, subject *string) (identity.SSOSession, error) {
	if in.State == "" || in.Code == "" || len(in.State) > 128 || len(in.Code) > 4096 {
		return identity.SSOSession{}, usererr.New(usererr.Invalid, "sso_incomplete", "Finishing a sign-in needs the state and the code the identity provider sent back.")
	}
	jkt, err := dpop.ThumbprintJWK(in.DevicePublicJWK)
	if err != nil || subtle.ConstantTimeCompare([]byte(jkt), []byte(in.DeviceJKT)) != 1 {
		return identity.SSOSession{}, usererr.New(usererr.Invalid, "device_key_mismatch",
			"The device key sent with the sign-in is not the one that signed the request's DPoP proof.")
	}
	now := s.now()
	var l PendingLogin
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		var err error
		l, err = tx.SSOLoginByStateHash(ctx, hash(in.State))
		if s.cfg.Store.IsNotFound(err) || err == nil && l.RedirectURI == deviceMarker {
			return usererr.New(usererr.Unauthenticated, "sso_state_unknown", "This sign-in is unknown to the server; run interlock login --sso again.")
		} else if err != nil {
			return fmt.Errorf("load sso login: %w", err)
		}
		if is, ok := s.issuers[l.IssuerName]; ok {
			*issuerURL = is.Issuer
		}
		if subtle.ConstantTimeCompare([]byte(l.JKT), []byte(jkt)) != 1 {
			return usererr.New(usererr.Forbidden, "sso_device_mismatch",
				"This sign-in was started by another device key; a code is only good for the device that asked for it.")
		}
		if !l.UsedAt.IsZero() {
			return usererr.New(usererr.Unauthenticated, "sso_code_replayed",
				"This sign-in was already completed: an authorization code works once. Run interlock login --sso again.")
		}
		if !now.Before(l.ExpiresAt) {
			return usererr.New(usererr.Unauthenticated, "sso_login_expired", "This sign-in took too long and has expired; run interlock login --sso again.")
		}
		if ok, err := tx.UseSSOLogin(ctx, l.ID, now); err != nil {
			return fmt.Errorf("use sso login: %w", err)
		} else if !ok {
			return usererr.New(usererr.Unauthenticated, "sso_code_replayed",
				"This sign-in was already completed: an authorization code works once. Run interlock login --sso again.")
		}
		return nil
	})
	if err != nil {
		return identity.SSOSession{}, err
	}
	is, p, verifier, secret, err := s.resume(ctx, l, "pkce verifier")
	if err != nil {
		return identity.SSOSession{}, err
	}
	tok, err := s.oauth2Config(is, p, secret, l.RedirectURI).Exchange(s.clientContext(ctx), in.Code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return identity.SSOSession{}, usererr.New(usererr.Unauthenticated, "sso_code_refused",
				"The identity provider refused the authorization code (%s); it may be used, expired or meant for another client. Run interlock login --sso again.", orStatus(re))
		}
		return identity.SSOSession{}, fmt.Errorf("sso issuer %s: exchange code: %w", is.Name, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return identity.SSOSession{}, usererr.New(usererr.Unauthenticated, "sso_no_id_token", "The identity provider answered without an ID token; check that the client is allowed the openid scope.")
	}
	claims, err := s.verify(ctx, is, p, raw, l.NonceHash)
	if err != nil {
		return identity.SSOSession{}, err
	}
	*subject = claims.Subject
	return s.cfg.Identity.SignInSSO(ctx, identity.SSOSignIn{
		Issuer: claims.Issuer, Subject: claims.Subject, Username: claims.username(is), Roles: MapRoles(is.Roles, claims.all),
		MFAAt: claims.mfaAt(is, now), SessionTTL: is.SessionTTL, DeviceJKT: jkt, DevicePublicJWK: in.DevicePublicJWK, DeviceName: in.DeviceName, SourceIP: in.SourceIP,
	})
}

// idClaims are the parts of a verified ID token Interlock reads.
type idClaims struct {
	Issuer, Subject string
	AuthTime        time.Time
	AMR             []string
	ACR             string
	all             map[string]any
}

func (c idClaims) username(is config.SSOIssuer) string {
	for _, k := range []string{is.UsernameClaim, "preferred_username", "email"} {
		if v, ok := c.all[k].(string); ok && k != "" && v != "" {
			return v
		}
	}
	return ""
}

var defaultMFAMethods = []string{"mfa", "otp", "hwk", "swk", "fpt", "face", "iris", "sms"}

// mfaAt is when the IdP says the person proved a second factor: auth_time
// when amr names a second factor (RFC 8176) or acr is a configured
// multi-factor level; zero otherwise, or when auth_time is in the future.
func (c idClaims) mfaAt(is config.SSOIssuer, now time.Time) time.Time {
	if c.AuthTime.IsZero() || c.AuthTime.After(now.Add(time.Minute)) {
		return time.Time{}
	}
	methods := is.MFAMethods
	if len(methods) == 0 {
		methods = defaultMFAMethods
	}
	for _, m := range c.AMR {
		if slices.Contains(methods, m) {
			return c.AuthTime
		}
	}
	if c.ACR != "" && slices.Contains(is.MFAACRs, c.ACR) {
		return c.AuthTime
	}
	return time.Time{}
}

// verify checks the ID token with go-oidc (signature against the IdP's
// keys, issuer, expiry), then what go-oidc leaves to us: one of the allowed
// audiences (and azp when there are several) and the nonce.
func (s *Service) verify(ctx context.Context, is config.SSOIssuer, p *oidc.Provider, raw string, nonceHash []byte) (idClaims, error) {
	v := p.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: s.now})
	t, err := v.Verify(s.clientContext(ctx), raw)
	if err != nil {
		var te *oidc.TokenExpiredError
		if errors.As(err, &te) {
			return idClaims{}, usererr.New(usererr.Unauthenticated, "sso_token_expired",
				"The identity provider's ID token expired at %s; sign in again (check this server's clock if it keeps happening).", te.Expiry.UTC().Format(time.RFC3339))
		}
		return idClaims{}, usererr.Wrap(err, usererr.Unauthenticated, "sso_token_invalid", "The identity provider's ID token is not valid: %v.", err)
	}
	allowed := is.Audiences
	if len(allowed) == 0 {
		allowed = []string{is.ClientID}
	}
	if !slices.ContainsFunc(t.Audience, func(a string) bool { return slices.Contains(allowed, a) }) {
		return idClaims{}, usererr.New(usererr.Unauthenticated, "sso_wrong_audience",
			"The identity provider's ID token is for %s, not for this Interlock (it accepts %s).", strings.Join(t.Audience, ", "), strings.Join(allowed, ", "))
	}
	var extra struct {
		AuthTime json.Number `json:"auth_time"`
		AMR      []string    `json:"amr"`
		ACR      string      `json:"acr"`
		AZP      string      `json:"azp"`
	}
	all := map[string]any{}
	if err := t.Claims(&all); err != nil {
		return idClaims{}, usererr.Wrap(err, usererr.Unauthenticated, "sso_token_invalid", "The identity provider's ID token has unreadable claims.")
	}
	if err := t.Claims(&extra); err != nil {
		return idClaims{}, usererr.Wrap(err, usererr.Unauthenticated, "sso_token_invalid", "The identity provider's ID token has malformed auth_time, amr, acr or azp claims.")
	}
	if len(t.Audience) > 1 && extra.AZP != is.ClientID {
		return idClaims{}, usererr.New(usererr.Unauthenticated, "sso_wrong_audience",
			"The identity provider's ID token names several audiences but was not issued to this Interlock's client (azp %q).", extra.AZP)
	}
	// nil: the device grant, which has no nonce.
	if nonceHash != nil && (t.Nonce == "" || subtle.ConstantTimeCompare(hash(t.Nonce), nonceHash) != 1) {
		return idClaims{}, usererr.New(usererr.Unauthenticated, "sso_nonce_mismatch", "The identity provider's ID token was not issued for this sign-in (its nonce differs).")
	}
	c := idClaims{Issuer: t.Issuer, Subject: t.Subject, AMR: extra.AMR, ACR: extra.ACR, all: all}
	if n, err := strconv.ParseInt(extra.AuthTime.String(), 10, 64); err == nil && n > 0 {
		c.AuthTime = time.Unix(n, 0).UTC()
	}
	return c, nil
}

// MapRoles returns the roles whose rule matches claims: a string claim
// equal to the rule's value, or a list claim (groups) containing it.
func MapRoles(rules []config.SSORoleRule, claims map[string]any) []string {
	var out []string
	for _, r := range rules {
		if claimHas(claims[r.Claim], r.Value) && !slices.Contains(out, r.Role) {
			out = append(out, r.Role)
		}
	}
	return out
}

func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	case bool:
		return strconv.FormatBool(v) == want
	}
	return false
}

func (s *Service) issuer(name string) (config.SSOIssuer, error) {
	if len(s.names) == 0 {
		return config.SSOIssuer{}, usererr.New(usererr.NotFound, "sso_not_configured", "This server has no single sign-on configured; sign in with --user, or ask an admin to add an issuer to serve's sso config.")
	}
	if name == "" {
		if len(s.names) > 1 {
			return config.SSOIssuer{}, usererr.New(usererr.Invalid, "sso_issuer_required", "This server has several identity providers; name one with --issuer (%s).", strings.Join(s.names, ", "))
		}
		name = s.names[0]
	}
	is, ok := s.issuers[name]
	if !ok {
		return config.SSOIssuer{}, usererr.New(usererr.NotFound, "sso_issuer_unknown", "There is no identity provider named %q; this server has %s.", name, strings.Join(s.names, ", "))
	}
	return is, nil
}

// provider returns the issuer's discovered configuration, fetched once.
// resume gathers what finishing a pending sign-in needs: its issuer (still
// configured), the issuer's provider, the sealed value it kept (the PKCE
// verifier, or the device code: named by what, for errors) and the client
// secret. The code flow and the device flow both finish through it.
func (s *Service) resume(ctx context.Context, l PendingLogin, what string) (config.SSOIssuer, *oidc.Provider, []byte, string, error) {
	is, ok := s.issuers[l.IssuerName]
	if !ok {
		return is, nil, nil, "", usererr.New(usererr.Unauthenticated, "sso_issuer_unknown", "The identity provider %q this sign-in started with is no longer configured.", l.IssuerName)
	}
	p, err := s.provider(is)
	if err != nil {
		return is, nil, nil, "", err
	}
	sealed, err := s.cfg.Sealer.Open(l.VerifierSealed, verifierAAD(l.ID))
	if err != nil {
		return is, nil, nil, "", fmt.Errorf("open %s: %w", what, err)
	}
	secret, err := s.cfg.ResolveSecret(ctx, is.ClientSecret)
	if err != nil {
		return is, nil, nil, "", fmt.Errorf("sso issuer %s: read client secret %s: %w", is.Name, is.ClientSecret, err)
	}
	return is, p, sealed, secret, nil
}

func (s *Service) provider(is config.SSOIssuer) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.providers[is.Name]; ok {
		return p, nil
	}
	// Not the request's context: the provider keeps it to fetch keys later.
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), s.cfg.HTTPClient), 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, is.Issuer)
	if err != nil {
		return nil, usererr.Wrap(err, usererr.Conflict, "sso_issuer_unreachable",
			"The identity provider %s (%s) could not be reached or its discovery document is invalid; try again later.", is.Name, is.Issuer)
	}
	s.providers[is.Name] = p
	return p, nil
}

func (s *Service) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.cfg.HTTPClient)
}

func (s *Service) oauth2Config(is config.SSOIssuer, p *oidc.Provider, secret, redirect string) *oauth2.Config {
	scopes := is.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email", "groups"}
	}
	return &oauth2.Config{ClientID: is.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirect,
		Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}
}

// checkRedirect accepts only a loopback http redirect (RFC 8252 §7.3): the
// code must come back to the machine that holds the device key.
func checkRedirect(raw string) error {
	u, err := url.Parse(raw)
	bad := err != nil || u.Scheme != "http" || u.Port() == "" || u.User != nil || u.Fragment != ""
	if !bad {
		h := u.Hostname()
		bad = h != "127.0.0.1" && h != "::1" && h != "localhost"
	}
	if bad || len(raw) > 512 {
		return usererr.New(usererr.Invalid, "sso_redirect_invalid",
			"The redirect must be a loopback address with a port, such as http://127.0.0.1:PORT/callback: the code must come back to your own machine.")
	}
	return nil
}

func (s *Service) recordFailure(ctx context.Context, issuerURL, subject, sourceIP, reason string) error {
	personal := map[string]string{"source_ip": sourceIP}
	if subject != "" {
		personal["subject"] = subject
	}
	return s.cfg.Store.InTx(ctx, func(tx Tx) error {
		return audit.Append(ctx, tx, audit.Entry{Kind: "identity.sso_login_failed", Version: 1, Actor: "anonymous", Time: s.now(),
			Data: map[string]any{"issuer": issuerURL, "reason": reason}, Personal: personal})
	})
}

func (s *Service) randText(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func verifierAAD(id string) []byte { return []byte("sso-login:" + id) }

func orStatus(re *oauth2.RetrieveError) string {
	if re.ErrorCode != "" {
		return re.ErrorCode
	}
	return re.Response.Status
}
