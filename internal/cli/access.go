package cli

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// Commands for issue 12: `interlock elevate` (ask for a just-in-time
// grant), `interlock grants list|show|approve|deny|revoke|eligible`, and
// `interlock training record|import|list`.

var (
	_ = register(newElevateCmd)
	_ = register(newGrantsCmd)
	_ = register(newTrainingCmd)
)

func (e *env) accessAPI() (doer, error) {
	c, _, err := e.client()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func newElevateCmd(e *env) *cobra.Command {
	var role, reason string
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "elevate --role ROLE --for DURATION --reason TEXT",
		Short: "Ask for a role you are eligible for, for a while (just-in-time elevation)",
		Long: "Ask for a role you are eligible for, for a while. Policy says how many people must approve;\n" +
			"the grant starts when they have, and ends by itself when its time is up (or when revoked).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var g wire.Grant
			if err := c.Do(e.ctx, "POST", "/v1/grants", wire.GrantRequest{Role: role, DurationS: int64(d / time.Second), Reason: reason}, &g); err != nil {
				return err
			}
			return e.output(g, func() error {
				if g.State == "active" {
					e.printf("Grant %s: you hold %s until %s.\n", g.ID, g.Role, g.ExpiresAt.Local().Format(time.DateTime))
					return nil
				}
				e.printf("Grant %s for %s is pending: it needs %d approval(s) from %s.\n", g.ID, g.Role, g.Needed, strings.Join(g.ApproverRoles, " or "))
				e.printf("Another person approves it with: interlock grants approve %s\n", g.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "the role to hold: viewer, operator, approver or admin (required)")
	cmd.Flags().DurationVar(&d, "for", 0, "how long, e.g. 30m or 1h (at most 12h; required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why: a ticket or incident (required)")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("for")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newGrantsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "grants",
		Short: "Just-in-time grants: list, show, approve, deny, revoke; who is eligible for what",
	}
	cmd.AddCommand(grantsListCmd(e), grantsShowCmd(e), grantsApproveCmd(e), grantsCloseCmd(e, "deny"), grantsCloseCmd(e, "revoke"), grantsEligibleCmd(e))
	return cmd
}

func (e *env) grantRows(gs []wire.Grant) [][]string {
	rows := make([][]string, 0, len(gs))
	for _, g := range gs {
		until := "-"
		if !g.ExpiresAt.IsZero() {
			until = g.ExpiresAt.Local().Format(time.DateTime)
		}
		rows = append(rows, []string{g.ID, g.Person, g.Role, g.State, until, strconv.Itoa(len(g.Approvals)) + "/" + strconv.Itoa(g.Needed), g.Reason})
	}
	return rows
}

func grantsListCmd(e *env) *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "list [--state pending|active|…]",
		Short: "List grants, newest first, and who is eligible for which role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var out wire.GrantList
			if err := c.Do(e.ctx, "GET", "/v1/grants", nil, &out); err != nil {
				return err
			}
			if state != "" {
				kept := out.Grants[:0]
				for _, g := range out.Grants {
					if g.State == state {
						kept = append(kept, g)
					}
				}
				out.Grants = kept
			}
			return e.output(out, func() error {
				if err := e.table([]string{"GRANT", "PERSON", "ROLE", "STATE", "UNTIL", "APPROVALS", "REASON"}, e.grantRows(out.Grants)); err != nil {
					return err
				}
				if len(out.Eligibility) > 0 {
					e.printf("\n")
					rows := make([][]string, 0, len(out.Eligibility))
					for _, el := range out.Eligibility {
						rows = append(rows, []string{el.Person, el.Role, el.GrantedBy, el.GrantedAt.Local().Format(time.DateTime)})
					}
					return e.table([]string{"ELIGIBLE", "ROLE", "BY", "SINCE"}, rows)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only grants in this state")
	return cmd
}

func (e *env) printGrant(g wire.Grant) {
	e.printf("Grant %s: %s for %s, %s\n", g.ID, g.Role, g.Person, g.State)
	e.printf("  asked at %s for %s: %s\n", g.RequestedAt.Local().Format(time.DateTime), time.Duration(g.DurationS)*time.Second, g.Reason)
	e.printf("  approvals: %d of %d (from %s; policy %s)\n", len(g.Approvals), g.Needed, strings.Join(g.ApproverRoles, " or "), strings.Join(g.PolicyIDs, ", "))
	for _, a := range g.Approvals {
		e.printf("    %s at %s\n", a.Person, a.At.Local().Format(time.DateTime))
	}
	if !g.ExpiresAt.IsZero() {
		e.printf("  from %s until %s\n", g.StartsAt.Local().Format(time.DateTime), g.ExpiresAt.Local().Format(time.DateTime))
	}
	if !g.EndedAt.IsZero() {
		e.printf("  ended at %s by %s: %s\n", g.EndedAt.Local().Format(time.DateTime), g.EndedBy, g.EndReason)
	}
}

func grantsShowCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one grant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var g wire.Grant
			if err := c.Do(e.ctx, "GET", "/v1/grants/"+url.PathEscape(args[0]), nil, &g); err != nil {
				return err
			}
			return e.output(g, func() error { e.printGrant(g); return nil })
		},
	}
}

func grantsApproveCmd(e *env) *cobra.Command {
	var otp string
	cmd := &cobra.Command{
		Use:   "approve ID [--otp CODE]",
		Short: "Approve another person's grant (needs fresh MFA; never your own)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(e.ctx, c, otp); err != nil {
				return err
			}
			var g wire.Grant
			if err := c.Do(e.ctx, "POST", "/v1/grants/"+url.PathEscape(args[0])+"/approve", nil, &g); err != nil {
				return err
			}
			return e.output(g, func() error {
				if g.State == "active" {
					e.printf("Approved. %s holds %s until %s (grant %s).\n", g.Person, g.Role, g.ExpiresAt.Local().Format(time.DateTime), g.ID)
				} else {
					e.printf("Approved (%d of %d). Grant %s is still %s.\n", len(g.Approvals), g.Needed, g.ID, g.State)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	return cmd
}

func grantsCloseCmd(e *env, verb string) *cobra.Command {
	var reason string
	short := map[string]string{
		"deny":   "Deny another person's pending grant",
		"revoke": "End a grant now (your own, or anyone's with elevate.revoke); a pending one of yours is withdrawn",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " ID --reason TEXT",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var g wire.Grant
			if err := c.Do(e.ctx, "POST", "/v1/grants/"+url.PathEscape(args[0])+"/"+verb, wire.ReasonRequest{Reason: reason}, &g); err != nil {
				return err
			}
			return e.output(g, func() error {
				e.printf("Grant %s is %s.\n", g.ID, g.State)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the log)")
	return cmd
}

func grantsEligibleCmd(e *env) *cobra.Command {
	var none bool
	var otp string
	cmd := &cobra.Command{
		Use:   "eligible USER ROLE... | eligible USER --none",
		Short: "Set the roles USER may ask for with interlock elevate (replaces what they had; needs fresh MFA)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			roles := []string{}
			for _, a := range args[1:] {
				for _, r := range strings.Split(a, ",") {
					if r = strings.TrimSpace(r); r != "" {
						roles = append(roles, r)
					}
				}
			}
			if len(roles) == 0 && !none {
				return fmt.Errorf("name the roles %s may ask for, or give --none to remove every eligibility", args[0])
			}
			if len(roles) > 0 && none {
				return fmt.Errorf("give roles or --none, not both")
			}
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			if err := proveFreshMFA(e.ctx, c, otp); err != nil {
				return err
			}
			var out wire.GrantList
			if err := c.Do(e.ctx, "PUT", "/v1/eligibility/"+url.PathEscape(args[0]), wire.EligibilityRequest{Roles: roles}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				if len(roles) == 0 {
					e.printf("%s is eligible for no role now.\n", args[0])
				} else {
					e.printf("%s may now ask for %s with interlock elevate.\n", args[0], strings.Join(roles, ", "))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&none, "none", false, "remove every eligibility (and end the person's grants)")
	cmd.Flags().StringVar(&otp, "otp", "", otpFlagHelp)
	return cmd
}

func newTrainingCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "training",
		Short: "Record and list training completions (policy sees current courses as context.training)",
	}
	cmd.AddCommand(trainingRecordCmd(e), trainingImportCmd(e), trainingListCmd(e))
	return cmd
}

func (e *env) printTraining(out wire.TrainingList) error {
	rows := make([][]string, 0, len(out.Records))
	for _, r := range out.Records {
		exp, cur := "never", "current"
		if !r.ExpiresAt.IsZero() {
			exp = r.ExpiresAt.Local().Format(time.DateOnly)
		}
		if !r.Current {
			cur = "expired"
		}
		rows = append(rows, []string{r.Person, r.Course, r.CompletedAt.Local().Format(time.DateOnly), exp, cur})
	}
	return e.table([]string{"PERSON", "COURSE", "COMPLETED", "EXPIRES", "STATUS"}, rows)
}

func trainingRecordCmd(e *env) *cobra.Command {
	var completed, expires string
	cmd := &cobra.Command{
		Use:   "record PERSON COURSE --expires DATE [--completed DATE]",
		Short: "Record that PERSON completed COURSE (dates as 2027-03-01; --expires never for none)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if expires == "never" {
				expires = ""
			} else if expires == "" {
				return fmt.Errorf("say when the course expires with --expires DATE (or --expires never)")
			}
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var out wire.TrainingList
			if err := c.Do(e.ctx, "POST", "/v1/training", wire.TrainingRecordRequest{Username: args[0], Course: args[1], Completed: completed, Expires: expires}, &out); err != nil {
				return err
			}
			return e.output(out, func() error { return e.printTraining(out) })
		},
	}
	cmd.Flags().StringVar(&expires, "expires", "", "when the completion stops counting: a date, or never (required)")
	cmd.Flags().StringVar(&completed, "completed", "", "when it was completed (default: now)")
	return cmd
}

func trainingImportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Record every row of a CSV (username,course,completed,expires), or none if any row is wrong",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := e.readInput(args[0], 4<<20)
			if err != nil {
				return err
			}
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var out wire.TrainingList
			if err := c.Do(e.ctx, "POST", "/v1/training/import", wire.TrainingImportRequest{CSV: string(b)}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				e.printf("Recorded %d completion(s).\n", len(out.Records))
				return e.printTraining(out)
			})
		},
	}
}

func trainingListCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List everyone's training, current or expired",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var out wire.TrainingList
			if err := c.Do(e.ctx, "GET", "/v1/training", nil, &out); err != nil {
				return err
			}
			return e.output(out, func() error { return e.printTraining(out) })
		},
	}
}
