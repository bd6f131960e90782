package elevate

// Audit kinds this package writes (layouts pinned in
// internal/cli/testdata/audit_kinds.golden):
//
//   - elevate.eligibility_set v1 (2026-12-03): Data roles, previous;
//     Personal username. Subject person:<id>.
//   - elevate.requested v1: Data role, duration_s, approvals_needed,
//     approver_roles, policy_ids; Personal reason. Subject grant:<id>.
//   - elevate.approved v1: Data role, requester, approvals, needed.
//   - elevate.approval_refused v1: Data role, code; Personal why.
//   - elevate.activated v1: Data role, starts_at, expires_at (unix s),
//     approvers. Actor is the holder.
//   - elevate.denied v1, elevate.revoked v1: Data role, holder,
//     state_before, state; Personal reason.
//   - elevate.expired v1: Data role, holder, state_before (active or
//     pending), ended_at (unix s); Actor system. Written by ExpireDue.
//   - elevate.decision v1 (written by internal/app): one authorization
//     decision for a person holding active grants; Data grants, action,
//     resource_type, resource_id, allow.
const (
	KindEligibilitySet  = "elevate.eligibility_set"
	KindRequested       = "elevate.requested"
	KindApproved        = "elevate.approved"
	KindApprovalRefused = "elevate.approval_refused"
	KindActivated       = "elevate.activated"
	KindDenied          = "elevate.denied"
	KindRevoked         = "elevate.revoked"
	KindDecision        = "elevate.decision"
	KindExpired         = "elevate.expired"
)
