package wire

// Policy routes (internal/api/policy_routes.go):
//
//	GET  /v1/policy        → Policy                                   action policy.get
//	PUT  /v1/policy        PolicyApplyRequest → 202 ChangePending     action policy.apply
//	                       (PolicyApplied when the text is already in force; see change.go)
//	POST /v1/policy/test   PolicyTestRequest → PolicyTestResponse     action policy.test
//
// All three act on the resource Policy::"interlock".

// Policy is the Cedar policy in force.
type Policy struct {
	Text string `json:"text"`
	// Version is 0 for the built-in default, then 1, 2, … per apply.
	Version int    `json:"version"`
	Hash    string `json:"hash"` // "sha256:<hex>" of Text
}

// PolicyApplyRequest replaces the policy. The server validates it first
// (it parses, every policy has a unique @id, actions and entity types are
// Interlock's, admins keep policy.apply) and changes nothing if it is not.
type PolicyApplyRequest struct {
	Text string `json:"text"`
}

// PolicyApplied is the outcome of an apply.
type PolicyApplied struct {
	Version int    `json:"version"`
	Hash    string `json:"hash"`
}

// PolicyTestRequest runs decision cases against Text without applying it;
// an empty Text tests the policy in force.
type PolicyTestRequest struct {
	Text  string           `json:"text,omitempty"`
	Cases []PolicyTestCase `json:"cases"`
}

// PolicyTestCase is one decision to check.
type PolicyTestCase struct {
	Name          string           `json:"name"`
	Principal     PolicyPrincipal  `json:"principal"`
	Action        string           `json:"action"`
	Resource      PolicyResource   `json:"resource,omitzero"`
	Context       map[string]any   `json:"context,omitempty"` // mfa_age_s sets how long ago the principal proved MFA
	Want          string           `json:"want,omitempty"`    // "allow", "deny" or "" (no check)
	WantReasons   []string         `json:"want_reasons,omitempty"`
	WantApprovals *PolicyApprovals `json:"want_approvals,omitempty"`
}

// PolicyPrincipal is who asks in a test case.
type PolicyPrincipal struct {
	Kind  string   `json:"kind,omitempty"` // "person" (default) or "agent"
	ID    string   `json:"id"`
	Roles []string `json:"roles,omitempty"`
}

// PolicyResource is what a test case acts on; empty means System::"interlock".
type PolicyResource struct {
	Type  string         `json:"type,omitempty"`
	ID    string         `json:"id,omitempty"`
	Attrs map[string]any `json:"attrs,omitempty"`
}

// PolicyApprovals is how many approvals policy asks for, and from whom.
type PolicyApprovals struct {
	Count     int      `json:"count"`
	Roles     []string `json:"roles,omitempty"`
	PolicyIDs []string `json:"policy_ids,omitempty"`
}

// PolicyTestResponse carries one result per case, in order.
type PolicyTestResponse struct {
	Hash    string             `json:"hash"` // of the policy tested
	Passed  int                `json:"passed"`
	Failed  int                `json:"failed"`
	Results []PolicyTestResult `json:"results"`
}

// PolicyTestResult is the decision for one case and whether it met the
// case's expectations.
type PolicyTestResult struct {
	Name      string           `json:"name"`
	Allow     bool             `json:"allow"`
	Reasons   []string         `json:"reasons,omitempty"` // @id of the deciding policies
	Errors    []string         `json:"errors,omitempty"`
	Approvals *PolicyApprovals `json:"approvals,omitempty"`
	Pass      bool             `json:"pass"`
	Failures  []string         `json:"failures,omitempty"`
}
