package api

import (
	"net/http"
	"strconv"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// IdentityRoutes serves bootstrap, login, logout, whoami, users,
// invitations, devices and step-up MFA (see internal/api/wire/identity.go
// for the table). proofs checks the sign-in routes' DPoP proofs; it may be
// a verifier of its own (its own replay cache), since a sign-in proof
// binds no access token and a session proof must.
//
// Bootstrap, login and invitation acceptance are public: the bootstrap and
// invitation codes, and the password + TOTP + device proof, are their
// authentication.
func IdentityRoutes(svc *identity.Service, proofs ProofVerifier) []Route {
	h := identityHandlers{svc: svc, proofs: proofs}
	return []Route{
		{Pattern: "POST /v1/bootstrap", Public: true, Handle: h.bootstrap},
		{Pattern: "POST /v1/login", Public: true, Handle: h.login},
		{Pattern: "POST /v1/invitations/accept", Public: true, Handle: h.accept},
		{Pattern: "POST /v1/logout", Action: policy.ActionSessionLogout, Handle: h.logout},
		{Pattern: "GET /v1/whoami", Action: policy.ActionWhoami, Handle: h.whoami},
		{Pattern: "POST /v1/users/invitations", Action: policy.ActionUserInvite, Handle: h.invite},
		{Pattern: "GET /v1/users", Action: policy.ActionUserList, Handle: h.listUsers},
		{Pattern: "POST /v1/users/{name}/disable", Action: policy.ActionUserDisable, Handle: h.disableUser},
		{Pattern: "GET /v1/devices", Action: policy.ActionDeviceList, Handle: h.listDevices},
		{Pattern: "POST /v1/devices/{id}/revoke", Action: policy.ActionDeviceRevoke, Handle: h.revokeDevice},
		// Step-up MFA is open to every signed-in person (the same action as
		// whoami); what a fresh second factor unlocks is policy's business.
		{Pattern: "POST /v1/mfa", Action: policy.ActionWhoami, Handle: h.mfa},
	}
}

type identityHandlers struct {
	svc    *identity.Service
	proofs ProofVerifier
}

func enrollmentWire(e identity.Enrollment) wire.Enrollment {
	out := wire.Enrollment{PersonID: e.PersonID, Username: e.Username, TOTPSecret: e.TOTPSecret.Reveal(), TOTPURI: e.TOTPURI.Reveal(),
		RecoveryCodesLeft: e.RecoveryCodesLeft}
	for _, c := range e.RecoveryCodes {
		out.RecoveryCodes = append(out.RecoveryCodes, c.Reveal())
	}
	return out
}

func noContent(c *Call) error {
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func (h identityHandlers) bootstrap(c *Call) error {
	var in wire.BootstrapRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	enr, err := h.svc.Bootstrap(c.Context(), in.Code, in.Username, in.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, enrollmentWire(enr))
}

func (h identityHandlers) login(c *Call) error {
	jkt, err := h.proofs.Verify(c.R.Header.Get(dpop.Header), c.R.Method, RequestURL(c.R), "", c.Now())
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return err
		}
		return usererr.Wrap(err, usererr.Unauthenticated, "dpop_invalid", "The login request's DPoP proof is not valid; it must be signed by the device key.")
	}
	var in wire.LoginRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	s, err := h.svc.Login(c.Context(), identity.LoginRequest{
		Username: in.Username, Password: in.Password, OTP: in.OTP,
		DeviceJKT: jkt, DevicePublicJWK: in.DeviceJWK, DeviceName: in.DeviceName, SourceIP: c.SourceIP(),
	})
	if err != nil {
		if ue, ok := usererr.As(err); ok && ue.Kind == usererr.RateLimited {
			if d, ok := ue.Details.(map[string]any); ok {
				if n, ok := d["retry_after_s"].(int); ok {
					c.W.Header().Set("Retry-After", strconv.Itoa(n))
				}
			}
		}
		return err
	}
	return c.JSON(http.StatusOK, wire.LoginResponse{Token: s.Token.Reveal(), SessionID: s.ID, PersonID: s.PersonID,
		DeviceID: s.DeviceID, NewDevice: s.NewDevice, ExpiresAt: s.ExpiresAt})
}

func (h identityHandlers) accept(c *Call) error {
	var in wire.AcceptRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	enr, err := h.svc.Accept(c.Context(), in.Code, in.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, enrollmentWire(enr))
}

func (h identityHandlers) logout(c *Call) error {
	if err := h.svc.Logout(c.Context(), c.Principal); err != nil {
		return err
	}
	return noContent(c)
}

func (h identityHandlers) whoami(c *Call) error { return c.JSON(http.StatusOK, c.Principal) }

func (h identityHandlers) invite(c *Call) error {
	var in wire.InviteRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	inv, err := h.svc.Invite(c.Context(), c.Principal, in.Username, in.Role)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wire.Invitation{Code: inv.Code.Reveal(), PersonID: inv.PersonID, Username: inv.Username,
		Role: inv.Role, ExpiresAt: inv.ExpiresAt})
}

func (h identityHandlers) listUsers(c *Call) error {
	us, err := h.svc.ListUsers(c.Context())
	if err != nil {
		return err
	}
	out := wire.UserList{Users: []wire.User{}}
	for _, u := range us {
		roles := u.Roles
		if roles == nil {
			roles = []string{}
		}
		out.Users = append(out.Users, wire.User{ID: u.ID, Username: u.Username, Roles: roles, Status: u.Status, CreatedAt: u.CreatedAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (h identityHandlers) disableUser(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	if err := h.svc.DisableUser(c.Context(), c.Principal, name); err != nil {
		return err
	}
	return noContent(c)
}

func (h identityHandlers) listDevices(c *Call) error {
	personID := c.Principal.ID
	switch c.R.URL.Query().Get("all") {
	case "", "false":
	case "true":
		// Everyone's devices (names, key thumbprints, last use) are people
		// management, not read-only browsing: they need what revoking does.
		if err := c.Authorize(policy.ActionDeviceRevoke, SystemResource, map[string]any{"all_devices": true}); err != nil {
			return err
		}
		personID = ""
	default:
		return usererr.New(usererr.Invalid, "bad_query", "The query parameter all must be true or false.")
	}
	ds, err := h.svc.ListDevices(c.Context(), personID)
	if err != nil {
		return err
	}
	out := wire.DeviceList{Devices: []wire.Device{}}
	for _, d := range ds {
		out.Devices = append(out.Devices, wire.Device{ID: d.ID, PersonID: d.PersonID, Username: d.Username, Name: d.Name, JKT: d.JKT,
			CreatedAt: d.CreatedAt, LastUsed: d.LastUsed, RevokedAt: d.RevokedAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (h identityHandlers) revokeDevice(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	if err := h.svc.RevokeDevice(c.Context(), c.Principal, id); err != nil {
		return err
	}
	return noContent(c)
}

func (h identityHandlers) mfa(c *Call) error {
	var in wire.MFARequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	at, err := h.svc.VerifyOTP(c.Context(), c.Principal, in.OTP)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.MFAResponse{MFAAt: at})
}
