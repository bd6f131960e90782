// Package ops owns what a privileged operation is and the rules it must
// pass: the inventory model (hosts, services, capacity floors), runbooks,
// the planner that turns a runbook and parameters into exact hosts in
// waves, the guardrails evaluated on the plan and before every wave, and
// approvals bound to the plan's hash. The wave executor lives in
// internal/ops/exec.
package ops

import "time"

// Host is one machine that runs an agent.
type Host struct {
	ID       string            // stable ID assigned at enrollment
	Name     string            // hostname reported by the agent
	Services []string          // every service this host serves (one host may serve several)
	Labels   map[string]string // e.g. zone=a
	// InService is false once an operation has removed the host from service.
	InService bool
	// LastSeen is the last heartbeat; Healthy is what that heartbeat said.
	LastSeen time.Time
	Healthy  bool
	// RevokedAt is when a person revoked the host's agent identity (zero:
	// never). A revoked host is never live: its certificate is refused and
	// its last heartbeat no longer counts.
	RevokedAt time.Time
}

// Threshold is a count of hosts or a percentage of a service's hosts.
// Exactly one of Count and Percent is meaningful; Percent is 0–100.
type Threshold struct {
	Count     int
	Percent   float64
	IsPercent bool
}

// Service is a named set of hosts with capacity rules.
type Service struct {
	Name string
	// MinHealthy is the capacity floor: healthy in-service hosts that must
	// remain after any operation. The zero value means no floor.
	MinHealthy Threshold
	// MaxPerOperation caps how many of the service's hosts one operation
	// may change. The zero value means no cap.
	MaxPerOperation Threshold
	// Freezes are windows in which no operation may touch the service.
	Freezes []Window
}

// Window is a half-open time interval [Start, End).
type Window struct {
	Start, End time.Time
	Reason     string
}

// Risk orders runbooks by how much damage a mistake could do.
type Risk string

const (
	RiskLow    Risk = "low"
	RiskMedium Risk = "medium"
	RiskHigh   Risk = "high"
)

// OpState is where an operation is in its life.
type OpState string

const (
	OpPending   OpState = "pending_approval" // planned, waiting for approvals
	OpReady     OpState = "ready"            // approved (or needing none): the executor may start it
	OpRunning   OpState = "running"
	OpSucceeded OpState = "succeeded"
	OpHalted    OpState = "halted"          // stopped by a person or by the error threshold
	OpAttention OpState = "needs_attention" // server restarted with steps in flight: a person must resume or abort
	OpAborted   OpState = "aborted"
	OpDenied    OpState = "denied"
	OpVoid      OpState = "void" // approvals voided by drift; re-plan
	// OpWithdrawn: taken back by its requester before it started.
	OpWithdrawn OpState = "withdrawn"
)

// StepState is one host's progress through one step of an operation.
type StepState string

const (
	StepPending    StepState = "pending"
	StepDispatched StepState = "dispatched" // recorded durably BEFORE it is sent to the agent
	StepSucceeded  StepState = "succeeded"
	StepFailed     StepState = "failed"  // non-zero exit, timeout, or unreachable
	StepUnknown    StepState = "unknown" // was in flight when the server stopped
	StepSkipped    StepState = "skipped"
)

// Command is what an agent runs on a host: argv without a shell unless
// Shell is set, killed after TimeoutSeconds, output capped at MaxOutputBytes.
//
// With Shell set, Argv is the runbook's text exactly as applied: parameter
// values never become script text, the script reads them from Env. Without
// a shell, non-secret {{param}} placeholders are substituted into argv
// elements (each stays one argument; no shell parses it).
type Command struct {
	Argv []string `json:"argv"`
	// Env holds every non-secret parameter as PARAM_<NAME>=value.
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv maps PARAM_<NAME> to the "secret:PATH" of each secret
	// parameter. The executor MUST resolve it at dispatch and pass the
	// value in that environment variable only (never argv), and redact it.
	SecretEnv      map[string]string `json:"secret_env,omitempty"`
	Shell          bool              `json:"shell,omitempty"`
	TimeoutSeconds int               `json:"timeout_s"`
	MaxOutputBytes int               `json:"max_output_bytes"`
}

// Wave is one batch of hosts that run the step together. Wave 1 is always
// the canary: exactly one host.
type Wave struct {
	Number int      `json:"number"`
	Hosts  []string `json:"hosts"` // host IDs, in dispatch order
}

// Plan is the exact, ordered work an operation will do. Its Hash covers
// every field that changes what runs where; approvals sign the Hash, so any
// drift voids them.
type Plan struct {
	Runbook         string            `json:"runbook"`
	Service         string            `json:"service"` // the service the runbook's target names
	RunbookVersion  int               `json:"runbook_version"`
	Params          map[string]string `json:"params"`
	Waves           []Wave            `json:"waves"`
	Step            Command           `json:"step"`
	HealthCheck     *Command          `json:"health_check,omitempty"`
	Rollback        *Command          `json:"rollback,omitempty"`
	Concurrency     int               `json:"concurrency"`         // hosts of one wave running at once
	HaltAfter       int               `json:"halt_after_failures"` // halt when failures > HaltAfter
	BakeSeconds     int               `json:"bake_s"`              // wait after a wave before the health check
	Services        []string          `json:"services"`            // every service a targeted host serves
	RemovesCapacity bool              `json:"removes_capacity"`
	// SecretRefs lists the "secret:PATH" of every secret the operation
	// reads (the commands' SecretEnv), sorted: what the approver is shown.
	// The requester was authorized to read each (secret.get) when it was
	// planned. The planner never resolves them; the executor resolves each
	// at dispatch time and adds the value to wire.Step.Redact.
	SecretRefs []string `json:"secret_refs,omitempty"`
	Hash       string   `json:"hash"` // hex SHA-256 of the canonical JSON of the fields above
}

// Verdict is one guardrail's judgement on a plan, in words a tired operator
// understands: what, why, the numbers, and what would pass.
type Verdict struct {
	Rule    string `json:"rule"` // e.g. "capacity_floor", "blast_radius", "freeze", "one_at_a_time", "unusual_input"
	Service string `json:"service,omitempty"`
	Pass    bool   `json:"pass"`
	Message string `json:"message"`
}

// Approval is one person's signature on a plan hash.
type Approval struct {
	PersonID  string    `json:"person_id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	PlanHash  string    `json:"plan_hash"`
	At        time.Time `json:"at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Operation is one run of a runbook: who asked, why, the plan, its
// approvals and where it is.
type Operation struct {
	ID          string     `json:"id"`
	Plan        Plan       `json:"plan"`
	State       OpState    `json:"state"`
	RequesterID string     `json:"requester_id"` // person ID, never a shared account
	Reason      string     `json:"reason"`
	BreakGlass  bool       `json:"break_glass,omitempty"`
	Approvals   []Approval `json:"approvals,omitempty"`
	Needed      int        `json:"approvals_needed"`
	NeededRoles []string   `json:"approver_roles,omitempty"`
	CurrentWave int        `json:"current_wave"` // 0 before the first wave starts
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Detail      string     `json:"detail,omitempty"` // why it halted, voided or needs attention
}
