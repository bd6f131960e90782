package wire

import "time"

// Account recovery (internal/identity/recovery.go):
//
//	POST /v1/users/{name}/reset  UserResetRequest → 202 ChangePending (always a change request)
//	POST /v1/recover             RecoverRequest → Enrollment (public: password + recovery code)
//	POST /v1/resets/accept       ResetAcceptRequest → Enrollment (public: the reset code)
//	POST /v1/users/{name}/enable → 204
//	POST /v1/users/{name}/roles  SetRolesRequest → 204, or 202 ChangePending when it loosens

// UserResetRequest asks to reset a person's "totp", "password" or
// "credentials" (both).
type UserResetRequest struct {
	Reset string `json:"reset"`
}

// ResetCode is an approved reset's one-time code, for its requester to
// hand to the person.
type ResetCode struct {
	Code      string    `json:"code"`
	Username  string    `json:"username"`
	Reset     string    `json:"reset"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RecoverRequest is a person's own recovery of a lost authenticator.
type RecoverRequest struct {
	Username     string `json:"username"`
	Password     string `json:"password"`
	RecoveryCode string `json:"recovery_code"`
}

// ResetAcceptRequest re-enrols with a reset code; Password is the new
// password when the reset resets it, and empty otherwise.
type ResetAcceptRequest struct {
	Code     string `json:"code"`
	Password string `json:"password,omitempty"`
}

// SetRolesRequest sets a person's roles, all of them.
type SetRolesRequest struct {
	Roles []string `json:"roles"`
}
