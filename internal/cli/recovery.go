package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
)

// Account recovery and the person-management commands that can loosen:
// `user reset`, `user recover`, `user reenrol`, `user enable`,
// `user set-roles` (see internal/identity/recovery.go).
func userRecoveryCmds(e *env) []*cobra.Command {
	return []*cobra.Command{userResetCmd(e), userRecoverCmd(e), userReenrolCmd(e), userEnableCmd(e), userSetRolesCmd(e), userTOTPEnrolCmd(e)}
}

func userTOTPEnrolCmd(e *env) *cobra.Command {
	var secretOut string
	cmd := &cobra.Command{
		Use:   "totp-enrol",
		Short: "Signed in through SSO? Enrol an Interlock authenticator for approving later (right after interlock login --sso --fresh)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			var enr wire.Enrollment
			if err := c.Do(e.ctx, "POST", "/v1/mfa/totp", nil, &enr); err != nil {
				return err
			}
			if secretOut != "" {
				if err := os.WriteFile(secretOut, []byte(enr.TOTPSecret+"\n"), 0o600); err != nil {
					return fmt.Errorf("write TOTP secret: %w", err)
				}
			}
			return e.output(map[string]string{"username": enr.Username}, func() error {
				e.printf("Add this account to your authenticator app (shown once):\n\n")
				if err := printQR(e.stdout, enr.TOTPURI); err != nil {
					return err
				}
				e.printf("\n%s\n\nWhen your identity provider sign-in is older than 5 minutes, approve with --otp CODE.\n", enr.TOTPURI)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&secretOut, "totp-secret-out", "", "also write the TOTP secret to this file (0600), for scripts")
	return cmd
}

func userResetCmd(e *env) *cobra.Command {
	var totp, password, both bool
	var otp string
	cmd := &cobra.Command{
		Use:   "reset NAME --totp|--password|--both [--otp CODE]",
		Short: "Ask to reset a person's lost authenticator or password: another admin approves, then you collect a one-time code for them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			what := ""
			n := 0
			for _, f := range []struct {
				on   bool
				what string
			}{{totp, "totp"}, {password, "password"}, {both, "credentials"}} {
				if f.on {
					what, n = f.what, n+1
				}
			}
			if n != 1 {
				return errors.New("say what to reset with exactly one of --totp, --password or --both")
			}
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(e.ctx, c, otp); err != nil {
				return err
			}
			cr, err := doConfigChange(e.ctx, c, "POST", "/v1/users/"+url.PathEscape(args[0])+"/reset", wire.UserResetRequest{Reset: what}, nil)
			if err != nil {
				return err
			}
			if cr == nil {
				return errors.New("the server answered a reset without a change request; nothing was reset")
			}
			return e.printPending(cr)
		},
	}
	cmd.Flags().BoolVar(&totp, "totp", false, "reset their authenticator (TOTP); their password stays")
	cmd.Flags().BoolVar(&password, "password", false, "reset their password; their authenticator stays")
	cmd.Flags().BoolVar(&both, "both", false, "reset both")
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	return cmd
}

func userRecoverCmd(e *env) *cobra.Command {
	var sf serverFlags
	var user, code, secretOut string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "recover --user NAME --recovery-code CODE",
		Short: "Lost your authenticator? Your password and one of your recovery codes give you a new one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := anonUserClient(e, sf.server, sf.fingerprint)
			if err != nil {
				return err
			}
			pw, err := e.readSecret("Password: ", pwStdin)
			if err != nil {
				return err
			}
			var enr wire.Enrollment
			if err := c.Do(e.ctx, "POST", "/v1/recover", wire.RecoverRequest{Username: user, Password: pw, RecoveryCode: code}, &enr); err != nil {
				return err
			}
			if err := e.showEnrollment(enr, secretOut, sf); err != nil {
				return err
			}
			if !e.json {
				e.printf("That recovery code is used up; %d left. Your other sessions have ended.\n", enr.RecoveryCodesLeft)
			}
			return nil
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&user, "user", "", "your user name (required)")
	cmd.Flags().StringVar(&code, "recovery-code", "", "one of the recovery codes you were given at enrolment (required)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	cmd.Flags().StringVar(&secretOut, "totp-secret-out", "", "also write the new TOTP secret to this file (0600), for scripts")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("recovery-code")
	return cmd
}

func userReenrolCmd(e *env) *cobra.Command {
	var sf serverFlags
	var code, secretOut string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "reenrol --code CODE",
		Short: "Re-enrol with the one-time reset code an admin gave you: a new authenticator, password, or both",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := anonUserClient(e, sf.server, sf.fingerprint)
			if err != nil {
				return err
			}
			pw := ""
			if pwStdin {
				if pw, err = e.readNewPassword(true); err != nil {
					return err
				}
			}
			var enr wire.Enrollment
			err = c.Do(e.ctx, "POST", "/v1/resets/accept", wire.ResetAcceptRequest{Code: code, Password: pw}, &enr)
			if apiclient.Code(err) == "password_required" && !pwStdin {
				// The reset sets a password (the code is not used up yet).
				if pw, err = e.readNewPassword(false); err != nil {
					return err
				}
				err = c.Do(e.ctx, "POST", "/v1/resets/accept", wire.ResetAcceptRequest{Code: code, Password: pw}, &enr)
			}
			if err != nil {
				return err
			}
			if enr.TOTPURI == "" {
				return e.output(map[string]string{"username": enr.Username, "reset": "password"}, func() error {
					e.printf("Your new password is set, %s; your authenticator stays. Sign in again: interlock login --user %s …\n", enr.Username, enr.Username)
					return nil
				})
			}
			return e.showEnrollment(enr, secretOut, sf)
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&code, "code", "", "the reset code an admin gave you (required)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the new password from stdin (when the reset resets your password)")
	cmd.Flags().StringVar(&secretOut, "totp-secret-out", "", "also write the new TOTP secret to this file (0600), for scripts")
	_ = cmd.MarkFlagRequired("code")
	return cmd
}

func userEnableCmd(e *env) *cobra.Command {
	var otp string
	cmd := &cobra.Command{
		Use:   "enable NAME [--otp CODE]",
		Short: "Let a disabled person sign in again (a change request when they hold approver or admin and two admins exist)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(e.ctx, c, otp); err != nil {
				return err
			}
			cr, err := doConfigChange(e.ctx, c, "POST", "/v1/users/"+url.PathEscape(args[0])+"/enable", nil, nil)
			if err != nil {
				return err
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(map[string]string{"enabled": args[0]}, func() error {
				e.printf("Enabled %s; they sign in again with their own credentials.\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	return cmd
}

func userSetRolesCmd(e *env) *cobra.Command {
	var otp string
	var roles []string
	cmd := &cobra.Command{
		Use:   "set-roles NAME --role ROLE [--role ROLE]... [--otp CODE]",
		Short: "Give a person exactly these roles: taking roles away applies at once; adding approver or admin is a change request once two admins exist",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.userAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(e.ctx, c, otp); err != nil {
				return err
			}
			cr, err := doConfigChange(e.ctx, c, "POST", "/v1/users/"+url.PathEscape(args[0])+"/roles", wire.SetRolesRequest{Roles: roles}, nil)
			if err != nil {
				return err
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(map[string]any{"username": args[0], "roles": roles}, func() error {
				e.printf("%s now holds %s.\n", args[0], strings.Join(roles, ", "))
				return nil
			})
		},
	}
	cmd.Flags().StringSliceVar(&roles, "role", nil, "viewer, operator, approver or admin (repeatable, or comma-separated; required)")
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// printRecoveryCodes shows an enrolment's recovery codes, once.
func (e *env) printRecoveryCodes(enr wire.Enrollment) {
	if len(enr.RecoveryCodes) == 0 {
		return
	}
	e.printf("\nRecovery codes (shown once; keep them apart from your authenticator). With your password, each one\ngives you a new authenticator once: interlock user recover --user %s --recovery-code CODE\n\n", enr.Username)
	for _, c := range enr.RecoveryCodes {
		e.printf("  %s\n", c)
	}
}

func (e *env) printPeopleDiff(u wire.UserChange) {
	switch {
	case u.Reset != "":
		what := map[string]string{"totp": "authenticator (TOTP)", "password": "password", "credentials": "password and authenticator (TOTP)"}[u.Reset]
		e.printf("Reset the %s of %s: their sessions end, and they re-enrol with a one-time code the requester collects\n", what, u.Username)
	case u.Enable:
		e.printf("Enable %s (now %s): they can sign in again\n", u.Username, u.Status)
	default:
		old := strings.Join(u.OldRoles, ", ")
		if old == "" {
			old = "none"
		}
		e.printf("Set the roles of %s: %s → %s\n", u.Username, old, strings.Join(u.Roles, ", "))
	}
}

func (e *env) printResetCode(rc wire.ResetCode) {
	e.printf("Reset of %s's %s approved. Give them this one-time code through a channel you trust; it works once, until %s:\n\n  %s\n\n",
		rc.Username, rc.Reset, rc.ExpiresAt.Local().Format(time.RFC1123), rc.Code)
	e.printf("They run: interlock user reenrol --server URL --ca-fingerprint SHA256:… --code %s\n", rc.Code)
}
