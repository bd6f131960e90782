// Package policy owns authorization: every API action is one Cedar request
// (principal, action, resource, context) decided by the [Engine] against a
// hot-swappable policy set, default deny. It also owns the default policy
// file (default.cedar), the action names, the approval requirements that
// internal/ops reads from policy, and the [Service] that stores, validates,
// tests and applies new policy versions.
//
// internal/api (through an adapter in internal/app) and internal/ops import
// it. It imports only wire, audit and usererr from this project.
package policy

import (
	"github.com/interlock-dev/interlock/internal/api/wire"
)

// Request is one authorization question: may Principal do Action on
// Resource, in Context?
type Request struct {
	Principal wire.Principal
	// Action is one of [Actions], e.g. [ActionOpRun].
	Action   string
	Resource Resource
	// Context carries what the caller knows beyond the principal: at least
	// source_ip (and now, when the caller has its own clock), plus
	// route-specific keys such as risk, service or count. The Engine
	// always sets mfa_age_s and device_id from the Principal itself; a
	// caller MUST NOT rely on overriding them. Values may be string, bool,
	// integers, float64 (integral values become Long), time.Time (unix
	// seconds), []string, []any, map[string]any.
	Context map[string]any
}

// Resource is what a request acts on: Cedar entity Type::"ID" with
// attributes. An empty Type means System::"interlock".
type Resource struct {
	Type  string         `json:"type"` // one of [ResourceTypes]
	ID    string         `json:"id"`
	Attrs map[string]any `json:"attrs,omitempty"`
}

// Decision is the Engine's answer.
type Decision struct {
	Allow bool `json:"allow"`
	// Reasons are the @id of the policies that decided: the permits that
	// allowed it, or the forbids that denied it. Empty for a default deny.
	Reasons []string `json:"reasons,omitempty"`
	// Errors are policies that failed to evaluate (they count as not
	// matching) and problems with the request itself (which deny it).
	Errors []string `json:"errors,omitempty"`
}

// Requirement is how many approvals an operation needs, and from whom.
type Requirement struct {
	// Count is the number of distinct people, other than the requester,
	// who must approve.
	Count int `json:"count"`
	// Roles lists the roles an approver may hold (any one of them).
	Roles []string `json:"roles,omitempty"`
	// PolicyIDs are the approval policies that set Count.
	PolicyIDs []string `json:"policy_ids,omitempty"`
}
