package api

import (
	"net/http"
	"strconv"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/review"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ReviewRoutes serves access reviews (see internal/api/wire/access.go).
func ReviewRoutes(svc *review.Service) []Route {
	return []Route{
		{Pattern: "GET /v1/access/review", Action: policy.ActionAccessReview, Handle: func(c *Call) error {
			q := c.R.URL.Query()
			format := q.Get("format")
			if format == "" {
				format = "json"
			}
			if format != "json" && format != "csv" {
				return usererr.New(usererr.Invalid, "invalid_format", "format must be json or csv, not %q", format)
			}
			days := 90
			if v := q.Get("unused_days"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return usererr.New(usererr.Invalid, "invalid_unused_days", "unused_days must be a whole number of days, not %q", v)
				}
				days = n
			}
			r, err := svc.Generate(c.Context(), c.Principal, days, format)
			if err != nil {
				return err
			}
			out := wire.AccessReview{At: r.At, UnusedDays: r.UnusedDays, Unused: r.Unused(), Lines: make([]wire.AccessReviewLine, 0, len(r.Lines))}
			for _, l := range r.Lines {
				out.Lines = append(out.Lines, wire.AccessReviewLine(l))
			}
			if format == "csv" {
				out.CSV = string(r.CSV())
			}
			return c.JSON(http.StatusOK, out)
		}},
		{Pattern: "POST /v1/access/review/decisions", Action: policy.ActionAccessDecide, Handle: func(c *Call) error {
			var in wire.AccessDecisionRequest
			if err := c.Decode(&in); err != nil {
				return err
			}
			ds := make([]review.Decision, len(in.Decisions))
			for i, d := range in.Decisions {
				ds[i] = review.Decision(d)
			}
			n, err := svc.Decide(c.Context(), c.Principal, ds)
			if err != nil {
				if n > 0 {
					if ue, ok := usererr.As(err); ok {
						return usererr.New(ue.Kind, ue.Code, "%s (the %d decisions before it were applied)", ue.Msg, n)
					}
				}
				return err
			}
			return c.JSON(http.StatusOK, wire.AccessDecisionResult{Applied: n})
		}},
	}
}
