package ops

import (
	"context"
	"errors"
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
