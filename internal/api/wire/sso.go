package wire

import "time"

// SSO sign-in (internal/sso): both calls are public and carry a DPoP proof
// of the device key (no access token); the key that finishes must be the
// key that started.
//
//	GET  /v1/sso/issuers  → SSOIssuers
//	POST /v1/sso/start    SSOStartRequest  → SSOStartResponse
//	POST /v1/sso/finish   SSOFinishRequest → LoginResponse

// SSOIssuers names the identity providers configured on the server.
type SSOIssuers struct {
	Issuers []string `json:"issuers"`
}

// SSOStartRequest starts a sign-in; RedirectURI is the CLI's loopback
// listener. Fresh makes the IdP ask for the person's factors again.
type SSOStartRequest struct {
	Issuer      string `json:"issuer,omitempty"`
	RedirectURI string `json:"redirect_uri"`
	Fresh       bool   `json:"fresh,omitempty"`
	// Device asks for the device authorization grant (RFC 8628) instead:
	// no redirect, a user code to enter at VerificationURI.
	Device bool `json:"device,omitempty"`
}

// SSOStartResponse is the URL to open in a browser, and the state the IdP
// will send back with the code.
type SSOStartResponse struct {
	AuthURL   string    `json:"auth_url"`
	State     string    `json:"state"`
	Issuer    string    `json:"issuer"`
	ExpiresAt time.Time `json:"expires_at"`
	// A device sign-in: the person enters UserCode at VerificationURI;
	// the CLI polls /v1/sso/finish with State (no code) every IntervalS
	// seconds while it answers 409 sso_pending.
	UserCode                string `json:"user_code,omitempty"`
	VerificationURI         string `json:"verification_uri,omitempty"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	IntervalS               int    `json:"interval_s,omitempty"`
}

// SSOFinishRequest completes the sign-in with what reached the redirect,
// or, for a device sign-in, polls it (State only, no Code).
type SSOFinishRequest struct {
	State      string `json:"state"`
	Code       string `json:"code"`
	DeviceJWK  string `json:"device_jwk"`
	DeviceName string `json:"device_name,omitempty"`
}

// SSOLoginResponse is a LoginResponse that also names the person, whom
// the CLI did not name when it asked.
type SSOLoginResponse struct {
	LoginResponse
	Username string `json:"username"`
}
