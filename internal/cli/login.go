package cli

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
	"github.com/interlock-dev/interlock/internal/dpop"
)

var (
	_ = register(newBootstrapCmd)
	_ = register(newLoginCmd)
	_ = register(newLogoutCmd)
	_ = register(newWhoamiCmd)
)

// serverFlags are how a command that has no saved login yet finds and
// trusts a server.
type serverFlags struct {
	server, fingerprint string
}

func (f *serverFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "server URL, e.g. https://127.0.0.1:8443 (required)")
	cmd.Flags().StringVar(&f.fingerprint, "ca-fingerprint", "", "the server CA's fingerprint as 'interlock serve' printed it, SHA256:… (required)")
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("ca-fingerprint")
}

func newBootstrapCmd(e *env) *cobra.Command {
	var sf serverFlags
	var code, user, secretOut string
	var pwStdin bool
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create the first admin with the one-time code `interlock serve` printed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.anonClient(sf.server, sf.fingerprint, nil)
			if err != nil {
				return err
			}
			pw, err := e.readNewPassword(pwStdin)
			if err != nil {
				return err
			}
			var enr wire.Enrollment
			if err := c.Do(e.ctx, "POST", "/v1/bootstrap", wire.BootstrapRequest{Code: code, Username: user, Password: pw}, &enr); err != nil {
				return err
			}
			return e.showEnrollment(enr, secretOut, sf)
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&code, "code", "", "the one-time bootstrap code (required)")
	cmd.Flags().StringVar(&user, "user", "", "the first admin's user name (required)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	cmd.Flags().StringVar(&secretOut, "totp-secret-out", "", "also write the TOTP secret to this file (0600), for scripts")
	_ = cmd.MarkFlagRequired("code")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

// showEnrollment prints a new account's TOTP enrollment once.
// Its closing hint is the exact login command, with the server and CA
// fingerprint this command was given, so a new person can paste it.
func (e *env) showEnrollment(enr wire.Enrollment, secretOut string, sf serverFlags) error {
	if secretOut != "" {
		if err := os.WriteFile(secretOut, []byte(enr.TOTPSecret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write TOTP secret: %w", err)
		}
	}
	if e.json {
		out := map[string]any{"person_id": enr.PersonID, "username": enr.Username}
		if secretOut == "" {
			out["totp_uri"] = enr.TOTPURI
		}
		if len(enr.RecoveryCodes) > 0 {
			out["recovery_codes"] = enr.RecoveryCodes
		}
		return e.printJSON(out)
	}
	e.printf("Created %s. Add this account to your authenticator app (shown once):\n\n", enr.Username)
	if err := printQR(e.stdout, enr.TOTPURI); err != nil {
		return err
	}
	e.printf("\n%s\n", enr.TOTPURI)
	e.printRecoveryCodes(enr) // recovery.go
	e.printf("\nThen: interlock login --server %s --ca-fingerprint %s --user %s\n", sf.server, sf.fingerprint, enr.Username)
	return nil
}

func newLoginCmd(e *env) *cobra.Command {
	var sf serverFlags
	var user, otp, device string
	var pwStdin bool
	var sso ssoFlags
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in: password + TOTP, with a session bound to this device's key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (user == "") == !sso.on {
				return fmt.Errorf("name yourself with --user (password and TOTP), or sign in with --sso, not both")
			}
			dir, err := e.profileDir()
			if err != nil {
				return err
			}
			p := &profile{dir: dir, Server: sf.server, CAFingerprint: sf.fingerprint, User: user}
			replacedKey := ""
			if old, err := e.loadProfile(); err == nil {
				p.LogKey = old.LogKey // keep the pinned log key across logins
				if old.Server != p.Server || old.CAFingerprint != p.CAFingerprint {
					// Another server: another log. Its key and the checkpoint
					// saved for it belong to the old one.
					replacedKey, p.LogKey = old.LogKey, ""
				}
			}
			key, err := p.deviceKey(true)
			if err != nil {
				return err
			}
			jwk, err := dpop.PublicJWK(key.Public().(ed25519.PublicKey))
			if err != nil {
				return err
			}
			c, err := e.anonClient(sf.server, sf.fingerprint, key)
			if err != nil {
				return err
			}
			if device == "" {
				device, _ = os.Hostname()
			}
			var resp wire.LoginResponse
			if sso.on { // single sign-on (sso.go)
				var sr wire.SSOLoginResponse
				sr, err = e.ssoLogin(c, jwk, device, sso)
				resp, user, p.User = sr.LoginResponse, sr.Username, sr.Username
			} else {
				var pw string
				if pw, err = e.readSecret("Password: ", pwStdin); err != nil {
					return err
				}
				if otp == "" {
					if otp, err = e.readSecret("One-time code: ", false); err != nil {
						return err
					}
				}
				err = c.Do(e.ctx, "POST", "/v1/login", wire.LoginRequest{Username: user, Password: pw, OTP: otp, DeviceJWK: jwk, DeviceName: device}, &resp)
			}
			if apiclient.Code(err) == "device_revoked" {
				// This device's key was revoked: it stays revoked. Make a new
				// key; the person signs in again with a fresh one-time code.
				if rmErr := os.Remove(filepath.Join(p.dir, "device.key")); rmErr != nil {
					return fmt.Errorf("%w; and removing the revoked device key failed: %v", err, rmErr)
				}
				return fmt.Errorf("%w: a new device key will be made; run `interlock login` again with a new one-time code", err)
			}
			if err != nil {
				return err
			}
			p.Token, p.ExpiresAt = resp.Token, resp.ExpiresAt
			if err := p.save(); err != nil {
				return err
			}
			if err := e.pinLogKey(p); err != nil {
				return err
			}
			if replacedKey != "" && replacedKey != p.LogKey {
				if err := forgetLogCheckpoint(p); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "This profile now pins the log key of %s: %s\n(it replaces %s, pinned for the previous server, and the checkpoint saved for that log was discarded).\n",
					p.Server, orNone(p.LogKey), replacedKey)
			}
			return e.output(map[string]any{"user": user, "device_id": resp.DeviceID, "expires_at": resp.ExpiresAt}, func() error {
				e.printf("Logged in as %s (profile %s) until %s.\n", user, e.profileName(), resp.ExpiresAt.Local().Format(time.RFC1123))
				return nil
			})
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&user, "user", "", "your user name (required unless --sso)")
	cmd.Flags().BoolVar(&sso.on, "sso", false, "sign in through the server's OpenID Connect identity provider in a browser")
	cmd.Flags().StringVar(&sso.issuer, "issuer", "", "with --sso: which identity provider, when the server has several")
	cmd.Flags().BoolVar(&sso.noBrowser, "no-browser", false, "with --sso: sign in on another device with a code (device flow, RFC 8628) instead of a browser here")
	cmd.Flags().BoolVar(&sso.fresh, "fresh", false, "with --sso: make the identity provider ask for your factors again (fresh MFA, e.g. before approving)")
	cmd.Flags().StringVar(&otp, "otp", "", "the current code from your authenticator app (prompted if omitted)")
	cmd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin")
	cmd.Flags().StringVar(&device, "device-name", "", "a name for this device (default: the hostname)")
	return cmd
}

func newLogoutCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End this profile's session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, p, err := e.client()
			if err != nil {
				return err
			}
			if err := c.Do(e.ctx, "POST", "/v1/logout", nil, nil); err != nil {
				return err
			}
			p.Token, p.ExpiresAt = "", time.Time{}
			if err := p.save(); err != nil {
				return err
			}
			e.printf("Logged out.\n")
			return nil
		},
	}
}

func newWhoamiCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who this profile is signed in as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := e.client()
			if err != nil {
				return err
			}
			var p wire.Principal
			if err := c.Do(e.ctx, "GET", "/v1/whoami", nil, &p); err != nil {
				return err
			}
			return e.output(p, func() error {
				e.printf("%s (%s %s), roles %v, device %s\n", p.Name, p.Kind, p.ID, p.Roles, p.DeviceID)
				return nil
			})
		},
	}
}

// pinLogKey pins the tamper-evident log's public key at login, like the CA
// fingerprint, so `interlock log verify` checks checkpoints against the key
// this person first saw. A different key for the same server is refused:
// a new log key is how a rewritten history would look.
func (e *env) pinLogKey(p *profile) error {
	c, _, err := e.client()
	if err != nil {
		return err
	}
	var info wire.LogInfo
	if err := c.Do(e.ctx, "GET", "/v1/log", nil, &info); err != nil {
		// A person whose role may not read the log still logs in.
		fmt.Fprintf(e.stderr, "note: the log key was not pinned (%v)\n", err)
		return nil
	}
	switch {
	case p.LogKey == "":
		p.LogKey = info.PublicKey
		return p.save()
	case p.LogKey != info.PublicKey:
		return fmt.Errorf("the server's log key is %s, but this profile pinned %s: the log may have been replaced; "+
			"ask an operator before trusting it (log in with a new --profile to start over)", info.PublicKey, p.LogKey)
	}
	return nil
}
