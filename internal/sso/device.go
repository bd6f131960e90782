package sso

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// The device authorization grant (RFC 8628), for `interlock login --sso
// --no-browser` on a machine without a browser: the server asks the IdP
// for a device code (kept sealed, never sent to the CLI) and answers the
// user code and verification URL, which the person opens on any device.
// The CLI then polls [Service.PollDevice], signed by the same device key,
// and the server polls the IdP's token endpoint once per call. The ID
// token is verified as in the code flow, except for the nonce, which the
// device grant does not carry; the sign-in is bound to the device key
// that started it, and a device code works once.

// deviceMarker is PendingLogin.RedirectURI of a device sign-in.
const deviceMarker = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceStarted is what the person needs to approve a device sign-in.
type DeviceStarted struct {
	State                   string
	Issuer                  string
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	Interval                time.Duration
	ExpiresAt               time.Time
}

// StartDevice begins a device sign-in bound to the calling device key.
func (s *Service) StartDevice(ctx context.Context, in StartRequest) (DeviceStarted, error) {
	is, err := s.issuer(in.Issuer)
	if err != nil {
		return DeviceStarted{}, err
	}
	if in.DeviceJKT == "" {
		return DeviceStarted{}, usererr.New(usererr.Unauthenticated, "dpop_invalid", "Starting a sign-in needs a DPoP proof of your device key.")
	}
	p, err := s.provider(is)
	if err != nil {
		return DeviceStarted{}, err
	}
	if p.Endpoint().DeviceAuthURL == "" {
		return DeviceStarted{}, usererr.New(usererr.Invalid, "sso_no_device_flow",
			"The identity provider %s offers no device sign-in (its discovery document names no device_authorization_endpoint); sign in with a browser on this machine (without --no-browser).", is.Name)
	}
	secret, err := s.cfg.ResolveSecret(ctx, is.ClientSecret)
	if err != nil {
		return DeviceStarted{}, fmt.Errorf("sso issuer %s: read client secret %s: %w", is.Name, is.ClientSecret, err)
	}
	oc := s.oauth2Config(is, p, secret, "")
	da, err := oc.DeviceAuth(s.clientContext(ctx), oauth2.SetAuthURLParam("client_secret", secret))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return DeviceStarted{}, usererr.New(usererr.Conflict, "sso_device_refused", "The identity provider refused to start a device sign-in (%s).", orStatus(re))
		}
		return DeviceStarted{}, fmt.Errorf("sso issuer %s: device authorization: %w", is.Name, err)
	}
	now := s.now()
	id, state := s.randText(10), s.randText(32)
	if id == "" || state == "" || da.DeviceCode == "" {
		return DeviceStarted{}, errors.New("sso: read random, or the IdP sent no device code")
	}
	id = "sso_" + id
	sealed, err := s.cfg.Sealer.Seal([]byte(da.DeviceCode), verifierAAD(id))
	if err != nil {
		return DeviceStarted{}, fmt.Errorf("seal device code: %w", err)
	}
	expires := now.Add(s.cfg.LoginTTL)
	if !da.Expiry.IsZero() && da.Expiry.Before(expires) {
		expires = da.Expiry
	}
	l := PendingLogin{ID: id, StateHash: hash(state), IssuerName: is.Name, JKT: in.DeviceJKT, RedirectURI: deviceMarker,
		NonceHash: []byte{}, VerifierSealed: sealed, CreatedAt: now, ExpiresAt: expires}
	if err := s.cfg.Store.InTx(ctx, func(tx Tx) error { return tx.InsertSSOLogin(ctx, l) }); err != nil {
		return DeviceStarted{}, fmt.Errorf("store sso login: %w", err)
	}
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return DeviceStarted{State: state, Issuer: is.Name, UserCode: da.UserCode, VerificationURI: da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete, Interval: interval, ExpiresAt: expires}, nil
}

// errPending says the person has not approved the device sign-in yet.
func errPending() error {
	return usererr.New(usererr.Conflict, "sso_pending", "The sign-in is waiting for you to approve it at the identity provider.")
}

// PollDevice asks the IdP once whether the person approved the device
// sign-in; until they have, it answers a Conflict with code sso_pending.
func (s *Service) PollDevice(ctx context.Context, in FinishRequest) (identity.SSOSession, error) {
	issuerURL, subject := "", ""
	sess, err := s.pollDevice(ctx, in, &issuerURL, &subject)
	if ue, ok := usererr.As(err); ok && ue.Code != "sso_pending" {
		if aerr := s.recordFailure(ctx, issuerURL, subject, in.SourceIP, ue.Code); aerr != nil {
			return identity.SSOSession{}, aerr
		}
	}
	return sess, err
}

func (s *Service) pollDevice(ctx context.Context, in FinishRequest, issuerURL, subject *string) (identity.SSOSession, error) {
	if in.State == "" || len(in.State) > 128 {
		return identity.SSOSession{}, usererr.New(usererr.Invalid, "sso_incomplete", "Polling a device sign-in needs its state.")
	}
	jkt, err := dpop.ThumbprintJWK(in.DevicePublicJWK)
	if err != nil || subtle.ConstantTimeCompare([]byte(jkt), []byte(in.DeviceJKT)) != 1 {
		return identity.SSOSession{}, usererr.New(usererr.Invalid, "device_key_mismatch",
			"The device key sent with the sign-in is not the one that signed the request's DPoP proof.")
	}
	now := s.now()
	var l PendingLogin
	check := func(tx Tx) error {
		var err error
		l, err = tx.SSOLoginByStateHash(ctx, hash(in.State))
		if s.cfg.Store.IsNotFound(err) || err == nil && l.RedirectURI != deviceMarker {
			return usererr.New(usererr.Unauthenticated, "sso_state_unknown", "This device sign-in is unknown to the server; run interlock login --sso --no-browser again.")
		} else if err != nil {
			return fmt.Errorf("load sso login: %w", err)
		}
		if is, ok := s.issuers[l.IssuerName]; ok {
			*issuerURL = is.Issuer
		}
		switch {
		case subtle.ConstantTimeCompare([]byte(l.JKT), []byte(jkt)) != 1:
			return usererr.New(usererr.Forbidden, "sso_device_mismatch",
				"This sign-in was started by another device key; a sign-in is only good for the device that asked for it.")
		case !l.UsedAt.IsZero():
			return usererr.New(usererr.Unauthenticated, "sso_code_replayed", "This sign-in was already completed; a device code works once. Run interlock login --sso again.")
		case !now.Before(l.ExpiresAt):
			return usererr.New(usererr.Unauthenticated, "sso_login_expired", "This sign-in was not approved in time and has expired; run interlock login --sso again.")
		}
		return nil
	}
	if err := s.cfg.Store.InTx(ctx, check); err != nil {
		return identity.SSOSession{}, err
	}
	is, p, deviceCode, secret, err := s.resume(ctx, l, "device code")
	if err != nil {
		return identity.SSOSession{}, err
	}
	raw, err := s.deviceToken(ctx, p.Endpoint().TokenURL, is.ClientID, secret, string(deviceCode))
	if err != nil {
		return identity.SSOSession{}, err
	}
	// The IdP gave a token: this sign-in is spent, whatever the token says.
	err = s.cfg.Store.InTx(ctx, func(tx Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		if ok, err := tx.UseSSOLogin(ctx, l.ID, now); err != nil {
			return fmt.Errorf("use sso login: %w", err)
		} else if !ok {
			return usererr.New(usererr.Unauthenticated, "sso_code_replayed", "This sign-in was already completed; a device code works once.")
		}
		return nil
	})
	if err != nil {
		return identity.SSOSession{}, err
	}
	claims, err := s.verify(ctx, is, p, raw, nil)
	if err != nil {
		return identity.SSOSession{}, err
	}
	*subject = claims.Subject
	return s.cfg.Identity.SignInSSO(ctx, identity.SSOSignIn{
		Issuer: claims.Issuer, Subject: claims.Subject, Username: claims.username(is), Roles: MapRoles(is.Roles, claims.all),
		MFAAt: claims.mfaAt(is, now), SessionTTL: is.SessionTTL, DeviceJKT: jkt, DevicePublicJWK: in.DevicePublicJWK, DeviceName: in.DeviceName, SourceIP: in.SourceIP,
	})
}

// deviceToken makes one device access token request (RFC 8628 §3.4) and
// returns the ID token. golang.org/x/oauth2's DeviceAccessToken polls in a
// loop until done; the server polls once per CLI call instead, so that no
// request is held open for minutes.
func (s *Service) deviceToken(ctx context.Context, tokenURL, clientID, secret, deviceCode string) (string, error) {
	form := url.Values{"grant_type": {deviceMarker}, "device_code": {deviceCode}, "client_id": {clientID}, "client_secret": {secret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("device token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("device token request: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
		Error   string `json:"error"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("device token response: %w", err)
	}
	if err := json.Unmarshal(b, &body); err != nil && resp.StatusCode < 500 {
		return "", usererr.New(usererr.Unauthenticated, "sso_token_invalid", "The identity provider's token answer is not JSON.")
	}
	switch {
	case body.Error == "authorization_pending" || body.Error == "slow_down":
		return "", errPending()
	case body.Error == "access_denied":
		return "", usererr.New(usererr.Unauthenticated, "sso_denied", "The sign-in was denied at the identity provider.")
	case body.Error == "expired_token":
		return "", usererr.New(usererr.Unauthenticated, "sso_login_expired", "The identity provider's device code expired before you approved it; run interlock login --sso --no-browser again.")
	case body.Error != "" && resp.StatusCode < 500:
		return "", usererr.New(usererr.Unauthenticated, "sso_code_refused", "The identity provider refused the device sign-in (%s).", body.Error)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("device token request: %s", resp.Status)
	case body.IDToken == "":
		return "", usererr.New(usererr.Unauthenticated, "sso_no_id_token", "The identity provider answered without an ID token; check that the client is allowed the openid scope.")
	}
	return body.IDToken, nil
}
