// Command interlock is the one Interlock binary: the control plane
// (`interlock serve`), the host agent (`interlock agent`) and the CLI for
// people. Everything lives in internal/cli; this file is only the doorway.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/interlock-dev/interlock/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
