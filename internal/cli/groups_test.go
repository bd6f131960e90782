package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// A typo under a group fails (a script must not pass silently) and says
// what was meant.
func TestUnknownSubcommandFailsWithSuggestion(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"ops lst", `did you mean "list"?`},
		{"log verfy", `did you mean "verify"?`},
		{"user acept", `did you mean "accept"?`},
		{"ops zzzz", `unknown command "zzzz" for "interlock ops"`},
	} {
		code, out, errs := runMain(strings.Fields(c.args)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("interlock %s: exit %d, stderr %q, stdout %.80q; want non-zero and %q", c.args, code, errs, out, c.want)
		}
	}
	// Every group, not only those two.
	root := newRoot(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.HasParent() && c.HasSubCommands() && c.Name() != "help" {
			path := append(strings.Fields(c.CommandPath())[1:], "no-such-command")
			if code, _, errs := runMain(path...); code == 0 || !strings.Contains(errs, "unknown command") {
				t.Errorf("interlock %s: exit %d, %q", strings.Join(path, " "), code, errs)
			}
		}
	}
	walk(root)
	// The group alone still shows its commands.
	if code, out, _ := runMain("ops"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("interlock ops: exit %d\n%s", code, out)
	}
}

func TestVersionFlag(t *testing.T) {
	code, out, errs := runMain("--version")
	if code != 0 || !strings.HasPrefix(out, "interlock ") || len(strings.TrimSpace(out)) <= len("interlock") {
		t.Fatalf("interlock --version: exit %d %q %q", code, out, errs)
	}
	Version = "v9.9.9-test"
	defer func() { Version = "" }()
	if _, out, _ := runMain("--version"); out != "interlock v9.9.9-test\n" {
		t.Errorf("with Version set: %q", out)
	}
}

// pflag takes a `backticked` word in a flag's usage as its type name, so
// help would read "--ca-fingerprint interlock serve". No usage may hold one.
func TestFlagHelpHasNoBacktickTypeNames(t *testing.T) {
	root := newRoot(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{})
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage has a backtick: %q", c.CommandPath(), f.Name, f.Usage)
			}
		}
		c.LocalFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	_, out, _ := runMain("login", "--help")
	if !strings.Contains(out, "--ca-fingerprint string") {
		t.Errorf("login --help:\n%s", out)
	}
}
