package cli

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// `interlock access review|confirm|revoke`: periodic access reviews.

var _ = register(newAccessCmd)

func newAccessCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Access reviews: every person's roles, grants and last use; confirm or revoke each line",
	}
	cmd.AddCommand(accessReviewCmd(e), accessDecideCmd(e, "confirm"), accessDecideCmd(e, "revoke"))
	return cmd
}

func accessReviewCmd(e *env) *cobra.Command {
	var format string
	var days int
	cmd := &cobra.Command{
		Use:   "review [--format table|csv|json] [--unused-days N]",
		Short: "List every person's roles (standing, eligible, granted), each permission's last use, and unused access",
		Long: "Lists, for every person, each role they hold for good, each role they are eligible for and each\n" +
			"active or pending grant; under each, every permission the role gives with its last use (from the\n" +
			"audit log). A line not used in the last --unused-days days is unused. Taking the review is itself\n" +
			"a log entry. Confirm or revoke lines by their id with interlock access confirm|revoke.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			wireFormat := format
			switch format {
			case "table":
				wireFormat = "json"
			case "csv", "json":
			default:
				return fmt.Errorf("--format must be table, csv or json, not %q", format)
			}
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			var out wire.AccessReview
			q := url.Values{"format": {wireFormat}, "unused_days": {strconv.Itoa(days)}}
			if err := c.Do(e.ctx, "GET", "/v1/access/review?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			switch {
			case format == "csv":
				_, err := fmt.Fprint(e.stdout, out.CSV)
				return err
			case format == "json" || e.json:
				return e.printJSON(out)
			}
			rows := make([][]string, 0, len(out.Lines))
			for _, l := range out.Lines {
				last, unused := "never", ""
				if !l.LastUsed.IsZero() {
					last = l.LastUsed.Local().Format("2006-01-02 15:04")
				}
				if l.Unused {
					unused = "UNUSED"
				}
				rows = append(rows, []string{l.ID, l.Source, l.Permission, last, unused})
			}
			if err := e.table([]string{"LINE", "SOURCE", "PERMISSION", "LAST USED", ""}, rows); err != nil {
				return err
			}
			e.printf("%d lines, %d unused in the last %d days.\n", len(out.Lines), out.Unused, out.UnusedDays)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	cmd.Flags().IntVar(&days, "unused-days", 90, "a line not used in this many days is unused")
	return cmd
}

func accessDecideCmd(e *env, verb string) *cobra.Command {
	short := map[string]string{
		"confirm": "Confirm review lines: the access stays, and the log says who looked",
		"revoke":  "Revoke review lines (role lines only): a standing role, an eligibility or a grant ends now",
	}[verb]
	return &cobra.Command{
		Use:   verb + " LINE...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.accessAPI()
			if err != nil {
				return err
			}
			req := wire.AccessDecisionRequest{}
			for _, l := range args {
				req.Decisions = append(req.Decisions, wire.AccessDecision{Line: l, Decision: verb})
			}
			var out wire.AccessDecisionResult
			if err := c.Do(e.ctx, "POST", "/v1/access/review/decisions", req, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				e.printf("%d line(s): %s.\n", out.Applied, map[string]string{"confirm": "confirmed", "revoke": "revoked"}[verb])
				return nil
			})
		},
	}
}
