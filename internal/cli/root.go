package cli

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"
)

// env carries what every command needs: its streams and global flags.
// Commands receive it explicitly; nothing is read from globals.
type env struct {
	ctx     context.Context
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	json    bool   // --json: print for machines
	profile string // --profile: which saved login to use
}

// commands lists constructors for every top-level command. Each domain's
// file appends to it from a package-level var initialiser, so adding a
// command does not touch this file.
var commands []func(*env) *cobra.Command

func register(fn func(*env) *cobra.Command) bool {
	commands = append(commands, fn)
	return true
}

func newRoot(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "interlock",
		Short:         "One gate in front of every privileged action, and a record nobody can quietly rewrite",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().BoolVar(&e.json, "json", false, "print JSON for machines instead of text for people")
	root.PersistentFlags().StringVar(&e.profile, "profile", "", "saved login to use (default $INTERLOCK_PROFILE or \"default\")")
	for _, fn := range commands {
		root.AddCommand(fn(e))
	}
	root.Version = version() // --version (groups.go)
	root.SetVersionTemplate("interlock {{.Version}}\n")
	guardGroups(root) // unknown subcommands fail with "did you mean" (groups.go)
	return root
}

// ExitError carries a specific process exit code out of a command.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return "exit status"
	}
	return e.Err.Error()
}
func (e *ExitError) Unwrap() error { return e.Err }

func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if code, ok := scanExitCode(err); ok {
		return code
	}
	return 1
}
