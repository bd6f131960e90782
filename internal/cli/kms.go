package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// kmsDoer is the one API call the kms and secret commands make;
// *apiclient.Client implements it.
type kmsDoer interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// kmsClient returns the logged-in API client for the kms and secret
// commands; tests replace it.
var kmsClient = func(e *env) (kmsDoer, error) {
	c, _, err := e.client()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// escapeSegments escapes each /-separated segment of p for a URL path.
func escapeSegments(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// parseKV turns k=v flags into a context map.
func parseKV(pairs []string) (map[string]string, error) {
	if len(pairs) == 0 {
		return nil, nil // no context at all, not an empty one
	}
	return parsePairs("context", "key", pairs)
}

// readInput reads a value from a file, or stdin for "-" (the default).
func (e *env) readInput(file string, limit int64) ([]byte, error) {
	var r io.Reader = e.stdin
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("the input is larger than %d bytes; for large data use `interlock kms generate-data-key` and encrypt locally", limit)
	}
	return b, nil
}

// maxInput is the largest plaintext or secret the commands send (the
// server's limit is 64 KiB).
const maxInput = 64 << 10

// ciphertextKey returns the key a ciphertext text names (ilk:v1:<key>:…).
func ciphertextKey(ct string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(ct), "ilk:v1:")
	if !ok {
		return "", fmt.Errorf("that is not an Interlock ciphertext (it must start with ilk:v1:)")
	}
	k, _, ok := strings.Cut(rest, ":")
	if !ok || k == "" {
		return "", fmt.Errorf("the ciphertext names no key")
	}
	return k, nil
}

var _ = register(func(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kms",
		Short: "Named keys and envelope encryption: encrypt, decrypt, data keys, rewrap, rotation",
		Long: "Keys are named and versioned; ciphertext (ilk:v1:<key>:<version>:…) says which version made it.\n" +
			"Keys rotate on their own before AES-GCM's message limit and every 90 days by default. Disabling a key,\n" +
			"destroying a version and lowering the minimum decryption version need a second person:\n" +
			"they create a request that another person approves with `interlock kms request approve`.",
	}
	key := &cobra.Command{Use: "key", Short: "Create, rotate, list, show, disable and destroy keys"}
	key.AddCommand(kmsKeyCreateCmd(e), kmsKeyRotateCmd(e), kmsKeyListCmd(e), kmsKeyShowCmd(e), kmsKeyDisableCmd(e),
		kmsKeyEnableCmd(e), kmsKeyDestroyCmd(e), kmsKeySetMinCmd(e))
	req := &cobra.Command{Use: "request", Short: "Dual-control requests for keys and critical secrets: list, show, approve, cancel"}
	req.AddCommand(kmsRequestListCmd(e), kmsRequestShowCmd(e), kmsRequestApproveCmd(e), kmsRequestCancelCmd(e))
	cmd.AddCommand(key, req, kmsEncryptCmd(e), kmsDecryptCmd(e), kmsEncryptBatchCmd(e), kmsDecryptBatchCmd(e), kmsDataKeyCmd(e), kmsRewrapCmd(e))
	return cmd
})

func (e *env) printKey(k wire.KMSKey) error {
	return e.output(k, func() error {
		state := "enabled"
		if k.Disabled {
			state = "DISABLED"
		}
		e.printf("Key %s: version %d current, %s, decrypts versions >= %d\n", k.Name, k.CurrentVersion, state, k.MinDecryptionVersion)
		if k.RotationPeriodS > 0 {
			e.printf("Rotates every %s (next %s) or after %d encryptions per version.\n",
				time.Duration(k.RotationPeriodS)*time.Second, k.NextRotationAt.Format(time.RFC3339), k.MaxEncryptions)
		} else {
			e.printf("Rotates after %d encryptions per version (no schedule).\n", k.MaxEncryptions)
		}
		rows := [][]string{}
		for _, v := range k.Versions {
			st := "active"
			if v.Destroyed {
				st = "destroyed " + v.DestroyedAt.Format(time.RFC3339)
			} else if v.Version < k.MinDecryptionVersion {
				st = "below minimum"
			}
			rows = append(rows, []string{strconv.Itoa(v.Version), v.CreatedAt.Format(time.RFC3339), strconv.FormatInt(v.Encryptions, 10),
				strconv.FormatInt(v.Decryptions, 10), st})
		}
		return e.table([]string{"VERSION", "CREATED", "ENCRYPTIONS", "DECRYPTIONS", "STATE"}, rows)
	})
}

func (e *env) printRequest(r wire.KMSRequest, intro string) error {
	return e.output(r, func() error {
		if intro != "" {
			e.printf("%s\n", intro)
		}
		e.printf("Request %s (%s on %s) is %s.\n", r.ID, r.Action, r.Subject, r.State)
		names := map[string]string{}
		if c, err := kmsClient(e); err == nil {
			names = personNames(e.ctx, c)
		}
		e.printf("Requested by %s at %s; expires %s.\n", personLabel(names, "person:"+r.RequestedBy), r.RequestedAt.Format(time.RFC3339), r.ExpiresAt.Format(time.RFC3339))
		if r.ApprovedBy != "" {
			e.printf("Approved by %s at %s.\n", personLabel(names, "person:"+r.ApprovedBy), r.ApprovedAt.Format(time.RFC3339))
		}
		if !r.ExecuteAfter.IsZero() && r.State == "scheduled" {
			e.printf("Runs after %s unless cancelled.\n", r.ExecuteAfter.Format(time.RFC3339))
		}
		if r.Note != "" {
			e.printf("Note: %s\n", personLabels(names, r.Note))
		}
		e.printf("Content: %s\nHash:    %s\n", r.Content, r.Hash)
		if r.State == "pending" {
			e.printf("Another person approves it with: interlock kms request approve %s --hash %s\n", r.ID, r.Hash)
		}
		return nil
	})
}

func kmsKeyCreateCmd(e *env) *cobra.Command {
	var period time.Duration
	var noSchedule bool
	var maxEnc int64
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a key (version 1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := wire.KMSKeyCreateRequest{Name: args[0], RotationPeriodS: int64(period / time.Second), MaxEncryptions: maxEnc}
			if noSchedule {
				in.RotationPeriodS = -1
			}
			var k wire.KMSKey
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/keys", in, &k); err != nil {
				return err
			}
			return e.printKey(k)
		},
	}
	cmd.Flags().DurationVar(&period, "rotation-period", 0, "rotate on this schedule (default: the server's, 90 days)")
	cmd.Flags().BoolVar(&noSchedule, "no-scheduled-rotation", false, "rotate only at the encryption limit")
	cmd.Flags().Int64Var(&maxEnc, "max-encryptions", 0, "encryptions per version before automatic rotation (default: the server's, 2^30)")
	return cmd
}

func kmsKeySimple(e *env, use, short, method, suffix string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var k wire.KMSKey
			if err := e.kmsDo(cmd.Context(), method, "/v1/kms/keys/"+url.PathEscape(args[0])+suffix, nil, &k); err != nil {
				return err
			}
			return e.printKey(k)
		},
	}
}

func kmsKeyRotateCmd(e *env) *cobra.Command {
	return kmsKeySimple(e, "rotate", "Make a new current version; older versions keep decrypting", "POST", "/rotate")
}

func kmsKeyShowCmd(e *env) *cobra.Command {
	return kmsKeySimple(e, "show", "Show a key and its versions", "GET", "")
}

func kmsKeyEnableCmd(e *env) *cobra.Command {
	return kmsKeySimple(e, "enable", "Enable a disabled key again", "POST", "/enable")
}

func kmsKeyListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var l wire.KMSKeyList
			if err := e.kmsDo(cmd.Context(), "GET", "/v1/kms/keys", nil, &l); err != nil {
				return err
			}
			return e.output(l, func() error {
				rows := [][]string{}
				for _, k := range l.Keys {
					st := "enabled"
					if k.Disabled {
						st = "disabled"
					}
					next := "-"
					if !k.NextRotationAt.IsZero() {
						next = k.NextRotationAt.Format(time.RFC3339)
					}
					rows = append(rows, []string{k.Name, strconv.Itoa(k.CurrentVersion), strconv.Itoa(k.MinDecryptionVersion), st, next})
				}
				return e.table([]string{"NAME", "VERSION", "MIN VERSION", "STATE", "NEXT ROTATION"}, rows)
			})
		},
	}
}

func kmsKeyDisableCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "disable NAME",
		Short: "Ask to disable a key (a second person must approve)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r wire.KMSRequest
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/keys/"+url.PathEscape(args[0])+"/disable", nil, &r); err != nil {
				return err
			}
			return e.printRequest(r, "Nothing changed yet: disabling a key needs a second person.")
		},
	}
}

func kmsKeyDestroyCmd(e *env) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "destroy NAME --version N",
		Short: "Ask to destroy a key version for good (second person, then a waiting period)",
		Long: "After a second person approves and the waiting period (7 days by default) passes, the version's key\n" +
			"material is erased: everything encrypted under it becomes permanently unreadable. Rewrap what you keep first.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r wire.KMSRequest
			path := fmt.Sprintf("/v1/kms/keys/%s/versions/%d/destroy", url.PathEscape(args[0]), version)
			if err := e.kmsDo(cmd.Context(), "POST", path, nil, &r); err != nil {
				return err
			}
			return e.printRequest(r, "Nothing changed yet: destroying a key version needs a second person and a waiting period.")
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "the version to destroy")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

func kmsKeySetMinCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "set-min-version NAME VERSION",
		Short: "Set the oldest version that may decrypt (lowering it needs a second person)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.Atoi(args[1])
			if err != nil {
				return fmt.Errorf("VERSION must be a number, not %q", args[1])
			}
			var ch wire.KMSChange
			if err := e.kmsDo(cmd.Context(), "PUT", "/v1/kms/keys/"+url.PathEscape(args[0])+"/min-decryption-version", wire.KMSSetMinVersionRequest{Version: v}, &ch); err != nil {
				return err
			}
			if ch.Pending != nil {
				return e.printRequest(*ch.Pending, "Nothing changed yet: lowering the minimum decryption version needs a second person.")
			}
			if ch.Key == nil {
				return e.output(ch, func() error { e.printf("Unchanged.\n"); return nil })
			}
			return e.printKey(*ch.Key)
		},
	}
}

func kmsEncryptCmd(e *env) *cobra.Command {
	var key, in string
	var pairs []string
	cmd := &cobra.Command{
		Use:   "encrypt --key NAME [--context k=v]... [--in FILE]",
		Short: "Encrypt stdin (or --in FILE, at most 64 KiB) and print the ciphertext",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := parseKV(pairs)
			if err != nil {
				return err
			}
			pt, err := e.readInput(in, maxInput)
			if err != nil {
				return err
			}
			var out wire.KMSEncryptResponse
			req := wire.KMSEncryptRequest{Plaintext: base64.StdEncoding.EncodeToString(pt), Context: ctx}
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/keys/"+url.PathEscape(key)+"/encrypt", req, &out); err != nil {
				return err
			}
			return e.output(out, func() error { e.printf("%s\n", out.Ciphertext); return nil })
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "key name")
	cmd.Flags().StringArrayVar(&pairs, "context", nil, "encryption context pair k=v (repeatable); decrypt needs the same pairs")
	cmd.Flags().StringVar(&in, "in", "-", "file to encrypt (- for stdin)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// ciphertextArg takes the ciphertext from the argument or from stdin.
func (e *env) ciphertextArg(args []string) (string, string, error) {
	ct := ""
	if len(args) == 1 {
		ct = args[0]
	} else {
		b, err := e.readInput("-", 1<<20)
		if err != nil {
			return "", "", err
		}
		ct = string(b)
	}
	ct = strings.TrimSpace(ct)
	key, err := ciphertextKey(ct)
	return ct, key, err
}

func kmsDecryptCmd(e *env) *cobra.Command {
	var pairs []string
	cmd := &cobra.Command{
		Use:   "decrypt [CIPHERTEXT] [--context k=v]...",
		Short: "Decrypt a ciphertext (argument or stdin) and write the plaintext to stdout",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := parseKV(pairs)
			if err != nil {
				return err
			}
			ct, key, err := e.ciphertextArg(args)
			if err != nil {
				return err
			}
			var out wire.KMSDecryptResponse
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/keys/"+url.PathEscape(key)+"/decrypt", wire.KMSDecryptRequest{Ciphertext: ct, Context: ctx}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				pt, err := base64.StdEncoding.DecodeString(out.Plaintext)
				if err != nil {
					return fmt.Errorf("server sent invalid base64: %w", err)
				}
				_, err = e.stdout.Write(pt)
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&pairs, "context", nil, "encryption context pair k=v (repeatable), as given to encrypt")
	return cmd
}

func kmsDataKeyCmd(e *env) *cobra.Command {
	var key string
	var pairs []string
	cmd := &cobra.Command{
		Use:   "generate-data-key --key NAME [--context k=v]...",
		Short: "Get a fresh 256-bit data key: its plaintext (base64) for local encryption and its ciphertext to store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := parseKV(pairs)
			if err != nil {
				return err
			}
			var out wire.KMSDataKeyResponse
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/keys/"+url.PathEscape(key)+"/datakey", wire.KMSDataKeyRequest{Context: ctx}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				e.printf("plaintext:  %s\nciphertext: %s\n", out.Plaintext, out.Ciphertext)
				fmt.Fprintln(e.stderr, "# Encrypt locally with the plaintext key, store the ciphertext beside the data, and forget the plaintext.")
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "key name")
	cmd.Flags().StringArrayVar(&pairs, "context", nil, "encryption context pair k=v (repeatable)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func kmsRewrapCmd(e *env) *cobra.Command {
	var pairs []string
	cmd := &cobra.Command{
		Use:   "rewrap [CIPHERTEXT] [--context k=v]...",
		Short: "Re-encrypt a ciphertext under its key's newest version, without revealing the plaintext",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, err := parseKV(pairs)
			if err != nil {
				return err
			}
			ct, key, err := e.ciphertextArg(args)
			if err != nil {
				return err
			}
			var out wire.KMSEncryptResponse
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/keys/"+url.PathEscape(key)+"/rewrap", wire.KMSRewrapRequest{Ciphertext: ct, Context: ctx}, &out); err != nil {
				return err
			}
			return e.output(out, func() error { e.printf("%s\n", out.Ciphertext); return nil })
		},
	}
	cmd.Flags().StringArrayVar(&pairs, "context", nil, "encryption context pair k=v (repeatable), as given to encrypt")
	return cmd
}

func kmsRequestListCmd(e *env) *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "list [--state pending]",
		Short: "List key and secret requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var l wire.KMSRequestList
			if err := e.kmsDo(cmd.Context(), "GET", "/v1/kms/requests?state="+url.QueryEscape(state), nil, &l); err != nil {
				return err
			}
			return e.output(l, func() error {
				rows := [][]string{}
				for _, r := range l.Requests {
					rows = append(rows, []string{r.ID, r.Action, r.Subject, r.State, r.RequestedBy, r.RequestedAt.Format(time.RFC3339)})
				}
				return e.table([]string{"ID", "ACTION", "SUBJECT", "STATE", "REQUESTED BY", "AT"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only requests in this state (pending, scheduled, done, cancelled, expired, failed)")
	return cmd
}

func kmsRequestShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a request, its exact content and the hash an approver names",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r wire.KMSRequest
			if err := e.kmsDo(cmd.Context(), "GET", "/v1/kms/requests/"+url.PathEscape(args[0]), nil, &r); err != nil {
				return err
			}
			return e.printRequest(r, "")
		},
	}
}

func kmsRequestApproveCmd(e *env) *cobra.Command {
	var hash string
	cmd := &cobra.Command{
		Use:   "approve ID --hash HASH",
		Short: "Approve another person's request by the hash of its content (see `request show`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r wire.KMSRequest
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/requests/"+url.PathEscape(args[0])+"/approve", wire.KMSApproveRequest{Hash: hash}, &r); err != nil {
				return err
			}
			if err := e.printRequest(r, "Approved."); err != nil {
				return err
			}
			if r.Warning != "" && !e.json {
				e.printf("WARNING: %s\n", r.Warning)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&hash, "hash", "", "the content hash you reviewed")
	_ = cmd.MarkFlagRequired("hash")
	return cmd
}

func kmsRequestCancelCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a pending or scheduled request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r wire.KMSRequest
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/kms/requests/"+url.PathEscape(args[0])+"/cancel", nil, &r); err != nil {
				return err
			}
			return e.printRequest(r, "Cancelled.")
		},
	}
}

// ---- secrets --------------------------------------------------------------

var _ = register(func(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Versioned secrets by path: put, get (with a reason), list, versions, delete",
		Long: "Secrets are stored encrypted under a named key (default \"secrets\"). Reading one needs --reason, which\n" +
			"goes to the audit log. Changing or deleting a secret marked critical needs a second person.",
	}
	cmd.AddCommand(secretPutCmd(e), secretGetCmd(e), secretListCmd(e), secretVersionsCmd(e), secretDeleteCmd(e))
	return cmd
})

func (e *env) printSecret(s wire.Secret) {
	crit := ""
	if s.Critical {
		crit = " (critical: changes need a second person)"
	}
	e.printf("Secret %s is at version %d, encrypted with key %s%s.\n", s.Path, s.CurrentVersion, s.Key, crit)
}

func secretPutCmd(e *env) *cobra.Command {
	var key, in string
	var critical, notCritical bool
	cmd := &cobra.Command{
		Use:   "put PATH [--in FILE] [--key NAME] [--critical|--not-critical]",
		Short: "Store stdin (or --in FILE) as the secret's next version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if critical && notCritical {
				return fmt.Errorf("--critical and --not-critical exclude each other")
			}
			v, err := e.readInput(in, maxInput)
			if err != nil {
				return err
			}
			req := wire.SecretPutRequest{Value: base64.StdEncoding.EncodeToString(v), Key: key}
			clear(v)
			if critical || notCritical {
				req.Critical = &critical
			}
			var out wire.SecretPutResponse
			if err := e.kmsDo(cmd.Context(), "PUT", "/v1/secrets/value/"+escapeSegments(args[0]), req, &out); err != nil {
				return err
			}
			if out.Pending != nil {
				return e.printRequest(*out.Pending, "Nothing changed yet: the secret is critical, so a second person must approve the new value.")
			}
			return e.output(out, func() error {
				if out.Secret != nil {
					e.printSecret(*out.Secret)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&in, "in", "-", "file holding the value (- for stdin)")
	cmd.Flags().StringVar(&key, "key", "", "key to encrypt with (default: the secret's, or \"secrets\")")
	cmd.Flags().BoolVar(&critical, "critical", false, "mark the secret critical")
	cmd.Flags().BoolVar(&notCritical, "not-critical", false, "clear the critical mark (needs a second person)")
	return cmd
}

func secretGetCmd(e *env) *cobra.Command {
	var reason string
	var version int
	cmd := &cobra.Command{
		Use:   "get PATH --reason TEXT [--version N]",
		Short: "Write a secret's value to stdout; the reason is audited",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("reading a secret needs --reason (e.g. --reason \"rotate db creds, INC-1234\"); it is recorded in the audit log")
			}
			var out wire.SecretValue
			if err := e.kmsDo(cmd.Context(), "POST", "/v1/secrets/read/"+escapeSegments(args[0]), wire.SecretReadRequest{Reason: reason, Version: version}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				v, err := base64.StdEncoding.DecodeString(out.Value)
				if err != nil {
					return fmt.Errorf("server sent invalid base64: %w", err)
				}
				_, err = e.stdout.Write(v)
				clear(v)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why you read it (required, audited)")
	cmd.Flags().IntVar(&version, "version", 0, "version to read (default: the current one)")
	return cmd
}

func secretListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List secrets (paths and metadata only)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			var l wire.SecretList
			if err := e.kmsDo(cmd.Context(), "GET", "/v1/secrets?prefix="+url.QueryEscape(prefix), nil, &l); err != nil {
				return err
			}
			return e.output(l, func() error {
				rows := [][]string{}
				for _, s := range l.Secrets {
					rows = append(rows, []string{s.Path, strconv.Itoa(s.CurrentVersion), s.Key, strconv.FormatBool(s.Critical), s.UpdatedAt.Format(time.RFC3339)})
				}
				return e.table([]string{"PATH", "VERSION", "KEY", "CRITICAL", "UPDATED"}, rows)
			})
		},
	}
}

func secretVersionsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "versions PATH",
		Short: "List a secret's stored versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out wire.SecretVersions
			if err := e.kmsDo(cmd.Context(), "GET", "/v1/secrets/versions/"+escapeSegments(args[0]), nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				e.printSecret(out.Secret)
				rows := [][]string{}
				for _, v := range out.Versions {
					rows = append(rows, []string{strconv.Itoa(v.Version), v.CreatedAt.Format(time.RFC3339), v.CreatedBy})
				}
				return e.table([]string{"VERSION", "CREATED", "BY"}, rows)
			})
		},
	}
}

func secretDeleteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "delete PATH",
		Short: "Erase every version of a secret (a critical one needs a second person)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out wire.SecretDeleteResponse
			if err := e.kmsDo(cmd.Context(), "DELETE", "/v1/secrets/value/"+escapeSegments(args[0]), nil, &out); err != nil {
				return err
			}
			if out.Pending != nil {
				return e.printRequest(*out.Pending, "Nothing changed yet: the secret is critical, so a second person must approve its deletion.")
			}
			return e.output(out, func() error { e.printf("Deleted %s.\n", args[0]); return nil })
		},
	}
}

// kmsDo makes one KMS or secrets API call with the profile's client.
func (e *env) kmsDo(ctx context.Context, method, path string, in, out any) error {
	c, err := kmsClient(e)
	if err != nil {
		return err
	}
	return c.Do(ctx, method, path, in, out)
}
