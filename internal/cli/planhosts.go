package cli

import (
	"fmt"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// wavePreview is how many hosts of a large wave a plan view names before
// it says how many more there are: a wave of 10,000 hosts on one line is
// nothing a person reads. `ops show OP --hosts` and `approve OP --hosts`
// list every one.
const wavePreview = 10

// printWaves prints p's waves, one a line, with the label padded to width.
// Unless all is set a wave of more than wavePreview+2 hosts is shown by its
// first wavePreview and a count, followed by how to see every host of
// operation opID (when there is one yet).
func (e *env) printWaves(p wire.Plan, width int, all bool, opID string) {
	cut, total := false, 0
	for _, w := range p.Waves {
		total += len(w.Hosts)
		shown := w.Hosts
		if !all && len(shown) > wavePreview+2 {
			shown, cut = shown[:wavePreview], true
		}
		names := make([]string, len(shown))
		for i, h := range shown {
			names[i] = hostName(p, h)
		}
		text := strings.Join(names, ", ")
		if len(shown) < len(w.Hosts) {
			text += fmt.Sprintf(" … and %d more (%d hosts)", len(w.Hosts)-len(shown), len(w.Hosts))
		}
		label := fmt.Sprintf("wave %d", w.Number)
		if w.Number == 1 {
			label += " (canary)"
		}
		e.printf("  %-*s %s\n", width, label+":", text)
	}
	if cut {
		how := "--json lists every one"
		if opID != "" {
			how = "interlock ops show " + opID + " --hosts lists every one"
		}
		e.printf("  %-*s %d in %d waves; %s\n", width, "hosts:", total, len(p.Waves), how)
	}
}

// printPlanHosts lists every host of p, one a line (wave, name, ID), and
// checks the list against the hosts digest the server sent, which is the
// one the operation's op.requested log entry records: a list that does not
// hash to it is not what was requested, and is refused.
func (e *env) printPlanHosts(p wire.Plan) error {
	digest := wire.HostsDigest(p.Waves)
	if p.HostsDigest != "" && digest != p.HostsDigest {
		return fmt.Errorf("the host list the server sent hashes to %s, not to the plan's hosts digest %s; do not approve this operation", digest, p.HostsDigest)
	}
	total := 0
	for _, w := range p.Waves {
		total += len(w.Hosts)
	}
	e.printf("  hosts:     %d in %d waves\n", total, len(p.Waves))
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			e.printf("    wave %-4d %-40s %s\n", w.Number, hostName(p, h), h)
		}
	}
	e.printf("  hosts digest: %s (SHA-256 of the waves above; the op.requested log entry records it)\n", digest)
	return nil
}
