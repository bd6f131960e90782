package store

import (
	"context"

	"github.com/interlock-dev/interlock/internal/ops"
)

// OpsLiveHostNamed returns a host that is not revoked and whose name is
// name ignoring ASCII case (hostnames are ASCII: ops checkHostname), if
// any; ok is false when there is none. It reads through the index of
// migration 510, so enrollment's name check costs the same for the
// ten-thousandth host as for the first.
func (t *Tx) OpsLiveHostNamed(ctx context.Context, name string) (h ops.Host, ok bool, err error) {
	hosts, err := opsHosts(ctx, t, ` WHERE lower(name) = lower($1) AND revoked_at = 0`, []any{name})
	if err != nil || len(hosts) == 0 {
		return ops.Host{}, false, err
	}
	return hosts[0], true, nil
}
