package wire

import "time"

// ProtocolVersion is the agent↔server protocol version.
//   - 1: 2026-11-29: enroll, connect (one mTLS connection, server streams
//     steps as JSON lines), heartbeat, report step results, renew the
//     client certificate (POST /v1/agent/renew)
//   - 2: 2026-12-03: agents witness the audit log. The enrollment answer
//     carries the log's public key (LogKey), which the agent pins; a
//     heartbeat reports the size of the newest checkpoint the agent
//     verified (LogSize), may carry the agent's cosignature of it and a
//     log alarm (rollback, fork, bad signature); the heartbeat answer
//     (200 with a HeartbeatResponse instead of 204) carries the latest
//     signed checkpoint and, when the sizes differ, a consistency proof
//     from LogSize. A version-1 agent ignores the answer's body; a
//     version-2 agent treats a 204 as "this server sends no checkpoint",
//     and sends the new heartbeat fields only once a server has sent it a
//     checkpoint (a version-1 server refuses unknown fields).
//   - 3: 2026-12-03: steps survive lost contact. No message changed shape;
//     what changed is who takes a result. The agent keeps every step's
//     result in its ledger (with the step's start, synced) and, at each
//     connect, POSTs to /v1/agent/results every result no server has
//     answered yet — also the result "interrupted" for a step it was
//     stopped during. A version-3 server takes a result no dispatch waits
//     for when it is for an unknown step of that host (settling it, once),
//     answers 204 for a replay of a result it already has, and 503 with
//     Retry-After while the step is still being recorded (the agent sends
//     it again). A version-2 server answers such results 409, which a
//     version-3 agent takes as final.
const ProtocolVersion = 3

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
	// LogKey is the audit log's signed-note verifier key (since version
	// 2). The agent pins it as it pins the CA: every checkpoint it is sent
	// later MUST verify with this key.
	LogKey string `json:"log_key,omitempty"`
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
	// LogSize is the size of the newest checkpoint the agent has verified;
	// nil when it holds none. The server proves consistency from it.
	LogSize *uint64 `json:"log_size,omitempty"`
	// Cosignature, when set, is the agent's witness cosignature of a
	// checkpoint it verified (since version 2).
	Cosignature *Cosignature `json:"cosignature,omitempty"`
	// LogAlarm, when set, reports that the agent saw the log go backwards,
	// fork or carry a bad signature. The agent sends it with every
	// heartbeat until an answer says LogAlarmRecorded.
	LogAlarm *LogAlarm `json:"log_alarm,omitempty"`
}

// Cosignature is an agent's C2SP tlog-cosignature/v1 (Ed25519) signature
// of a checkpoint, made with its witness key (not its mTLS key).
type Cosignature struct {
	// WitnessKey is the agent's cosignature/v1 verifier key
	// ("name+hash+base64(0x04||pub)").
	WitnessKey string `json:"witness_key"`
	// Note is the checkpoint as a signed note: the log's signature and the
	// agent's cosignature line.
	Note string `json:"note"`
}

// Log alarm kinds.
const (
	LogAlarmRollback     = "rollback"      // a checkpoint smaller than one already verified
	LogAlarmFork         = "fork"          // same size with another root, or a failed consistency proof
	LogAlarmBadSignature = "bad_signature" // a checkpoint that does not verify with the pinned log key
)

// LogAlarm is what an agent saw when the log stopped extending the
// history it had verified. Seen and Got are signed notes, the evidence.
type LogAlarm struct {
	Kind       string    `json:"kind"`
	Detail     string    `json:"detail"`
	Seen       string    `json:"seen,omitempty"` // the newest checkpoint the agent had verified
	Got        string    `json:"got,omitempty"`  // the checkpoint that did not extend it
	DetectedAt time.Time `json:"detected_at"`
}

// HeartbeatResponse answers a heartbeat (since version 2).
type HeartbeatResponse struct {
	// LogKey is the log's verifier key, for agents enrolled before
	// version 2 that have none pinned yet.
	LogKey string `json:"log_key,omitempty"`
	// Checkpoint is the server's latest signed checkpoint (a signed note,
	// possibly with witness cosignatures); empty when it has none yet.
	Checkpoint string `json:"checkpoint,omitempty"`
	// ConsistencyFrom and Consistency prove that the checkpoint extends the
	// tree of size ConsistencyFrom (the LogSize the heartbeat reported);
	// set only when that size is smaller than the checkpoint's.
	ConsistencyFrom *uint64  `json:"consistency_from,omitempty"`
	Consistency     [][]byte `json:"consistency,omitempty"`
	// LogAlarmRecorded says the heartbeat's LogAlarm is in the audit log.
	LogAlarmRecorded bool `json:"log_alarm_recorded,omitempty"`
	// CosignatureError says why the heartbeat's cosignature was not stored.
	CosignatureError string `json:"cosignature_error,omitempty"`
	// NextHeartbeatSeconds, when set, asks the agent to wait at least this
	// long before its next heartbeat unless its health changed or it has a
	// cosignature or log alarm to deliver: the server keeps a large
	// fleet's heartbeats within its budget and counts the agent's held
	// connection as its liveness meanwhile (agenthub heartbeat.go).
	NextHeartbeatSeconds int `json:"next_heartbeat_s,omitempty"`
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
	// NextSeconds, on a ping, is the longest the server will wait before
	// its next line: a server with a large fleet sends them less often,
	// and the agent waits that long (plus a margin) before it takes a
	// silent stream for a broken one.
	NextSeconds int `json:"next_s,omitempty"`
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
