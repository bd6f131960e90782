package wire

import "time"

// Change requests for the gate's own configuration (internal/change), API v1.
// A change that could loosen a safety property (policy, runbooks, service
// rules, roles) becomes a request another person approves with fresh MFA.
//
//	GET  /v1/changes?state=          → ChangeList                       action change.list
//	GET  /v1/changes/{id}            → ChangeRequest (with its diff)    action change.get
//	POST /v1/changes/{id}/approvals  ChangeApproveRequest → ChangeRequest  action change.approve (fresh MFA)
//	POST /v1/changes/{id}/deny       ReasonRequest → ChangeRequest      action change.deny
//	POST /v1/changes/{id}/withdraw   ReasonRequest → ChangeRequest      action change.withdraw (requester only)
//	POST /v1/changes/{id}/apply      → ChangeApplied                    action change.apply (requester only; approved invitations)
//
// The routes that change configuration answer 202 Accepted with a
// ChangePending instead of their usual body when they made a request
// rather than applying: PUT /v1/policy, POST /v1/runbooks,
// PUT /v1/services/{name}, POST /v1/services, POST /v1/users/invitations,
// POST /v1/users/{name}/disable.

// ChangeRequest is one proposed change to configuration.
type ChangeRequest struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`   // "policy", "runbook", "services", "user.invite", "user.disable", "log.fork"
	Target string `json:"target"` // e.g. "interlock", the runbook's or a service's name, a username
	// State is pending, approved (an invitation waiting for its requester
	// to collect the code), applied, denied, withdrawn, expired or void
	// (what it changes moved on before it was approved).
	State string `json:"state"`
	// Hash is "sha256:<hex>" of the exact content (kind, target, the new
	// content and what it replaces). Approving signs this hash.
	Hash          string     `json:"hash"`
	Summary       string     `json:"summary"`
	Diff          ChangeDiff `json:"diff"`
	RequesterID   string     `json:"requester_id"`
	RequesterName string     `json:"requester_name"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     time.Time  `json:"expires_at"`
	DecidedBy     string     `json:"decided_by,omitempty"`
	DecidedAt     time.Time  `json:"decided_at,omitzero"`
	Detail        string     `json:"detail,omitempty"`
}

// ChangeList is GET /v1/changes, newest first.
type ChangeList struct {
	Changes []ChangeRequest `json:"changes"`
}

// ChangePending is the 202 answer of a configuration route that made a
// change request instead of applying.
type ChangePending struct {
	ChangeRequest ChangeRequest `json:"change_request"`
}

// ChangeApproveRequest signs the hash of the content the approver reviewed.
type ChangeApproveRequest struct {
	Hash string `json:"hash"`
}

// ChangeApplied is POST /v1/changes/{id}/apply: an approved invitation,
// whose code goes to the requester only.
type ChangeApplied struct {
	ChangeRequest ChangeRequest `json:"change_request"`
	Invitation    *Invitation   `json:"invitation,omitempty"`
	Reset         *ResetCode    `json:"reset,omitempty"` // a user.reset's one-time code (recovery.go)
}

// ChangeDiff is what an approver sees: the meaning of the change, not
// only its text. Exactly one field is set, by the request's kind.
type ChangeDiff struct {
	Policy   *PolicyDiff   `json:"policy,omitempty"`
	Runbook  *RunbookDiff  `json:"runbook,omitempty"`
	Services []ServiceDiff `json:"services,omitempty"`
	User     *UserChange   `json:"user,omitempty"`
	LogFork  *LogForkDiff  `json:"log_fork,omitempty"`
}

// LogForkDiff is a log.fork request: what the signer remembers, what the
// database holds, and so what a new epoch would continue from. The
// request is void if either changes before it is approved.
type LogForkDiff struct {
	Origin string `json:"origin"`
	Reason string `json:"reason"`
	// The checkpoint the signer remembers signing.
	RememberedSize  uint64    `json:"remembered_size"`
	RememberedRoot  string    `json:"remembered_root"` // hex
	RememberedAt    time.Time `json:"remembered_at"`
	RememberedEpoch uint64    `json:"remembered_epoch"`
	// The tree the database holds, which the new epoch continues.
	DatabaseSize uint64 `json:"database_size"`
	DatabaseRoot string `json:"database_root"` // hex
	// Sentence says it in words, for the approver.
	Sentence string `json:"sentence"`
}

// PolicyDiff compares two policies by evaluating both with Cedar over
// every action × role (and the resources and contexts the policies name).
type PolicyDiff struct {
	OldHash string `json:"old_hash"`
	NewHash string `json:"new_hash"`
	// Gained and Lost are (principal, action, resource) triples whose
	// decision changed; Before and After are "denied", "with fresh MFA"
	// (allowed only when the person proved MFA in the last 5 minutes) or
	// "allowed".
	Gained []PermissionChange `json:"gained,omitempty"`
	Lost   []PermissionChange `json:"lost,omitempty"`
	// Approvals lists contexts of op.run whose approval requirement changed.
	Approvals []ApprovalChange `json:"approvals,omitempty"`
	// Policy ids added, removed or whose text changed.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// Samples is how many decisions the diff evaluated.
	Samples int `json:"samples"`
	// Unenumerated names each added, removed or changed policy whose
	// conditions read an input the diff does not vary (a context value
	// such as source_ip, now or reason, an attribute), as
	// "<id> (reads context.source_ip)": what it changes cannot be shown,
	// only read in its text.
	Unenumerated []string `json:"unenumerated,omitempty"`
}

// PermissionChange is one decision that differs between two policies.
type PermissionChange struct {
	Principal string `json:"principal"` // `role operator` or `agent`
	Action    string `json:"action"`
	Resource  string `json:"resource"` // `any Service` or `Service::"billing"`
	Before    string `json:"before"`
	After     string `json:"after"`
}

// ApprovalChange is one op.run context whose approval requirement differs.
type ApprovalChange struct {
	Context string   `json:"context"` // e.g. `risk=high removes_capacity=true`
	Before  int      `json:"before"`
	After   int      `json:"after"`
	Roles   []string `json:"roles,omitempty"` // approver roles after
	// BeforeRoles are the approver roles before, set only when approvals
	// are needed before and after and the roles changed.
	BeforeRoles []string `json:"before_roles,omitempty"`
}

// RunbookDiff compares a runbook's new text with its latest version.
type RunbookDiff struct {
	Name string `json:"name"`
	New  bool   `json:"new"` // no earlier version: every field is listed
	// Fields that differ: description, risk, removes_capacity,
	// parameters.NAME, target, step, health_check, rollback, waves, … as
	// compact JSON ("" when absent).
	Fields []FieldChange `json:"fields"`
}

// FieldChange is one field, before and after.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
}

// ServiceDiff is one service's rules before and after.
type ServiceDiff struct {
	Name   string `json:"name"`
	Create bool   `json:"create,omitempty"`
	// Loosens names what makes this a change request (empty: it only tightens).
	Loosens []string      `json:"loosens,omitempty"`
	Fields  []FieldChange `json:"fields"`
}

// UserChange is a role grant or a person disabled.
type UserChange struct {
	Username string   `json:"username"`
	Role     string   `json:"role,omitempty"`      // user.invite
	Status   string   `json:"status,omitempty"`    // user.disable: the status before
	Reset    string   `json:"reset,omitempty"`     // user.reset: totp, password or credentials
	Enable   bool     `json:"enable,omitempty"`    // user.enable (Status: the status before)
	Roles    []string `json:"roles,omitempty"`     // user.roles: the roles after
	OldRoles []string `json:"old_roles,omitempty"` // user.roles: the roles before
}
