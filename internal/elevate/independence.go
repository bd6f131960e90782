package elevate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// CheckIndependentApprover is identity's independence check
// (identity.Service.CheckIndependentApprover) widened to the roles an
// approver holds through grants. Operations, change requests and key
// ceremonies count a granted role as a role, so a grant is a way to make
// a second pair of eyes as surely as an invitation: a person the requester
// made eligible, or whose grant the requester approved, owes that role to
// the requester, exactly as one whose standing role the requester granted.
// (Identity cannot see grants: this package depends on it, not the other
// way round.) It refuses, with a sentence, an approver holding an active
// grant that
//   - the requester approved;
//   - is for a role the requester made the approver eligible for;
//   - started after the request was made (a role made for the request).
//
// Grants themselves are approved only with standing roles
// ([Service.Approve]), which is why it wraps, not replaces, Independence.
func (s *Service) CheckIndependentApprover(ctx context.Context, requesterID, approverID string, requestedAt time.Time) error {
	if err := s.indep.CheckIndependentApprover(ctx, requesterID, approverID, requestedAt); err != nil {
		return err
	}
	gs, err := s.Active(ctx, approverID)
	if err != nil || len(gs) == 0 {
		return err
	}
	el, err := s.store.EligibleRoles(ctx, approverID)
	if err != nil {
		return fmt.Errorf("eligibility of %s: %w", approverID, err)
	}
	requester := "person:" + requesterID
	refuse := func(code, format string, args ...any) error {
		return usererr.New(usererr.Forbidden, code, format, args...)
	}
	for _, g := range gs {
		if slices.ContainsFunc(g.Approvals, func(a Approval) bool { return a.PersonID == requesterID }) {
			return refuse("approver_grant_from_requester",
				"You hold %s through grant %s, which the requester approved; an approver must not owe their power to the person asking. Revoke the grant, or ask someone else.", g.Role, g.ID)
		}
		if slices.ContainsFunc(el, func(e Eligibility) bool { return e.Role == g.Role && e.GrantedBy == requester }) {
			return refuse("approver_eligible_by_requester",
				"You hold %s through grant %s, and the requester made you eligible for it; an approver must not owe their power to the person asking. Ask someone else.", g.Role, g.ID)
		}
		if g.StartsAt.After(requestedAt) {
			return refuse("approver_grant_too_new",
				"You hold %s through grant %s, which started at %s, after the request was made at %s; a role granted after a request cannot approve it.",
				g.Role, g.ID, g.StartsAt.UTC().Format(time.RFC3339), requestedAt.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
