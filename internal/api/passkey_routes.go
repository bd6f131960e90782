package api

import (
	"context"
	"net/http"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/passkey"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// PasskeyMFA records a passkey step-up on the calling session;
// identity.Service implements it.
type PasskeyMFA interface {
	RecordPasskeyMFA(ctx context.Context, p wire.Principal, credentialID, purpose string) (time.Time, error)
}

// PasskeyRoutes serve passkeys (see internal/api/wire/passkey.go). Passkey
// sign-in is the console's (it starts a console session, not an API one).
func PasskeyRoutes(svc *passkey.Service, mfa PasskeyMFA) []Route {
	h := passkeyHandlers{svc: svc, mfa: mfa}
	return []Route{
		{Pattern: "GET /v1/passkeys", Action: policy.ActionPasskeyList, Handle: h.list},
		{Pattern: "POST /v1/passkeys/{id}/remove", Action: policy.ActionPasskeyRemove, Handle: h.remove},
		{Pattern: "POST /v1/passkey-registrations", Action: policy.ActionPasskeyRegister, Handle: h.beginRegistration},
		{Pattern: "POST /v1/passkey-registrations/{ceremony}", Action: policy.ActionPasskeyRegister, Handle: h.finishRegistration},
		// Proving a second factor is open to every signed-in person, like POST /v1/mfa.
		{Pattern: "POST /v1/mfa/passkey", Action: policy.ActionWhoami, Handle: h.beginStepUp, WhileHalted: true},
		{Pattern: "POST /v1/mfa/passkey/{ceremony}", Action: policy.ActionWhoami, Handle: h.finishStepUp, WhileHalted: true},
	}
}

type passkeyHandlers struct {
	svc *passkey.Service
	mfa PasskeyMFA
}

func wirePasskey(p passkey.Passkey) wire.Passkey {
	return wire.Passkey{ID: p.ID, Name: p.Name, CreatedAt: p.CreatedAt, LastUsed: p.LastUsed}
}

func (h passkeyHandlers) list(c *Call) error {
	pks, err := h.svc.List(c.Context(), c.Principal.ID)
	if err != nil {
		return err
	}
	out := wire.PasskeyList{Passkeys: make([]wire.Passkey, 0, len(pks))}
	for _, p := range pks {
		out.Passkeys = append(out.Passkeys, wirePasskey(p))
	}
	return c.JSON(http.StatusOK, out)
}

func (h passkeyHandlers) remove(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	if err := h.svc.Remove(c.Context(), c.Principal, id); err != nil {
		return err
	}
	c.W.WriteHeader(http.StatusNoContent)
	return nil
}

func ceremonyOut(c *Call, o passkey.Options, err error) error {
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.PasskeyCeremony{Ceremony: o.Ceremony, Options: o.Options})
}

func (h passkeyHandlers) beginRegistration(c *Call) error {
	var in wire.PasskeyRegistrationBegin
	if err := c.Decode(&in); err != nil {
		return err
	}
	o, err := h.svc.BeginRegistration(c.Context(), c.Principal)
	return ceremonyOut(c, o, err)
}

func (h passkeyHandlers) finishRegistration(c *Call) error {
	id, err := c.PathValue("ceremony")
	if err != nil {
		return err
	}
	var in wire.PasskeyRegisterRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if len(in.Credential) == 0 {
		return usererr.New(usererr.Invalid, "passkey_credential_missing", "The request carries no credential from the browser.")
	}
	pk, err := h.svc.FinishRegistration(c.Context(), c.Principal, id, in.Name, in.Credential)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, wirePasskey(pk))
}

func (h passkeyHandlers) beginStepUp(c *Call) error {
	var in wire.PasskeyStepUpRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	o, err := h.svc.BeginStepUp(c.Context(), c.Principal, in.Purpose)
	return ceremonyOut(c, o, err)
}

func (h passkeyHandlers) finishStepUp(c *Call) error {
	id, err := c.PathValue("ceremony")
	if err != nil {
		return err
	}
	var in wire.PasskeyStepUpRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if len(in.Credential) == 0 {
		return usererr.New(usererr.Invalid, "passkey_credential_missing", "The request carries no credential from the browser.")
	}
	cred, err := h.svc.FinishStepUp(c.Context(), c.Principal, id, in.Purpose, in.Credential)
	if err != nil {
		return err
	}
	at, err := h.mfa.RecordPasskeyMFA(c.Context(), c.Principal, cred, in.Purpose)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.MFAResponse{MFAAt: at})
}
