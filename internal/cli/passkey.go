package cli

import (
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

var _ = register(newPasskeyCmd)

// newPasskeyCmd manages the caller's passkeys. Registering one needs a
// browser (WebAuthn talks to the authenticator through it), so `add`
// points at the console's page instead of pretending to do it here.
func newPasskeyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "passkey",
		Short: "List and remove your passkeys (register one in the web console)",
	}
	cmd.AddCommand(passkeyAddCmd(e), passkeyListCmd(e), passkeyRemoveCmd(e))
	return cmd
}

func passkeyAddCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "add",
		Short: "Print the console page where you register a passkey (it needs a browser)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.loadProfile()
			if err != nil {
				return err
			}
			// Passkeys are bound to a host name, never an IP address.
			u := strings.Replace(strings.TrimRight(p.Server, "/"), "://127.0.0.1", "://localhost", 1) + "/ui/passkeys"
			return e.output(map[string]string{"url": u}, func() error {
				e.printf("A passkey is registered in a browser. Open %s, sign in, and choose \"Register passkey\".\n", u)
				return nil
			})
		},
	}
}

func passkeyListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your passkeys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			var out wire.PasskeyList
			if err := c.Do(e.ctx, "GET", "/v1/passkeys", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Passkeys))
				for _, p := range out.Passkeys {
					last := "-"
					if !p.LastUsed.IsZero() {
						last = p.LastUsed.Local().Format(time.DateTime)
					}
					rows = append(rows, []string{p.ID, p.Name, p.CreatedAt.Local().Format(time.DateTime), last})
				}
				return e.table([]string{"ID", "NAME", "REGISTERED", "LAST USED"}, rows)
			})
		},
	}
}

func passkeyRemoveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove one of your passkeys: it no longer signs in or approves",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			if err := c.Do(e.ctx, "POST", "/v1/passkeys/"+url.PathEscape(args[0])+"/remove", nil, nil); err != nil {
				return err
			}
			return e.output(map[string]string{"removed": args[0]}, func() error {
				e.printf("Removed passkey %s.\n", args[0])
				return nil
			})
		},
	}
}
