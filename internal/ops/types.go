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
	OpRunning   OpState = "running"
	OpSucceeded OpState = "succeeded"
	OpHalted    OpState = "halted"          // stopped by a person or by the error threshold
	OpAttention OpState = "needs_attention" // server restarted with steps in flight: a person must resume or abort
	OpAborted   OpState = "aborted"
	OpDenied    OpState = "denied"
	OpVoid      OpState = "void" // approvals voided by drift; re-plan
)

// StepState is one host's progress through one step of an operation.
type StepState string

const (
	StepPending    StepState = "pending"
	StepDispatched StepState = "dispatched" // recorded durably BEFORE it is sent to the agent
	StepSucceeded  StepState = "succeeded"
	StepFailed     StepState = "failed" // non-zero exit, timeout, or unreachable
	StepUnknown    StepState = "unknown" // was in flight when the server stopped
	StepSkipped    StepState = "skipped"
)
