package ops

import (
	"fmt"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// HostsDigest is wire.HostsDigest of p's waves: the hex SHA-256 of the
// waves' JSON (numbers and host IDs in dispatch order). p.Hash covers the
// same waves; the digest lets someone who holds only the host list (not
// the whole plan) check it against the log.
func HostsDigest(p Plan) string {
	ws := make([]wire.Wave, len(p.Waves))
	for i, w := range p.Waves {
		ws[i] = wire.Wave{Number: w.Number, Hosts: w.Hosts}
	}
	return wire.HostsDigest(ws)
}

// WaveSizes is the number of hosts in each wave, in order.
func WaveSizes(p Plan) []int {
	out := make([]int, len(p.Waves))
	for i, w := range p.Waves {
		out[i] = len(w.Hosts)
	}
	return out
}

// planRecord is what a log entry says about p: the plan by its hash, the
// host list by its digest, and the counts a reader of the log needs, in a
// size that does not grow with the number of hosts (an entry is limited to
// audit.MaxLeafSize, which a list of 2,500 host IDs already passes). The
// exact hosts stay in the store with the operation, bound to plan_hash
// and hosts_digest.
func planRecord(p Plan) map[string]any {
	return map[string]any{
		"plan_hash": p.Hash, "hosts_digest": HostsDigest(p), "host_count": len(p.Hosts()),
		"waves": len(p.Waves), "wave_sizes": WaveSizes(p), "services": p.Services, "secret_refs": p.SecretRefs,
	}
}

// HostList writes ids for a sentence, naming at most the first ten: a
// halt's or a settlement's detail goes into an audit entry (limited in
// size) and in front of a person, and at 10,000 hosts neither can take
// them all. The full list is in the operation's steps (interlock ops
// watch, ops show --hosts).
func HostList(ids []string) string {
	const shown = 10
	if len(ids) <= shown {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:shown], ", "), len(ids)-shown)
}

// CheckPlanIntact refuses an operation whose stored plan no longer hashes
// to its stored hash: someone changed the store (a host swapped into a
// wave, say) outside Interlock, and nothing of it may be approved or run.
// A plan changed together with its hash is caught only against the log
// (op.requested's plan_hash and hosts_digest). The executor checks it
// again before every wave.
func CheckPlanIntact(op Operation) error {
	if HashPlan(op.Plan) != op.Plan.Hash {
		return usererr.New(usererr.Conflict, "plan_tampered",
			"The stored plan of operation %s no longer matches its hash %s: it was changed outside Interlock. Nothing was approved or started; deny or abort it and check the database.",
			op.ID, short(op.Plan.Hash))
	}
	return nil
}
