package api

import (
	"net/http"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/sso"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// SSORoutes serves single sign-on (see internal/sso for the flow). They are
// public like password login: the DPoP proof of the device key, and the
// identity provider's ID token, are their authentication.
func SSORoutes(svc *sso.Service, proofs ProofVerifier) []Route {
	h := ssoHandlers{svc: svc, proofs: proofs}
	return []Route{
		{Pattern: "GET /v1/sso/issuers", Public: true, Handle: h.issuers},
		{Pattern: "POST /v1/sso/start", Public: true, Handle: h.start},
		{Pattern: "POST /v1/sso/finish", Public: true, Handle: h.finish},
	}
}

// StepUpRoutes lets a person who signs in through SSO enrol an Interlock
// authenticator for step-up MFA; identity checks that their IdP attested a
// fresh second factor. Open to every signed-in person, as /v1/mfa is.
func StepUpRoutes(ids *identity.Service) []Route {
	return []Route{{Pattern: "POST /v1/mfa/totp", Action: policy.ActionWhoami, Handle: func(c *Call) error {
		enr, err := ids.EnrolStepUpTOTP(c.Context(), c.Principal)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, enrollmentWire(enr))
	}}}
}

type ssoHandlers struct {
	svc    *sso.Service
	proofs ProofVerifier
}

func (h ssoHandlers) deviceKey(c *Call) (string, error) {
	jkt, err := h.proofs.Verify(c.R.Header.Get(dpop.Header), c.R.Method, RequestURL(c.R), "", c.Now())
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return "", err
		}
		return "", usererr.Wrap(err, usererr.Unauthenticated, "dpop_invalid", "The sign-in request's DPoP proof is not valid; it must be signed by the device key.")
	}
	return jkt, nil
}

func (h ssoHandlers) issuers(c *Call) error {
	names := h.svc.Issuers()
	if names == nil {
		names = []string{}
	}
	return c.JSON(http.StatusOK, wire.SSOIssuers{Issuers: names})
}

func (h ssoHandlers) start(c *Call) error {
	jkt, err := h.deviceKey(c)
	if err != nil {
		return err
	}
	var in wire.SSOStartRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	req := sso.StartRequest{Issuer: in.Issuer, RedirectURI: in.RedirectURI, Fresh: in.Fresh, DeviceJKT: jkt, SourceIP: c.SourceIP()}
	if in.Device {
		st, err := h.svc.StartDevice(c.Context(), req)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, wire.SSOStartResponse{State: st.State, Issuer: st.Issuer, ExpiresAt: st.ExpiresAt, UserCode: st.UserCode,
			VerificationURI: st.VerificationURI, VerificationURIComplete: st.VerificationURIComplete, IntervalS: int(st.Interval / time.Second)})
	}
	st, err := h.svc.Start(c.Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.SSOStartResponse{AuthURL: st.AuthURL, State: st.State, Issuer: st.Issuer, ExpiresAt: st.ExpiresAt})
}

func (h ssoHandlers) finish(c *Call) error {
	jkt, err := h.deviceKey(c)
	if err != nil {
		return err
	}
	var in wire.SSOFinishRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	req := sso.FinishRequest{State: in.State, Code: in.Code, DeviceJKT: jkt, DevicePublicJWK: in.DeviceJWK, DeviceName: in.DeviceName, SourceIP: c.SourceIP()}
	finish := h.svc.Finish
	if in.Code == "" && in.State != "" {
		finish = h.svc.PollDevice
	}
	s, err := finish(c.Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.SSOLoginResponse{Username: s.Username, LoginResponse: wire.LoginResponse{Token: s.Token.Reveal(),
		SessionID: s.ID, PersonID: s.PersonID, DeviceID: s.DeviceID, NewDevice: s.NewDevice, ExpiresAt: s.ExpiresAt}})
}
