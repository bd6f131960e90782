package agent_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agent"
)

// TestStuckHealthProbeMakesTheHostUnhealthy: a health command that never
// ends (stuck in an uninterruptible disk wait, which SIGKILL cannot end)
// must not stop the heartbeats while the connection still answers PINGs —
// the server would then count the host healthy for minutes in a large
// fleet. The agent reports the host unhealthy once the probe outlives its
// timeout, and starts no second probe while the first is stuck.
func TestStuckHealthProbeMakesTheHostUnhealthy(t *testing.T) {
	release := make(chan struct{})
	var probes atomic.Int32
	defer agent.SetHealthProbe(func(ctx context.Context) bool {
		probes.Add(1)
		<-release // stuck: not even the context ends it
		return true
	}, 200*time.Millisecond)()
	defer close(release)
	ts := startServer(t, 1)
	ts.startAgentsWith(t, agent.Config{Token: "ilk_join_test", DataDir: filepath.Join(t.TempDir(), "stuck"),
		HealthCommand: []string{"true"}, HeartbeatInterval: 300 * time.Millisecond})
	waitFor(t, "unhealthy heartbeats from a host whose probe is stuck", func() bool {
		ts.inv.mu.Lock()
		defer ts.inv.mu.Unlock()
		return ts.inv.unhealthy["host_1"] >= 3
	})
	if n := ts.inv.beats("host_1"); n != 0 {
		t.Errorf("a host whose health probe is stuck sent %d healthy heartbeats", n)
	}
	if n := probes.Load(); n != 1 {
		t.Errorf("%d probes started while the first was stuck, want 1", n)
	}
}
