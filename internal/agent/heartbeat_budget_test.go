package agent_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/agenthub"
)

// TestAgentsKeepToTheServersHeartbeatBudget: a server whose budget its
// connected agents would exceed answers heartbeats with a longer interval
// and the agents keep to it — except that a change of health is sent at
// once — while a server within budget gets heartbeats at the agents' own
// interval.
func TestAgentsKeepToTheServersHeartbeatBudget(t *testing.T) {
	// Two agents, a budget of 0.25 heartbeats a second: every 8 s each.
	tweakHub = func(c *agenthub.Config) { c.HeartbeatBudget = 0.25 }
	defer func() { tweakHub = nil }()
	ts := startServer(t, 2)
	dir := t.TempDir()
	health := filepath.Join(dir, "healthy")
	touch(t, health)
	ts.startAgentsWith(t, agent.Config{Token: "ilk_join_test", DataDir: filepath.Join(dir, "a"), Count: 2,
		HealthCommand: []string{"test", "-e", health}})
	waitFor(t, "both agents heartbeating", func() bool { return ts.inv.beats("host_1") >= 1 && ts.inv.beats("host_2") >= 1 })
	waitFor(t, "both agents connected", func() bool { return ts.hub.Connected("host_1") && ts.hub.Connected("host_2") })
	time.Sleep(300 * time.Millisecond) // the agents' every-100-ms ticks meanwhile
	before := ts.inv.beats("host_1") + ts.inv.beats("host_2")
	time.Sleep(2 * time.Second)
	// At their own 100 ms the two would send about 40 in 2 s.
	if n := ts.inv.beats("host_1") + ts.inv.beats("host_2") - before; n > 2 {
		t.Errorf("the agents sent %d heartbeats in 2 s though the server asked for one every 8 s", n)
	}
	if ids, every := ts.hub.ConnectedHosts(); len(ids) != 2 || every != 8*time.Second {
		t.Errorf("ConnectedHosts = %v, %s; want both hosts, 8s", ids, every)
	}

	// A change of health does not wait for the interval.
	removeFile(t, health)
	waitFor(t, "unhealthy heartbeats from both agents at once", func() bool {
		ts.inv.mu.Lock()
		defer ts.inv.mu.Unlock()
		return ts.inv.unhealthy["host_1"] >= 1 && ts.inv.unhealthy["host_2"] >= 1
	})
}

// TestAgentsWithinBudgetHeartbeatAtTheirOwnInterval: with the default
// budget, two agents are far below it; the server asks for nothing and
// reports no stretched connections.
func TestAgentsWithinBudgetHeartbeatAtTheirOwnInterval(t *testing.T) {
	ts := startServer(t, 1)
	ts.startAgents(t, t.TempDir(), 1, "ilk_join_test")
	waitFor(t, "a heartbeat", func() bool { return ts.inv.beats("host_1") >= 1 })
	before := ts.inv.beats("host_1")
	time.Sleep(time.Second)
	if n := ts.inv.beats("host_1") - before; n < 5 {
		t.Errorf("an agent within budget sent %d heartbeats in 1 s at a 100 ms interval", n)
	}
	if ids, every := ts.hub.ConnectedHosts(); ids != nil || every != 0 {
		t.Errorf("ConnectedHosts = %v, %s within budget; want none", ids, every)
	}
}

// TestAgentsWaitForTheStretchedStreamsAnnouncedPing: a server that
// stretches heartbeats sends its stream's ping lines once a minute and
// says so on each; an agent whose own silence limit is far shorter keeps
// the stream open for the announced interval instead of taking it for
// broken and reconnecting every time its limit passes.
func TestAgentsWaitForTheStretchedStreamsAnnouncedPing(t *testing.T) {
	// One agent, a budget of 0.1 heartbeats a second: every 10 s, so
	// stretched from the first stream on.
	tweakHub = func(c *agenthub.Config) { c.HeartbeatBudget = 0.1 }
	defer func() { tweakHub = nil }()
	ts := startServer(t, 1)
	ts.startAgentsWith(t, agent.Config{Token: "ilk_join_test", DataDir: t.TempDir(), StreamIdle: 300 * time.Millisecond})
	waitFor(t, "the agent connected", func() bool { return ts.hub.Connected("host_1") })
	if _, every := ts.hub.ConnectedHosts(); every != 10*time.Second {
		t.Fatalf("the server asks for heartbeats every %s, want 10s (stretched)", every)
	}
	ts.mu.Lock()
	before := ts.streams["host_1"]
	ts.mu.Unlock()
	time.Sleep(2 * time.Second) // more than six of the agent's own silence limits
	ts.mu.Lock()
	after := ts.streams["host_1"]
	ts.mu.Unlock()
	if after != before {
		t.Errorf("the agent opened %d new streams in 2 s: it did not wait for the ping the server announced", after-before)
	}
	if !ts.hub.Connected("host_1") {
		t.Error("the agent is not connected")
	}
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
