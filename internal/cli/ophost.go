package cli

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// resolveOpHost turns what a person typed for a host of operation op —
// its name as `interlock hosts` shows it, or its ID — into the host's ID.
// Names are matched among the operation's own hosts only, so a name that
// several enrolled machines share is still usable when just one of them is
// in the operation; a name that stays ambiguous, or names no host of the
// operation, is refused with a sentence listing what would work.
func resolveOpHost(ctx context.Context, c execDoer, op, host string) (string, error) {
	var p wire.OpProgress
	if err := c.Do(ctx, "GET", "/v1/ops/"+url.PathEscape(op)+"/progress", nil, &p); err != nil {
		return "", err
	}
	var inOp []string
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			inOp = append(inOp, h.HostID)
		}
	}
	if slices.Contains(inOp, host) {
		return host, nil
	}
	var list wire.HostList
	if err := c.Do(ctx, "GET", "/v1/hosts", nil, &list); err != nil {
		return "", err
	}
	var named []wire.Host
	for _, h := range list.Hosts {
		if h.Name == host && slices.Contains(inOp, h.ID) {
			named = append(named, h)
		}
	}
	switch len(named) {
	case 1:
		return named[0].ID, nil
	case 0:
		var known []string
		for _, h := range list.Hosts {
			if slices.Contains(inOp, h.ID) {
				known = append(known, h.Name+" ("+h.ID+")")
			}
		}
		return "", usererr.New(usererr.NotFound, "unknown_host",
			"Operation %s has no host named or with ID %q; its hosts are: %s.", op, host, strings.Join(known, ", "))
	}
	ids := make([]string, len(named))
	for i, h := range named {
		ids[i] = h.ID
	}
	return "", usererr.New(usererr.Invalid, "ambiguous_host",
		"%d hosts of operation %s are named %q (%s); name the one you checked by its ID.", len(named), op, host, strings.Join(ids, ", "))
}
