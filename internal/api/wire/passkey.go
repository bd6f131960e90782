package wire

import (
	"encoding/json"
	"time"
)

// Passkeys (WebAuthn), API v1. Registration needs a browser, so the web
// console drives it; the CLI lists and removes.
//
//	GET  /v1/passkeys                        → PasskeyList          action passkey.list (the caller's own)
//	POST /v1/passkeys/{id}/remove            → 204                  action passkey.remove (the caller's own)
//	POST /v1/passkey-registrations           PasskeyRegistrationBegin → PasskeyCeremony      action passkey.register (fresh MFA)
//	POST /v1/passkey-registrations/{c}      PasskeyRegisterRequest → Passkey  action passkey.register (fresh MFA)
//	POST /v1/mfa/passkey                     PasskeyStepUpRequest → PasskeyCeremony  action whoami
//	POST /v1/mfa/passkey/{c}                 PasskeyStepUpRequest → MFAResponse      action whoami
//
// A step-up's purpose is bound into the challenge the authenticator signs:
// the console approves an operation with purpose
// "approve op <id> plan <plan hash>".

// Passkey is one of a person's passkeys.
type Passkey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// PasskeyList is GET /v1/passkeys.
type PasskeyList struct {
	Passkeys []Passkey `json:"passkeys"`
}

// PasskeyCeremony is a begun WebAuthn ceremony: Options go to
// navigator.credentials.create or .get as they are.
type PasskeyCeremony struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
}

// PasskeyRegistrationBegin begins a registration: an empty object ({}).
type PasskeyRegistrationBegin struct{}

// PasskeyRegisterRequest finishes a registration.
type PasskeyRegisterRequest struct {
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"` // PublicKeyCredential.toJSON()
}

// PasskeyStepUpRequest begins (without Credential) or finishes a step-up.
type PasskeyStepUpRequest struct {
	Purpose    string          `json:"purpose"`
	Credential json.RawMessage `json:"credential,omitempty"`
}
