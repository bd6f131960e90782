package cli

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is the release this binary is; `go build -ldflags "-X
// github.com/interlock-dev/interlock/internal/cli.Version=v1.2.3"` sets it.
// Left empty, --version reports the module version and VCS revision that
// the Go toolchain recorded.
var Version = ""

// version is what `interlock --version` prints.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev + modified
	}
	return v + " " + bi.GoVersion
}

// guardGroups makes every command that only groups others (ops, log, user,
// …) refuse an unknown subcommand with a non-zero exit and a suggestion,
// instead of printing its help and exiting 0: `interlock ops lst` in a
// script must fail, not pass silently.
func guardGroups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		guardGroups(c)
	}
	if cmd.HasParent() && cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return unknownSubcommand(c, args[0])
		}
	}
}

// unknownSubcommand is the error for `interlock GROUP NAME` when GROUP has
// no subcommand NAME.
func unknownSubcommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, which only its root applies
	}
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += "; did you mean " + strings.Join(quoteAll(s), " or ") + "?"
	}
	return fmt.Errorf("%s (run %q to see its commands)", msg, c.CommandPath()+" --help")
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
