package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// logStatus is the optional part of a LogReader that says whether the
// signer refuses and how far integration is ahead of the checkpoint;
// *audit.Log implements it.
type logStatus interface {
	Refusal() string
	IntegratedSize(ctx context.Context) (uint64, error)
}

func addLogStatus(ctx context.Context, l LogReader, info *wire.LogInfo) error {
	st, ok := l.(logStatus)
	if !ok {
		return nil
	}
	info.Refusing = st.Refusal()
	n, err := st.IntegratedSize(ctx)
	if err != nil {
		return err
	}
	info.IntegratedSize = max(n, info.Size)
	if info.Refusing != "" {
		info.IntegratedSize = n
	}
	return nil
}

// LogForkRequester makes log.fork change requests; *change.Service
// implements it.
type LogForkRequester interface {
	ProposeLogFork(ctx context.Context, by wire.Principal, reason string) (change.View, error)
}

// ForkMFAMaxAge is how recently a person must have proved a second factor
// to ask for a fork of the log.
const ForkMFAMaxAge = 5 * time.Minute

// LogForkRoutes serves POST /v1/log/fork. It answers while the server is
// halted (a fork is how a refusing log resumes).
//
// Forking discards, in the record, the part of the old epoch the database
// lost, so asking is admin-only with fresh MFA here, whatever the policy
// says, and asking only makes a log.fork change request (202 with
// wire.ChangePending): another independent admin approves it, and the
// approval forks (internal/change).
func LogForkRoutes(f LogForkRequester) []Route {
	return []Route{{Pattern: "POST /v1/log/fork", Action: policy.ActionLogFork, WhileHalted: true,
		Resource: func(*http.Request) Resource { return logResource },
		Handle: func(c *Call) error {
			var req wire.LogForkRequest
			if err := c.Decode(&req); err != nil {
				return err
			}
			reason := strings.TrimSpace(req.Reason)
			if reason == "" || len(reason) > 1000 || !utf8.ValidString(reason) {
				return usererr.New(usererr.Invalid, "bad_reason", "A fork needs a reason of 1 to 1000 characters; it is recorded in the fork entry.")
			}
			p := c.Principal
			if p.Kind != "person" || !slices.Contains(p.Roles, "admin") {
				return usererr.New(usererr.Forbidden, "admin_only", "Only a person with role admin may fork the log.")
			}
			if p.MFAAt.IsZero() || c.Now().Sub(p.MFAAt) > ForkMFAMaxAge {
				return usererr.New(usererr.Forbidden, "mfa_required", "Forking the log needs a second factor proved in the last %s; run `interlock log fork` with --otp.", ForkMFAMaxAge)
			}
			v, err := f.ProposeLogFork(c.Context(), p, reason)
			if err != nil {
				return err
			}
			return pending(c, &v)
		}}}
}
