package agent

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestDamagedWitnessStateFailsClosed: an attacker on the host who damages
// the agent's log-witness.json, or swaps in a checkpoint the pinned key
// did not sign, to wipe a raised alarm does not get an agent that runs
// steps: it does not start, and says which file to look at.
func TestDamagedWitnessStateFailsClosed(t *testing.T) {
	l := newTestLog(t, "a", 5)
	other := newTestLog(t, "b", 5) // another key named like the log
	foreign, _ := json.Marshal(map[string]string{"checkpoint": other.checkpoint(5)})
	for _, tt := range []struct {
		name, state, want string
	}{
		{"truncated JSON", `{"checkpoint": "interlock/log`, "is damaged"},
		{"checkpoint by another key", string(foreign), "does not verify with the pinned log key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := pinLogKey(dir, l.vkey); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, logStateFile), []byte(tt.state), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := openWitness(context.Background(), Config{DataDir: dir, Log: discardLog(), Now: time.Now, Rand: rand.Reader}, "host_test")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), logStateFile) {
				t.Errorf("openWitness over %s = %v; want a refusal naming %s", tt.name, err, logStateFile)
			}
		})
	}
	// The alarm itself survives a restart.
	dir := t.TempDir()
	if err := pinLogKey(dir, l.vkey); err != nil {
		t.Fatal(err)
	}
	w := openTestWitness(t, dir, false)
	w.mu.Lock()
	w.raise(context.Background(), wire.LogAlarmRollback, "test", "")
	w.mu.Unlock()
	if why := openTestWitness(t, dir, false).refusal(); !strings.Contains(why, "log rollback detected") {
		t.Errorf("after a restart the alarm is gone: refusal %q", why)
	}
}
