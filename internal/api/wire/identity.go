package wire

import "time"

// Identity routes (internal/api/identity_routes.go):
//
//	POST /v1/bootstrap             BootstrapRequest → Enrollment         public, bootstrap-code authenticated
//	POST /v1/login                 LoginRequest → LoginResponse          public, DPoP proof (no token) required
//	POST /v1/logout                → 204
//	GET  /v1/whoami                → Principal
//	POST /v1/users/invitations     InviteRequest → Invitation
//	POST /v1/invitations/accept    AcceptRequest → Enrollment            public, invitation-code authenticated
//	GET  /v1/users                 → UserList
//	POST /v1/users/{name}/disable  → 204
//	GET  /v1/devices[?all=true]    → DeviceList                          the caller's devices, or everyone's
//	POST /v1/devices/{id}/revoke   → 204
//	POST /v1/mfa                   MFARequest → MFAResponse              step-up: a fresh TOTP code

// BootstrapRequest creates the first admin with the server's one-time code.
type BootstrapRequest struct {
	Code     string `json:"code"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Enrollment is a new account's TOTP seed. It is shown once.
type Enrollment struct {
	PersonID   string `json:"person_id"`
	Username   string `json:"username"`
	TOTPSecret string `json:"totp_secret"` // base32
	TOTPURI    string `json:"totp_uri"`    // otpauth://totp/…, for a QR code
	// RecoveryCodes are one-time codes for a lost authenticator, shown
	// once; RecoveryCodesLeft counts those unused after a recovery.
	RecoveryCodes     []string `json:"recovery_codes,omitempty"`
	RecoveryCodesLeft int      `json:"recovery_codes_left,omitempty"`
}

// LoginRequest signs in. The request MUST carry a DPoP proof (header
// "DPoP", no access token) signed by the key whose public JWK is DeviceJWK;
// the session is bound to that key.
type LoginRequest struct {
	Username   string `json:"username"`
	Password   string `json:"password"`
	OTP        string `json:"otp"`
	DeviceJWK  string `json:"device_jwk"` // the device's public Ed25519 key as a JWK (JSON text)
	DeviceName string `json:"device_name,omitempty"`
}

// LoginResponse carries the session token. Later requests send it as
// "Authorization: DPoP <token>" with a fresh proof from the same key.
type LoginResponse struct {
	Token     string    `json:"token"` // ilk_sess_…
	SessionID string    `json:"session_id"`
	PersonID  string    `json:"person_id"`
	DeviceID  string    `json:"device_id"`
	NewDevice bool      `json:"new_device"`
	ExpiresAt time.Time `json:"expires_at"`
}

// InviteRequest invites a person with one role: viewer, operator, approver or admin.
type InviteRequest struct {
	Username string `json:"username"`
	Role     string `json:"role"`
}

// Invitation is a one-time code for the invited person.
type Invitation struct {
	Code      string    `json:"code"` // ilk_inv_…
	PersonID  string    `json:"person_id"`
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AcceptRequest sets an invited person's password with their code.
type AcceptRequest struct {
	Code     string `json:"code"`
	Password string `json:"password"`
}

// User is a person's account, without credentials.
type User struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Roles     []string  `json:"roles"`
	Status    string    `json:"status"` // invited, active or disabled
	CreatedAt time.Time `json:"created_at"`
}

// UserList is the answer of GET /v1/users.
type UserList struct {
	Users []User `json:"users"`
}

// Device is a person's device key.
type Device struct {
	ID        string    `json:"id"`
	PersonID  string    `json:"person_id"`
	Username  string    `json:"username"`
	Name      string    `json:"name"`
	JKT       string    `json:"jkt"` // RFC 7638 thumbprint of the device key
	CreatedAt time.Time `json:"created_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// DeviceList is the answer of GET /v1/devices.
type DeviceList struct {
	Devices []Device `json:"devices"`
}

// MFARequest proves a second factor again (before approving, for example).
type MFARequest struct {
	OTP string `json:"otp"`
}

// MFAResponse says when the session's second factor was last proven.
type MFAResponse struct {
	MFAAt time.Time `json:"mfa_at"`
}
