// Package cli is the interlock command tree: flags, human and JSON output,
// and exit codes. Only cmd/interlock imports it.
package cli

import (
	"context"
	"fmt"
	"io"
)

// Main runs the command named by args and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(ctx, stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "interlock:", err)
		return exitCode(err)
	}
	return 0
}
