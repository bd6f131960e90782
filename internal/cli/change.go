package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
)

// Commands for change requests: `interlock change list|show|approve|deny|
// withdraw|apply`, `interlock policy diff OLD NEW` (offline), and the
// helper the configuration commands (policy apply, runbook apply, service
// set, user invite, user disable) use to tell "applied" from "needs
// another person's approval".

var _ = register(changeCmd)

// doer is the one call the change commands make; *apiclient.Client implements it.
type doer interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// doConfigChange sends a configuration change. When the server made a
// change request instead of applying (202, {"change_request": …}), it
// returns that request; otherwise it decodes the answer into out (which
// may be nil for an empty answer).
func doConfigChange(ctx context.Context, c doer, method, path string, in, out any) (*wire.ChangeRequest, error) {
	var raw json.RawMessage
	if err := c.Do(ctx, method, path, in, &raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // 204: applied, nothing to say
		}
		return nil, err
	}
	var probe struct {
		ChangeRequest *wire.ChangeRequest `json:"change_request"`
	}
	if err := json.Unmarshal(raw, &probe); err == nil && probe.ChangeRequest != nil && probe.ChangeRequest.ID != "" {
		return probe.ChangeRequest, nil
	}
	if out == nil {
		return nil, nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil, nil
}

// printPending says plainly that a change waits for a second person.
func (e *env) printPending(cr *wire.ChangeRequest) error {
	return e.output(wire.ChangePending{ChangeRequest: *cr}, func() error {
		e.printf("Not applied yet: this is change request %s (%s).\n", cr.ID, cr.Summary)
		e.printChangeDiff(cr.Diff)
		e.printf("It needs approval by another person: interlock change approve %s\n", cr.ID)
		e.printf("(it expires at %s; you can withdraw it with interlock change withdraw %s)\n", cr.ExpiresAt.Local().Format(time.DateTime), cr.ID)
		return nil
	})
}

func changeCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "change",
		Short: "Review, approve, deny and withdraw change requests to the gate's own configuration",
		Long: "A change that could loosen a safety property — a new policy, a new runbook or version, a lower\n" +
			"capacity floor, a higher per-operation cap, a freeze removed, a role of approver or admin granted\n" +
			"(with two or more admins), a person disabled — becomes a change request. Another person approves it\n" +
			"with a fresh one-time code after seeing its diff; nobody approves their own. Requests expire after 24 h.",
	}
	cmd.AddCommand(changeListCmd(e), changeShowCmd(e), changeApproveCmd(e), changeDenyCmd(e), changeWithdrawCmd(e), changeApplyCmd(e))
	return cmd
}

func (e *env) changeAPI() (doer, error) {
	c, _, err := e.client()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func changeListCmd(e *env) *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "list [--state pending,…]",
		Short: "List change requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.changeAPI()
			if err != nil {
				return err
			}
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			var out wire.ChangeList
			if err := c.Do(cmd.Context(), "GET", "/v1/changes?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				rows := make([][]string, 0, len(out.Changes))
				for _, r := range out.Changes {
					rows = append(rows, []string{r.ID, r.State, r.Kind, r.Target, r.RequesterName, r.CreatedAt.Local().Format(time.DateTime), r.Summary})
				}
				return e.table([]string{"ID", "STATE", "KIND", "TARGET", "REQUESTER", "CREATED", "SUMMARY"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only these states (comma-separated): pending, approved, applied, denied, withdrawn, expired, void")
	return cmd
}

func changeShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a change request: what it changes (a semantic diff), its hash and its state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.changeAPI()
			if err != nil {
				return err
			}
			var cr wire.ChangeRequest
			if err := c.Do(cmd.Context(), "GET", "/v1/changes/"+url.PathEscape(args[0]), nil, &cr); err != nil {
				return err
			}
			return e.output(cr, func() error { e.printChange(cr); return nil })
		},
	}
}

func (e *env) printChange(cr wire.ChangeRequest) {
	e.printf("Change request %s: %s\n", cr.ID, cr.State)
	e.printf("  %s\n", cr.Summary)
	e.printf("  requested by %s at %s, expires %s\n", cr.RequesterName, cr.CreatedAt.Local().Format(time.DateTime), cr.ExpiresAt.Local().Format(time.DateTime))
	e.printf("  content hash: %s\n", cr.Hash)
	if cr.DecidedBy != "" {
		e.printf("  decided by %s at %s", cr.DecidedBy, cr.DecidedAt.Local().Format(time.DateTime))
		if cr.Detail != "" {
			e.printf(": %s", cr.Detail)
		}
		e.printf("\n")
	}
	e.printChangeDiff(cr.Diff)
}

// printChangeDiff prints what a change means, kind by kind.
func (e *env) printChangeDiff(d wire.ChangeDiff) {
	switch {
	case d.Policy != nil:
		e.printPolicyDiff(*d.Policy)
	case d.Runbook != nil:
		r := d.Runbook
		if r.New {
			e.printf("New runbook %s:\n", r.Name)
			for _, f := range r.Fields {
				e.printf("  + %-20s %s\n", f.Field+":", f.New)
			}
			return
		}
		e.printf("Runbook %s, what changes from its latest version:\n", r.Name)
		if len(r.Fields) == 0 {
			e.printf("  (no change in what it does)\n")
		}
		for _, f := range r.Fields {
			e.printf("  %s:\n    - %s\n    + %s\n", f.Field, orAbsent(f.Old), orAbsent(f.New))
		}
	case d.Services != nil:
		for _, s := range d.Services {
			verb := "Service"
			if s.Create {
				verb = "New service"
			}
			e.printf("%s %s:\n", verb, s.Name)
			for _, f := range s.Fields {
				if s.Create {
					e.printf("  %-18s %s\n", f.Field+":", f.New)
				} else {
					e.printf("  %-18s %s → %s\n", f.Field+":", f.Old, f.New)
				}
			}
			for _, l := range s.Loosens {
				e.printf("  ! %s\n", l)
			}
		}
	case d.User != nil && (d.User.Reset != "" || d.User.Enable || d.User.Roles != nil):
		e.printPeopleDiff(*d.User) // recovery.go
	case d.User != nil:
		if d.User.Role != "" {
			e.printf("Grant role %s: invite %s as %s\n", d.User.Role, d.User.Username, d.User.Role)
		} else {
			e.printf("Disable %s (now %s): their sessions end and they can no longer sign in\n", d.User.Username, d.User.Status)
		}
	case d.LogFork != nil:
		f := d.LogFork
		e.printf("Fork the audit log %s (reason: %s):\n  %s\n", f.Origin, f.Reason, f.Sentence)
	}
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

func (e *env) printPolicyDiff(d wire.PolicyDiff) {
	e.printf("Policy %s → %s (%d decisions compared)\n", shortHash(d.OldHash), shortHash(d.NewHash), d.Samples)
	for _, l := range []struct {
		sign string
		ids  []string
		what string
	}{{"+", d.Added, "added"}, {"-", d.Removed, "removed"}, {"~", d.Changed, "changed"}} {
		if len(l.ids) > 0 {
			e.printf("  policies %s: %s\n", l.what, strings.Join(l.ids, ", "))
		}
	}
	if len(d.Unenumerated) > 0 {
		e.printf("  ! Permissions depend on conditions the diff cannot enumerate; read these policies' text, they may loosen:\n")
		for _, u := range d.Unenumerated {
			e.printf("    ? %s\n", u)
		}
	}
	if len(d.Gained) == 0 && len(d.Lost) == 0 && len(d.Approvals) == 0 {
		if len(d.Unenumerated) == 0 {
			e.printf("  No decision changes for any role and action.\n")
		} else {
			e.printf("  No decision changes among the samples the diff could enumerate.\n")
		}
		return
	}
	if len(d.Gained) > 0 {
		e.printf("  Permissions gained:\n")
		for _, p := range d.Gained {
			e.printf("    + %s: %s on %s (%s → %s)\n", p.Principal, p.Action, p.Resource, p.Before, p.After)
		}
	}
	if len(d.Lost) > 0 {
		e.printf("  Permissions lost:\n")
		for _, p := range d.Lost {
			e.printf("    - %s: %s on %s (%s → %s)\n", p.Principal, p.Action, p.Resource, p.Before, p.After)
		}
	}
	if len(d.Approvals) > 0 {
		e.printf("  Approvals needed to run an operation:\n")
		for _, a := range d.Approvals {
			mark := "▲"
			switch {
			case a.After < a.Before:
				mark = "▼ fewer"
			case a.BeforeRoles != nil:
				mark = "~ other approvers"
			}
			e.printf("    %s %s: %d%s → %d%s\n", mark, a.Context, a.Before, rolesSuffix(a.BeforeRoles), a.After, rolesSuffix(a.Roles))
		}
	}
}

func rolesSuffix(roles []string) string {
	if len(roles) == 0 {
		return ""
	}
	return " (from " + strings.Join(roles, " or ") + ")"
}

func shortHash(h string) string {
	if len(h) > 19 {
		return h[:19] + "…"
	}
	return h
}

func changeApproveCmd(e *env) *cobra.Command {
	var hash, otp string
	var yes bool
	cmd := &cobra.Command{
		Use:   "approve ID [--yes] [--otp CODE] [--hash HASH]",
		Short: "Approve another person's change request after reviewing its diff (needs fresh MFA)",
		Long: "Shows the change and its diff, asks \"approve this change? [y/N]\", then asks for a one-time code\n" +
			"(fresh MFA) and approves exactly the content hash shown. With --hash the approval signs that hash\n" +
			"and is refused if the content differs. Nobody approves their own request.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.changeAPI()
			if err != nil {
				return err
			}
			id := url.PathEscape(args[0])
			var cr wire.ChangeRequest
			if err := c.Do(cmd.Context(), "GET", "/v1/changes/"+id, nil, &cr); err != nil {
				return err
			}
			if hash == "" {
				hash = cr.Hash
			}
			switch {
			case !e.json:
				e.printChange(cr)
			case !yes:
				// --json keeps stdout for the answer, but the question
				// below must not be asked about a change nobody was
				// shown: the change goes to stderr.
				view := *e
				view.stdout = e.stderr
				view.printChange(cr)
			}
			if !yes {
				ok, err := e.confirm("approve this change? [y/N] ")
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("not approved; nothing was changed")
				}
			}
			if otp == "" && e.isTerminal() {
				if otp, err = e.readSecret("One-time code (approving needs fresh MFA): ", false); err != nil {
					return err
				}
			}
			if otp != "" {
				var mfa wire.MFAResponse
				if err := c.Do(cmd.Context(), "POST", "/v1/mfa", wire.MFARequest{OTP: otp}, &mfa); err != nil {
					return err
				}
			}
			var out wire.ChangeRequest
			if err := c.Do(cmd.Context(), "POST", "/v1/changes/"+id+"/approvals", wire.ChangeApproveRequest{Hash: hash}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				switch out.State {
				case "applied":
					e.printf("Approved. Change %s is applied.\n", out.ID)
					if out.Kind == "log.fork" {
						e.printf("The log was %s. Every `interlock log verify` will report this fork.\n", out.Detail)
					}
				case "approved":
					e.printf("Approved. %s collects the invitation code with: interlock change apply %s\n", out.RequesterName, out.ID)
				default:
					e.printf("Approved. Change %s is %s.\n", out.ID, out.State)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "approve without asking (for scripts; the diff is still printed)")
	cmd.Flags().StringVar(&otp, "otp", "", "a current one-time code, proving fresh MFA (prompted on a terminal)")
	cmd.Flags().StringVar(&hash, "hash", "", "the content hash you reviewed (default: the one shown)")
	return cmd
}

// confirm asks a yes/no question on stderr and reads the answer from
// stdin; anything but y or yes is no.
func (e *env) confirm(question string) (bool, error) {
	fmt.Fprint(e.stderr, question)
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func changeDenyCmd(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "deny ID --reason TEXT",
		Short: "Deny a pending change request; nothing of it is applied",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.closeChange(cmd.Context(), args[0], "deny", reason)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (goes into the audit log)")
	return cmd
}

func changeWithdrawCmd(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "withdraw ID [--reason TEXT]",
		Short: "Withdraw your own pending change request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.closeChange(cmd.Context(), args[0], "withdraw", reason)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (goes into the audit log)")
	return cmd
}

func (e *env) closeChange(ctx context.Context, id, verb, reason string) error {
	c, err := e.changeAPI()
	if err != nil {
		return err
	}
	var out wire.ChangeRequest
	if err := c.Do(ctx, "POST", "/v1/changes/"+url.PathEscape(id)+"/"+verb, wire.ReasonRequest{Reason: reason}, &out); err != nil {
		return err
	}
	return e.output(out, func() error {
		e.printf("Change request %s is %s; nothing of it was applied.\n", out.ID, out.State)
		return nil
	})
}

func changeApplyCmd(e *env) *cobra.Command {
	var otp string
	cmd := &cobra.Command{
		Use:   "apply ID [--otp CODE]",
		Short: "Collect an approved invitation or credential reset you requested: prints its one-time code (only to you)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.changeAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(cmd.Context(), c, otp); err != nil {
				return err
			}
			var out wire.ChangeApplied
			if err := c.Do(cmd.Context(), "POST", "/v1/changes/"+url.PathEscape(args[0])+"/apply", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				if inv := out.Invitation; inv != nil {
					e.printInvitation(*inv)
				}
				if rc := out.Reset; rc != nil {
					e.printResetCode(*rc)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	return cmd
}

// printInvitation shows a new invitation's code and the exact accept
// command, with the server and CA fingerprint of the inviter's profile.
func (e *env) printInvitation(inv wire.Invitation) {
	e.printf("Invited %s as %s. Give them this one-time code through a channel you trust; it works once, until %s:\n\n  %s\n\n",
		inv.Username, inv.Role, inv.ExpiresAt.Local().Format(time.RFC1123), inv.Code)
	server, fp := "URL", "SHA256:…"
	if p, err := e.loadProfile(); err == nil && p.Server != "" && p.CAFingerprint != "" {
		server, fp = p.Server, p.CAFingerprint
	}
	e.printf("They run: interlock user accept --server %s --ca-fingerprint %s --code %s\n", server, fp, inv.Code)
}

func policyDiffCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "diff OLD.cedar NEW.cedar",
		Short: "Show what changes between two policies: permissions gained and lost, approvals (offline)",
		Long: "Evaluates both policies with Cedar over every action × role (with and without fresh MFA, on the\n" +
			"resources the policies name) and the approval requirement of op.run over risk × removes_capacity ×\n" +
			"the services they name, and prints what differs. Needs no server. Exits 1 when a file is not a\n" +
			"valid policy.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			texts := make([]string, 2)
			for i, f := range args {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				texts[i] = string(b)
			}
			d, err := policy.Diff(texts[0], texts[1], time.Now())
			if err != nil {
				return err
			}
			return e.output(d, func() error { e.printPolicyDiff(d); return nil })
		},
	}
}
