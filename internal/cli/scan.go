package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/scancli"
)

var _ = register(func(*env) *cobra.Command { return scancli.Command() })

// scanExitCode maps the scanner's exit codes (0 clean, 1 findings at or
// above --fail-on, 2 incomplete or failed) through to the process.
func scanExitCode(err error) (int, bool) {
	var se *scancli.ExitError
	if errors.As(err, &se) {
		return se.Code, true
	}
	return 0, false
}
