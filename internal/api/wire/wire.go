// Package wire holds the JSON types of Interlock's HTTP API and the
// agent protocol, and the history of their versions. It has no behaviour:
// the server (internal/api), the typed client (internal/apiclient) and the
// agent all speak through these types.
package wire

import "time"

// APIVersion is the version of the /v1 HTTP API's JSON shapes.
//   - 1: 2026-11-29: first version
const APIVersion = 1

// Principal is who is calling: a person (through a device-bound session)
// or an agent (through its mTLS client certificate).
type Principal struct {
	Kind      string    `json:"kind"` // "person" or "agent"
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles,omitempty"`
	DeviceID  string    `json:"device_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	MFAAt     time.Time `json:"mfa_at,omitzero"` // when the person last proved a second factor
	// Grants names the just-in-time grants (internal/elevate) whose roles
	// are in Roles for this request; empty for standing roles only.
	Grants []string `json:"grants,omitempty"`
}

// Actor is the principal as audit entries name it: "person:<id>" or "agent:<id>".
func (p Principal) Actor() string { return p.Kind + ":" + p.ID }

// Problem is an RFC 9457 problem document, the body of every error.
type Problem struct {
	Type      string `json:"type,omitempty"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
	Details   any    `json:"details,omitempty"`
}
