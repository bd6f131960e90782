//go:build !unix

package cli

import (
	"context"
	"log/slog"
	"os"
)

// No signals start or stop a profile here.
var profileStart, profileStop os.Signal

// profileOnSignal needs SIGUSR1 and SIGUSR2 (see serve_profile.go).
func profileOnSignal(ctx context.Context, dir string, log *slog.Logger) {
	log.Warn("--profile-dir needs a Unix system; no profiles are written")
}
