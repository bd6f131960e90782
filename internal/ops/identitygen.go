package ops

import (
	"context"
	"errors"
	"fmt"
)

// identityGenerationReader is the store's counter of host identity
// changes (revocations, pinned certificates), bumped in the transaction
// of each change.
type identityGenerationReader interface {
	OpsIdentityGeneration(ctx context.Context) (int64, error)
}

// IdentityGeneration returns a number that changes whenever any host's
// revocation or pinned certificate changes, on any server sharing the
// store. The agent hub reads it (at most once a second) to know when its
// in-memory copy of revocations and pins is stale.
func (s *Manager) IdentityGeneration(ctx context.Context) (int64, error) {
	r, ok := s.store.(identityGenerationReader)
	if !ok {
		return 0, errors.New("ops: the store does not count host identity changes")
	}
	return r.OpsIdentityGeneration(ctx)
}

// opStateReader reads an operation's state without its plan.
type opStateReader interface {
	OpsOperationState(ctx context.Context, id string) (OpState, error)
}

// State returns an operation's current state, read from the store (never
// cached), without loading its plan. The executor calls it before every
// dispatch (invariant 3).
func (s *Manager) State(ctx context.Context, id string) (OpState, error) {
	if r, ok := s.store.(opStateReader); ok {
		st, err := r.OpsOperationState(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return "", unknownOp(id)
		}
		if err != nil {
			return "", fmt.Errorf("load the state of op %s: %w", id, err)
		}
		return st, nil
	}
	op, err := s.Get(ctx, id)
	return op.State, err
}
