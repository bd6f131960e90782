package ops

import (
	"context"
	"time"
)

// IndependenceChecker says whether approverID may approve a request that
// requesterID made at requestedAt: nil when the approver is independent,
// a usererr sentence when they are the requester, were invited by them,
// got a role from them, or exist (or hold their role) only since after
// the request. *identity.Service implements it; internal/app wires it.
type IndependenceChecker interface {
	CheckIndependentApprover(ctx context.Context, requesterID, approverID string, requestedAt time.Time) error
}
