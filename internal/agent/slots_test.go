package agent_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestAgentsOfOneProcessShareTheirStepSlots: agents run in one process
// (agent --count, bench fleet) run at most maxInProcessSteps step
// processes at once, so a fleet of 10,000 in one process does not hold
// 10,000 processes' pipes beside its 10,000 connections. With one slot,
// three steps sent together to three agents never overlap: each takes a
// lock directory and fails if another step holds it.
func TestAgentsOfOneProcessShareTheirStepSlots(t *testing.T) {
	defer agent.SetMaxInProcessSteps(1)()
	ts := startServer(t, 3)
	ts.startAgents(t, t.TempDir(), 3, "ilk_join_test")
	hosts := []string{"host_1", "host_2", "host_3"}
	for _, h := range hosts {
		waitFor(t, h+" to connect", func() bool { return ts.hub.Connected(h) })
	}
	lock := filepath.Join(t.TempDir(), "lock")
	script := "mkdir " + lock + " 2>/dev/null || { echo overlap; exit 9; }; sleep 0.4; rmdir " + lock
	var wg sync.WaitGroup
	results := make([]wire.StepResult, len(hosts))
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = ts.hub.Dispatch(t.Context(), h, wire.Step{StepID: "stp_slot_" + h, Argv: []string{"sh", "-c", script}, TimeoutSeconds: 10})
		}()
	}
	wg.Wait()
	for i, h := range hosts {
		if errs[i] != nil {
			t.Fatalf("Dispatch to %s: %v", h, errs[i])
		}
		if results[i].ExitCode != 0 {
			t.Errorf("%s: exit %d, output %q: two agents of one process ran steps at once with one slot", h, results[i].ExitCode, results[i].Output)
		}
	}
}
