package agent

import (
	"context"
	"log/slog"
	"time"
)

// SetMaxInProcessSteps sets the bound on step processes the agents of one
// process run at once, for the agents started after it; it returns a func
// that puts the old bound back.
func SetMaxInProcessSteps(n int) (restore func()) {
	old := maxInProcessSteps
	maxInProcessSteps = n
	return func() { maxInProcessSteps = old }
}

// SetHealthProbe replaces how the health command is run and how long a
// heartbeat waits for it; it returns a func that puts the real ones back.
func SetHealthProbe(probe func(ctx context.Context) bool, wait time.Duration) (restore func()) {
	old, oldTimeout, oldGrace := healthProbe, healthProbeTimeout, healthProbeGrace
	healthProbe = func(ctx context.Context, _ []string, _ *slog.Logger) bool { return probe(ctx) }
	healthProbeTimeout, healthProbeGrace = wait, 0
	return func() { healthProbe, healthProbeTimeout, healthProbeGrace = old, oldTimeout, oldGrace }
}
