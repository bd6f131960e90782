package cli

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// userDoer is the one API call the user and device commands make;
// *apiclient.Client implements it.
type userDoer interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// userClient returns the logged-in API client, and anonUserClient a client
// without a session for `user accept` (the invitation code is its
// credential). Tests replace them with fakes.
var (
	userClient = func(e *env) (userDoer, error) {
		c, _, err := e.client()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	anonUserClient = func(e *env, server, fingerprint string) (userDoer, error) {
		c, err := e.anonClient(server, fingerprint, nil)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
)

func (e *env) userAPI() (userDoer, error) { return userClient(e) }

var (
	_ = register(newUserCmd)
	_ = register(newDeviceCmd)
)

func newUserCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Invite people, accept an invitation, list, disable and enable accounts, set roles, reset and recover credentials",
	}
	cmd.AddCommand(userInviteCmd(e), userAcceptCmd(e), userListCmd(e), userDisableCmd(e))
	cmd.AddCommand(userRecoveryCmds(e)...) // recovery.go: reset, recover, reenrol, enable, set-roles
	return cmd
}

func userInviteCmd(e *env) *cobra.Command {
	var role, otp string
	cmd := &cobra.Command{
		Use:   "invite NAME --role ROLE [--otp CODE]",
		Short: "Invite a person; prints a one-time code for them to set their password and TOTP",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(e.ctx, c, otp); err != nil {
				return err
			}
			var inv wire.Invitation
			cr, err := doConfigChange(e.ctx, c, "POST", "/v1/users/invitations", wire.InviteRequest{Username: args[0], Role: role}, &inv)
			if err != nil {
				return err
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(inv, func() error { e.printInvitation(inv); return nil })
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "viewer, operator, approver or admin (required)")
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func userAcceptCmd(e *env) *cobra.Command {
	var sf serverFlags
	var code, secretOut string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "accept --code CODE",
		Short: "Accept an invitation: set your password and enroll your authenticator app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := anonUserClient(e, sf.server, sf.fingerprint)
			if err != nil {
				return err
			}
			pw, err := e.readNewPassword(pwStdin)
			if err != nil {
				return err
			}
			var enr wire.Enrollment
			if err := c.Do(e.ctx, "POST", "/v1/invitations/accept", wire.AcceptRequest{Code: code, Password: pw}, &enr); err != nil {
				return err
			}
			return e.showEnrollment(enr, secretOut, sf)
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&code, "code", "", "the invitation code an admin gave you (required)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the new password from stdin")
	cmd.Flags().StringVar(&secretOut, "totp-secret-out", "", "also write the TOTP secret to this file (0600), for scripts")
	_ = cmd.MarkFlagRequired("code")
	return cmd
}

func userListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every account with its roles and status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			var out wire.UserList
			if err := c.Do(e.ctx, "GET", "/v1/users", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Users))
				for _, u := range out.Users {
					rows = append(rows, []string{u.Username, strings.Join(u.Roles, ","), u.Status, u.CreatedAt.Local().Format(time.DateTime), u.ID})
				}
				return e.table([]string{"USER", "ROLES", "STATUS", "CREATED", "ID"}, rows)
			})
		},
	}
}

func userDisableCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "disable NAME",
		Short: "Disable an account: its sessions end at once and it can no longer sign in",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			cr, err := doConfigChange(e.ctx, c, "POST", "/v1/users/"+url.PathEscape(args[0])+"/disable", nil, nil)
			if err != nil {
				return err
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(map[string]string{"disabled": args[0]}, func() error {
				e.printf("Disabled %s; their sessions have ended.\n", args[0])
				return nil
			})
		},
	}
}

func newDeviceCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "device",
		Short: "List and revoke the device keys that sessions are bound to",
	}
	cmd.AddCommand(deviceListCmd(e), deviceRevokeCmd(e))
	return cmd
}

func deviceListCmd(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your devices (--all: everyone's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			path := "/v1/devices"
			if all {
				path += "?all=true"
			}
			var out wire.DeviceList
			if err := c.Do(e.ctx, "GET", path, nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Devices))
				for _, d := range out.Devices {
					status, last := "active", "-"
					if !d.RevokedAt.IsZero() {
						status = "revoked " + d.RevokedAt.Local().Format(time.DateTime)
					}
					if !d.LastUsed.IsZero() {
						last = d.LastUsed.Local().Format(time.DateTime)
					}
					rows = append(rows, []string{d.ID, d.Username, d.Name, d.CreatedAt.Local().Format(time.DateTime), last, status})
				}
				return e.table([]string{"ID", "USER", "NAME", "CREATED", "LAST LOGIN", "STATUS"}, rows)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every person's devices")
	return cmd
}

func deviceRevokeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device: its sessions are refused from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			if err := c.Do(e.ctx, "POST", "/v1/devices/"+url.PathEscape(args[0])+"/revoke", nil, nil); err != nil {
				return err
			}
			return e.output(map[string]string{"revoked": args[0]}, func() error {
				e.printf("Revoked device %s; its sessions are refused from now on.\n", args[0])
				return nil
			})
		},
	}
}
