package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Inventory, runbooks, operations and approvals (internal/ops), API v1.
//
//	POST /v1/join-tokens             JoinTokenCreateRequest → JoinToken
//	GET  /v1/hosts                   → HostList
//	POST /v1/hosts/{id}/revoke       ReasonRequest → Host (host.revoke on Host::"<id>"; its agent identity is refused from now on)
//	POST /v1/hosts/{id}/return       ReasonRequest → Host (host.return on Host::"<id>"; back in service after a person checked it)
//	GET  /v1/services                → ServiceList
//	PUT  /v1/services/{name}         ServiceSetRequest → Service, or 202 ChangePending when it loosens (change.go)
//	POST /v1/services                ServicesApplyRequest (YAML) → ServiceList, or 202 ChangePending when it loosens
//	GET  /v1/runbooks                → RunbookList
//	GET  /v1/runbooks/{name}         → Runbook (with Source)
//	POST /v1/runbooks                RunbookApplyRequest → 202 ChangePending (Runbook when the text is the latest version's)
//	POST /v1/plans                   RunRequest → PlanResult (dry run: nothing stored)
//	POST /v1/ops                     RunRequest → RunResponse (refused: 403 code "guardrail", details GuardrailRefusal)
//	GET  /v1/ops?state=&runbook=&limit= → OperationList
//	GET  /v1/ops/{id}                → Operation
//	POST /v1/ops/{id}/approvals      ApproveRequest → ApproveResponse
//	POST /v1/ops/{id}/deny           ReasonRequest → Operation
//	POST /v1/ops/{id}/withdraw       ReasonRequest → Operation (the requester takes it back)
//	POST /v1/ops/{id}/halt           ReasonRequest → Operation
//	POST /v1/ops/{id}/resume         ReasonRequest → Operation
//	POST /v1/ops/{id}/abort          ReasonRequest → Operation

// JoinTokenCreateRequest asks for a one-time host enrollment token.
type JoinTokenCreateRequest struct {
	Services   []string          `json:"services"`
	Labels     map[string]string `json:"labels,omitempty"`
	TTLSeconds int64             `json:"ttl_s"`
}

// JoinToken is shown once, at creation; the server keeps only its hash.
type JoinToken struct {
	Token     string            `json:"token"` // "ilk_join_…"
	Services  []string          `json:"services"`
	Labels    map[string]string `json:"labels,omitempty"`
	ExpiresAt time.Time         `json:"expires_at"`
}

// Host is one enrolled machine.
type Host struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Services  []string          `json:"services"`
	Labels    map[string]string `json:"labels,omitempty"`
	InService bool              `json:"in_service"`
	Healthy   bool              `json:"healthy"` // what its last heartbeat said
	Live      bool              `json:"live"`    // healthy and heard from within the staleness window
	LastSeen  time.Time         `json:"last_seen,omitzero"`
	HeldBy    string            `json:"held_by,omitempty"`   // operation holding it
	RevokedAt time.Time         `json:"revoked_at,omitzero"` // its agent identity was revoked: never live again
}

// HostList is GET /v1/hosts.
type HostList struct {
	Hosts []Host `json:"hosts"`
}

// FreezeWindow is a half-open interval [Start, End) in which no operation
// may touch a service.
type FreezeWindow struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason,omitempty"`
}

// Service is a service's rules and its capacity now.
type Service struct {
	Name            string         `json:"name"`
	MinHealthy      string         `json:"min_healthy,omitempty"`       // "50%" or "3"; "" = no floor
	MaxPerOperation string         `json:"max_per_operation,omitempty"` // "10%" or "2"; "" = no cap
	Freezes         []FreezeWindow `json:"freezes,omitempty"`
	Total           int            `json:"total"`   // hosts that serve it
	Healthy         int            `json:"healthy"` // healthy and in service now
	Floor           int            `json:"floor"`   // hosts MinHealthy demands
	Held            int            `json:"held"`    // healthy hosts held by running operations
}

// ServiceList is GET /v1/services.
type ServiceList struct {
	Services []Service `json:"services"`
}

// ServiceSetRequest changes the rules it names of one service (PUT
// /v1/services/{name}); the others stay as they are. An empty threshold
// keeps the rule, "none" removes it; Freezes, when present (even empty),
// replace the freeze windows. A request that names no rule is refused, and
// so is an unknown service unless Create is set. A change that loosens a
// rule (a lower floor, a higher cap, a freeze removed) answers 202 with a
// ChangePending; one that only tightens applies at once.
type ServiceSetRequest struct {
	MinHealthy      string         `json:"min_healthy,omitempty"`
	MaxPerOperation string         `json:"max_per_operation,omitempty"`
	Freezes         []FreezeWindow `json:"freezes,omitempty"`
	Create          bool           `json:"create,omitempty"`
}

// ServicesApplyRequest applies a services YAML file in one transaction.
type ServicesApplyRequest struct {
	YAML string `json:"yaml"`
}

// RunbookApplyRequest applies a runbook YAML file as a new version.
type RunbookApplyRequest struct {
	YAML string `json:"yaml"`
}

// RunbookParam is one typed runbook parameter.
type RunbookParam struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"` // int, string, service, secret
	Description string   `json:"description,omitempty"`
	Min         *int64   `json:"min,omitempty"`
	Max         *int64   `json:"max,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
	Enum        []string `json:"enum,omitempty"`
	Default     *string  `json:"default,omitempty"`
}

// Runbook is one version of a runbook.
type Runbook struct {
	Name            string         `json:"name"`
	Version         int            `json:"version"`
	Description     string         `json:"description,omitempty"`
	Risk            string         `json:"risk"`
	RemovesCapacity bool           `json:"removes_capacity"`
	Parameters      []RunbookParam `json:"parameters"`
	AppliedBy       string         `json:"applied_by"`
	AppliedAt       time.Time      `json:"applied_at"`
	Source          string         `json:"source,omitempty"` // the YAML, on GET of one runbook
}

// RunbookList is GET /v1/runbooks.
type RunbookList struct {
	Runbooks []Runbook `json:"runbooks"`
}

// RunRequest asks to run (POST /v1/ops) or plan (POST /v1/plans) a runbook.
type RunRequest struct {
	Runbook string            `json:"runbook"`
	Params  map[string]string `json:"params"`
	Reason  string            `json:"reason"`
	// Confirm repeats the values of unusual parameters (--confirm k=v).
	Confirm map[string]string `json:"confirm,omitempty"`
	// BreakGlass skips approvals (never guardrails); it needs action
	// op.breakglass, fresh MFA and a reason, and raises an alert.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// Command is what an agent runs. A shell command's Argv is its script,
// exactly as approved; parameters reach it only through Env.
type Command struct {
	Argv []string `json:"argv"`
	// Env is every non-secret parameter as PARAM_<NAME>=value.
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv maps PARAM_<NAME> to the "secret:PATH" whose value the
	// executor puts there at dispatch (never the value itself).
	SecretEnv      map[string]string `json:"secret_env,omitempty"`
	Shell          bool              `json:"shell,omitempty"`
	TimeoutSeconds int               `json:"timeout_s"`
	MaxOutputBytes int               `json:"max_output_bytes"`
}

// Wave is one batch of hosts; wave 1 is the canary.
type Wave struct {
	Number int      `json:"number"`
	Hosts  []string `json:"hosts"` // host IDs in dispatch order
}

// Plan is the exact work of an operation. Hash is what approvals sign.
type Plan struct {
	Runbook         string            `json:"runbook"`
	Service         string            `json:"service"`
	RunbookVersion  int               `json:"runbook_version"`
	Params          map[string]string `json:"params"`
	Waves           []Wave            `json:"waves"`
	Step            Command           `json:"step"`
	HealthCheck     *Command          `json:"health_check,omitempty"`
	Rollback        *Command          `json:"rollback,omitempty"`
	Concurrency     int               `json:"concurrency"`
	HaltAfter       int               `json:"halt_after_failures"`
	BakeSeconds     int               `json:"bake_s"`
	Services        []string          `json:"services"`
	RemovesCapacity bool              `json:"removes_capacity"`
	SecretRefs      []string          `json:"secret_refs,omitempty"` // "secret:PATH" (never values) it reads; the requester may secret.get each
	Hash            string            `json:"hash"`
	// HostNames maps each planned host ID to its name, for display.
	HostNames map[string]string `json:"host_names,omitempty"`
	// HostsDigest is HostsDigest(Waves) as the server computed it: what
	// the operation's op.requested log entry records (version 2).
	HostsDigest string `json:"hosts_digest,omitempty"`
}

// Verdict is one guardrail's judgement, as a sentence.
type Verdict struct {
	Rule    string `json:"rule"`
	Service string `json:"service,omitempty"`
	Pass    bool   `json:"pass"`
	Message string `json:"message"`
}

// PlanResult is a plan, every verdict on it and what it still needs.
type PlanResult struct {
	Plan           Plan      `json:"plan"`
	Verdicts       []Verdict `json:"verdicts"`
	Allowed        bool      `json:"allowed"`
	NeedsApprovals int       `json:"needs_approvals"`
	ApproverRoles  []string  `json:"approver_roles,omitempty"`
	NeedsConfirm   []string  `json:"needs_confirm,omitempty"`
	Unusual        []string  `json:"unusual,omitempty"`
	PolicyIDs      []string  `json:"policy_ids,omitempty"`
}

// GuardrailRefusal is the problem "details" of a run refused by guardrails.
type GuardrailRefusal struct {
	Verdicts     []Verdict `json:"verdicts"`
	NeedsConfirm []string  `json:"needs_confirm,omitempty"`
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

// Operation is one run of a runbook.
type Operation struct {
	ID          string     `json:"id"`
	State       string     `json:"state"` // pending_approval, ready, running, succeeded, halted, needs_attention, aborted, denied, withdrawn, void
	Plan        Plan       `json:"plan"`
	RequesterID string     `json:"requester_id"`
	Reason      string     `json:"reason"`
	BreakGlass  bool       `json:"break_glass,omitempty"`
	Approvals   []Approval `json:"approvals,omitempty"`
	Needed      int        `json:"approvals_needed"`
	NeededRoles []string   `json:"approver_roles,omitempty"`
	CurrentWave int        `json:"current_wave"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Detail      string     `json:"detail,omitempty"`
	// Verdicts are the guardrails judged again on the live inventory, for
	// GET /v1/ops/{id} of an operation that has not started (what an
	// approver signs); empty otherwise.
	Verdicts []Verdict `json:"verdicts,omitempty"`
}

// RunResponse is POST /v1/ops: the stored operation and its plan result.
// Started is true when no approval was needed and execution began.
type RunResponse struct {
	Operation Operation  `json:"operation"`
	Result    PlanResult `json:"result"`
	Started   bool       `json:"started,omitempty"`
	// StartError says why an operation that needed no approval did not start.
	StartError string `json:"start_error,omitempty"`
}

// OperationList is GET /v1/ops.
type OperationList struct {
	Operations []Operation `json:"operations"`
}

// ApproveRequest signs the plan hash the approver looked at.
type ApproveRequest struct {
	PlanHash string `json:"plan_hash"`
}

// ApproveResponse says whether the approval completed the quorum and
// execution began.
type ApproveResponse struct {
	Operation Operation `json:"operation"`
	Ready     bool      `json:"ready"`
	Started   bool      `json:"started,omitempty"`
	// StartError says why a ready operation did not start (the approval
	// itself was recorded).
	StartError string `json:"start_error,omitempty"`
	// Warning says that separation of duties rests on one person (a single
	// active admin); empty otherwise.
	Warning string `json:"warning,omitempty"`
}

// ReasonRequest carries a person's reason (deny, halt, resume, abort).
type ReasonRequest struct {
	Reason string `json:"reason,omitempty"`
}

// HostsDigest is the hex SHA-256 of waves' JSON encoding (each wave's
// number and host IDs, in dispatch order). The op.requested log entry
// (version 2) records it beside the plan hash instead of the host list,
// which at thousands of hosts would pass the log's entry limit; anyone
// holding the list (interlock ops show OP --hosts) computes it again and
// compares it with the logged one.
func HostsDigest(waves []Wave) string {
	if waves == nil {
		waves = []Wave{}
	}
	b, err := json.Marshal(waves)
	if err != nil {
		panic(fmt.Sprintf("wire: encode waves: %v", err)) // []Wave always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
