package scancli

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary act as `interlock scan` when
// INTERLOCK_SCAN_MAIN=1, so process start-up and --staged latency can be
// measured end to end without the rest of the CLI:
//
//	go test -c -o /tmp/scan.test ./internal/scancli
//	INTERLOCK_SCAN_MAIN=1 /tmp/scan.test --staged /path/to/repo
func TestMain(m *testing.M) {
	if os.Getenv("INTERLOCK_SCAN_MAIN") == "1" {
		cmd := Command()
		cmd.SetArgs(os.Args[1:])
		err := cmd.Execute()
		var ee *ExitError
		switch {
		case err == nil:
			os.Exit(0)
		case errors.As(err, &ee):
			os.Exit(ee.Code)
		default:
			fmt.Fprintln(os.Stderr, err)
			os.Exit(ExitIncomplete)
		}
	}
	os.Exit(m.Run())
}
