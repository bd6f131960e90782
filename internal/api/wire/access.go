package wire

import "time"

// Just-in-time elevation, training and access review (issue 12).
//
//	POST /v1/grants                     GrantRequest → Grant          elevate.request
//	GET  /v1/grants                     → GrantList                   elevate.list
//	GET  /v1/grants/{id}                → Grant                       elevate.list
//	POST /v1/grants/{id}/approve        → Grant                       elevate.approve (fresh MFA)
//	POST /v1/grants/{id}/deny           ReasonRequest → Grant         elevate.deny
//	POST /v1/grants/{id}/revoke         ReasonRequest → Grant         the holder, or elevate.revoke
//	PUT  /v1/eligibility/{user}         EligibilityRequest → GrantList elevate.eligibility (fresh MFA)
//	POST /v1/training                   TrainingRecordRequest → TrainingList  training.record
//	POST /v1/training/import            TrainingImportRequest → TrainingList  training.record
//	GET  /v1/training                   → TrainingList                training.list
//	GET  /v1/access/review              → AccessReview                access.review
//	POST /v1/access/review/decisions    AccessDecisionRequest → AccessDecisionResult  access.decide

// GrantRequest asks for a role for a while.
type GrantRequest struct {
	Role      string `json:"role"`
	DurationS int64  `json:"duration_s"`
	Reason    string `json:"reason"`
}

// GrantApproval is one approval of a grant.
type GrantApproval struct {
	Person string    `json:"person"` // username
	At     time.Time `json:"at"`
}

// Grant is one just-in-time grant. State is pending, active, expired,
// denied, revoked or withdrawn, as of the server's clock.
type Grant struct {
	ID            string          `json:"id"`
	Person        string          `json:"person"` // username
	PersonID      string          `json:"person_id"`
	Role          string          `json:"role"`
	Reason        string          `json:"reason"`
	DurationS     int64           `json:"duration_s"`
	State         string          `json:"state"`
	RequestedAt   time.Time       `json:"requested_at"`
	Needed        int             `json:"approvals_needed"`
	ApproverRoles []string        `json:"approver_roles,omitempty"`
	PolicyIDs     []string        `json:"policy_ids,omitempty"`
	Approvals     []GrantApproval `json:"approvals,omitempty"`
	StartsAt      time.Time       `json:"starts_at,omitzero"`
	ExpiresAt     time.Time       `json:"expires_at,omitzero"`
	EndedAt       time.Time       `json:"ended_at,omitzero"`
	EndedBy       string          `json:"ended_by,omitempty"`
	EndReason     string          `json:"end_reason,omitempty"`
}

// Eligibility is one role a person may be elevated to.
type Eligibility struct {
	Person    string    `json:"person"`
	PersonID  string    `json:"person_id"`
	Role      string    `json:"role"`
	GrantedBy string    `json:"granted_by"`
	GrantedAt time.Time `json:"granted_at"`
}

// GrantList lists grants and eligibility.
type GrantList struct {
	Grants      []Grant       `json:"grants"`
	Eligibility []Eligibility `json:"eligibility"`
}

// EligibilityRequest sets the roles a person is eligible for (empty: none).
type EligibilityRequest struct {
	Roles []string `json:"roles"`
}

// TrainingRecordRequest records one completion. Dates are 2006-01-02 or
// RFC 3339; Completed empty means now, Expires empty never.
type TrainingRecordRequest struct {
	Username  string `json:"username"`
	Course    string `json:"course"`
	Completed string `json:"completed,omitempty"`
	Expires   string `json:"expires,omitempty"`
}

// TrainingImportRequest carries a CSV with the header
// username,course,completed,expires.
type TrainingImportRequest struct {
	CSV string `json:"csv"`
}

// TrainingRecord is one person's latest completion of a course.
type TrainingRecord struct {
	Person      string    `json:"person"`
	PersonID    string    `json:"person_id"`
	Course      string    `json:"course"`
	CompletedAt time.Time `json:"completed_at"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Current     bool      `json:"current"`
	RecordedBy  string    `json:"recorded_by"`
}

// TrainingList lists training records.
type TrainingList struct {
	Records []TrainingRecord `json:"records"`
}

// AccessReviewLine is one row of an access review. ID is
// person:role:source[:permission]; Permission "*" stands for the whole
// role, the only kind of line that can be revoked.
type AccessReviewLine struct {
	ID         string    `json:"id"`
	Person     string    `json:"person"`
	PersonID   string    `json:"person_id"`
	Status     string    `json:"status"`
	Role       string    `json:"role"`
	Source     string    `json:"source"` // standing, eligible or grant:<id>
	Permission string    `json:"permission"`
	LastUsed   time.Time `json:"last_used,omitzero"`
	Tracked    bool      `json:"tracked"` // false: a read-only permission, whose use the log does not record
	Unused     bool      `json:"unused"`
	GrantState string    `json:"grant_state,omitempty"`
	Expires    time.Time `json:"expires,omitzero"`
}

// AccessReview is GET /v1/access/review?format=json|csv&unused_days=N.
// With format=csv, CSV holds the same lines as text.
type AccessReview struct {
	At         time.Time          `json:"at"`
	UnusedDays int                `json:"unused_days"`
	Unused     int                `json:"unused"`
	Lines      []AccessReviewLine `json:"lines"`
	CSV        string             `json:"csv,omitempty"`
}

// AccessDecision confirms or revokes one line of a review.
type AccessDecision struct {
	Line     string `json:"line"`
	Decision string `json:"decision"` // confirm | revoke
}

// AccessDecisionRequest carries decisions, applied in order.
type AccessDecisionRequest struct {
	Decisions []AccessDecision `json:"decisions"`
}

// AccessDecisionResult says how many decisions were applied.
type AccessDecisionResult struct {
	Applied int `json:"applied"`
}
