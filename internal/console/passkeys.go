package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/passkey"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Passkeys signs people in with a passkey; passkey.Service implements it.
// Everything else about passkeys (register, list, remove, step-up) goes
// through the API in-process like every other console action.
type Passkeys interface {
	BeginSignIn(ctx context.Context) (passkey.Options, error)
	FinishSignIn(ctx context.Context, ceremony string, response []byte) (personID, passkeyID string, err error)
}

func (c *Console) passkeyRoutes() {
	c.mux.HandleFunc("POST /ui/passkeys/signin/begin", c.passkeySignInBegin)
	c.mux.HandleFunc("POST /ui/passkeys/signin/finish", c.passkeySignInFinish)
	c.mux.HandleFunc("GET /ui/passkeys", c.signedIn(c.passkeysPage))
	c.mux.HandleFunc("POST /ui/passkeys/register/begin", c.signedIn(c.passkeyRegisterBegin))
	c.mux.HandleFunc("POST /ui/passkeys/register/finish", c.signedIn(c.passkeyRegisterFinish))
	c.mux.HandleFunc("POST /ui/passkeys/{id}/remove", c.signedIn(c.passkeyRemove))
	c.mux.HandleFunc("POST /ui/ops/{id}/approve/passkey/begin", c.signedIn(c.approvePasskeyBegin))
	c.mux.HandleFunc("POST /ui/ops/{id}/approve/passkey/finish", c.signedIn(c.approvePasskeyFinish))
}

func (c *Console) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := c.message(r, err)
	writeJSON(w, status, map[string]string{"error": msg})
}

func (c *Console) passkeySignInBegin(w http.ResponseWriter, r *http.Request) {
	if !c.signInAllowed(w, r, true) {
		return
	}
	if c.cfg.Passkeys == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Passkeys are not enabled on this server."})
		return
	}
	o, err := c.cfg.Passkeys.BeginSignIn(r.Context())
	if err != nil {
		c.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.PasskeyCeremony{Ceremony: o.Ceremony, Options: o.Options})
}

func (c *Console) passkeySignInFinish(w http.ResponseWriter, r *http.Request) {
	if !c.signInAllowed(w, r, true) {
		return
	}
	if c.cfg.Passkeys == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Passkeys are not enabled on this server."})
		return
	}
	personID, pkID, err := c.cfg.Passkeys.FinishSignIn(r.Context(), r.PostFormValue("ceremony"), []byte(r.PostFormValue("credential")))
	if err != nil {
		c.jsonError(w, r, err)
		return
	}
	sess, err := c.cfg.Sessions.StartPasskeySession(r.Context(), personID, pkID, sourceIP(r), r.UserAgent())
	if err != nil {
		c.jsonError(w, r, err)
		return
	}
	setCookie(w, sess.Token.Reveal(), sess.ExpiresAt)
	writeJSON(w, http.StatusOK, map[string]string{"next": "/ui/approvals"})
}

func (c *Console) passkeysPage(w http.ResponseWriter, r *http.Request, s signedIn) {
	var list wire.PasskeyList
	if err := c.call(r, s, "GET", "/v1/passkeys", nil, &list); err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := c.page(s, "Passkeys", "passkeys", list.Passkeys)
	p.Note = map[string]string{"registered": "The passkey is registered.", "removed": "The passkey is removed."}[r.URL.Query().Get("done")]
	c.render(w, r, http.StatusOK, "passkeys", p)
}

func (c *Console) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request, s signedIn) {
	// Registering mints a lasting credential: policy asks for a second
	// factor from the last 5 minutes (mfa.fresh-for-credentials). A code
	// in the form proves one now.
	if r.PostFormValue("otp") != "" {
		if err := c.freshMFA(r, &s); err != nil {
			c.jsonError(w, r, err)
			return
		}
	}
	var out wire.PasskeyCeremony
	if err := c.call(r, s, "POST", "/v1/passkey-registrations", wire.PasskeyRegistrationBegin{}, &out); err != nil {
		c.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Console) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request, s signedIn) {
	in := wire.PasskeyRegisterRequest{Name: r.PostFormValue("name"), Credential: json.RawMessage(r.PostFormValue("credential"))}
	if !json.Valid(in.Credential) {
		c.jsonError(w, r, usererr.New(usererr.Invalid, "passkey_credential", "The browser's passkey answer is missing."))
		return
	}
	var out wire.Passkey
	if err := c.call(r, s, "POST", "/v1/passkey-registrations/"+url.PathEscape(r.PostFormValue("ceremony")), in, &out); err != nil {
		c.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": "/ui/passkeys?done=registered"})
}

func (c *Console) passkeyRemove(w http.ResponseWriter, r *http.Request, s signedIn) {
	if err := c.call(r, s, "POST", "/v1/passkeys/"+url.PathEscape(r.PathValue("id"))+"/remove", nil, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/ui/passkeys?done=removed", http.StatusSeeOther)
}

// approvalPurpose is what a passkey approval signs: the operation and the
// exact plan hash the approver saw.
func approvalPurpose(opID, planHash string) string {
	return "approve op " + opID + " plan " + planHash
}

func (c *Console) approvePasskeyBegin(w http.ResponseWriter, r *http.Request, s signedIn) {
	hash := r.PostFormValue("plan_hash")
	if hash == "" {
		c.jsonError(w, r, usererr.New(usererr.Invalid, "plan_hash_missing", "The approval carries no plan hash; reload the page."))
		return
	}
	var out wire.PasskeyCeremony
	in := wire.PasskeyStepUpRequest{Purpose: approvalPurpose(r.PathValue("id"), hash)}
	if err := c.call(r, s, "POST", "/v1/mfa/passkey", in, &out); err != nil {
		c.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Console) approvePasskeyFinish(w http.ResponseWriter, r *http.Request, s signedIn) {
	id, hash := r.PathValue("id"), r.PostFormValue("plan_hash")
	if hash == "" {
		c.jsonError(w, r, usererr.New(usererr.Invalid, "plan_hash_missing", "The approval carries no plan hash; reload the page."))
		return
	}
	in := wire.PasskeyStepUpRequest{Purpose: approvalPurpose(id, hash), Credential: json.RawMessage(r.PostFormValue("credential"))}
	if !json.Valid(in.Credential) {
		c.jsonError(w, r, usererr.New(usererr.Invalid, "passkey_credential", "The browser's passkey answer is missing."))
		return
	}
	var proved wire.MFAResponse
	if err := c.call(r, s, "POST", "/v1/mfa/passkey/"+url.PathEscape(r.PostFormValue("ceremony")), in, &proved); err != nil {
		c.jsonError(w, r, err)
		return
	}
	s.p.MFAAt = proved.MFAAt // the approval is decided on the factor just proved
	// The session's second factor is fresh now, proven for this plan hash;
	// the approval itself is the API's, with its Cedar decision.
	if err := c.call(r, s, "POST", "/v1/ops/"+url.PathEscape(id)+"/approvals", wire.ApproveRequest{PlanHash: hash}, nil); err != nil {
		c.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": "/ui/ops/" + url.PathEscape(id) + "?done=approved"})
}
