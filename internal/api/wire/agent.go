package wire

import "time"

// ProtocolVersion is the agent↔server protocol version.
//   - 1: 2026-11-29: enroll, connect (one mTLS connection, server streams
//     steps as JSON lines), heartbeat, report step results, renew the
//     client certificate (POST /v1/agent/renew)
const ProtocolVersion = 1

// EnrollRequest is what a new agent sends, with its one-time join token,
// to POST /v1/agent/enroll (TLS, not yet mTLS).
type EnrollRequest struct {
	Token    string `json:"token"`
	Hostname string `json:"hostname"`
	CSR      string `json:"csr"` // PEM certificate signing request for the agent's own key
}

// EnrollResponse carries the agent's identity and its client certificate.
type EnrollResponse struct {
	HostID      string            `json:"host_id"`
	Certificate string            `json:"certificate"` // PEM, signed by Interlock's CA
	CA          string            `json:"ca"`          // PEM of the CA, to pin
	Services    []string          `json:"services"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// RenewRequest asks for a new client certificate for a new key before the
// current one expires (POST /v1/agent/renew, mTLS with the current
// certificate; the host ID comes from it, never from the body).
type RenewRequest struct {
	CSR string `json:"csr"` // PEM certificate signing request for the agent's new key
}

// RenewResponse carries the renewed certificate.
type RenewResponse struct {
	Certificate string `json:"certificate"` // PEM, signed by Interlock's CA
	CA          string `json:"ca"`          // PEM of the CA
}

// Heartbeat is sent by an agent every few seconds (POST /v1/agent/heartbeat, mTLS).
type Heartbeat struct {
	ProtocolVersion int  `json:"protocol_version"`
	Healthy         bool `json:"healthy"`
}

// Defaults an agent applies to a Step that leaves them zero; the hub waits
// for a result by the same timeout.
const (
	DefaultStepTimeoutSeconds = 300
	DefaultMaxOutputBytes     = 64 << 10
)

// Step is one command the server assigns to one host as part of an
// operation. StepID is unique per (operation, host, phase) so the agent
// and server can refuse to run it twice.
type Step struct {
	StepID         string            `json:"step_id"`
	OpID           string            `json:"op_id"`
	Phase          string            `json:"phase"` // "run", "health", "rollback"
	Argv           []string          `json:"argv"`
	Shell          bool              `json:"shell,omitempty"`
	TimeoutSeconds int               `json:"timeout_s"`
	MaxOutputBytes int               `json:"max_output_bytes"`
	Env            map[string]string `json:"env,omitempty"` // parameters as PARAM_<NAME>, resolved secrets included: never in Argv
	// Redact lists values (e.g. resolved secrets) the agent MUST remove
	// from output before reporting it, with their common encodings
	// (internal/redact).
	Redact []string `json:"redact,omitempty"`
}

// AgentMessage is one line of the server→agent stream (GET /v1/agent/connect).
type AgentMessage struct {
	Type string `json:"type"` // "step" or "ping"
	Step *Step  `json:"step,omitempty"`
}

// StepResult is what an agent reports (POST /v1/agent/results, mTLS).
type StepResult struct {
	StepID     string    `json:"step_id"`
	ExitCode   int       `json:"exit_code"`
	Output     string    `json:"output"` // capped and redacted
	Truncated  bool      `json:"truncated,omitempty"`
	TimedOut   bool      `json:"timed_out,omitempty"`
	Error      string    `json:"error,omitempty"` // could not start, etc.
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}
