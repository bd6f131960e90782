package exec_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestPlanChangedMidRunHalts: a host swapped into the stored plan of a
// running operation (by someone with write access to the database) is
// never sent anything; the operation halts before the next wave.
func TestPlanChangedMidRunHalts(t *testing.T) {
	release := make(chan struct{})
	d := newDispatcher().set("h1/run", outcome{release: release})
	d.sent = make(chan string, 4)
	o := newFakeOps(operation(plan([]string{"h1"}, []string{"h2", "h3"})))
	r := newRig(t, storetest.OpenSQLite(t), o, d)
	start(t, r)
	<-d.sent // the canary runs
	o.mu.Lock()
	op := o.ops["op1"]
	op.Plan.Waves = []ops.Wave{op.Plan.Waves[0], {Number: 2, Hosts: []string{"h_attacker", "h3"}}}
	o.ops["op1"] = op
	o.mu.Unlock()
	close(release)
	got := r.finish(t)
	if got.State != ops.OpHalted || !strings.Contains(got.Detail, "changed outside Interlock") {
		t.Errorf("state %s (%s), want halted because the plan changed", got.State, got.Detail)
	}
	if calls := d.called(); !slices.Equal(calls, []string{"h1/run"}) {
		t.Errorf("dispatches %v, want only the canary's", calls)
	}
}
