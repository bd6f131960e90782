package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// routes gathers every domain's routes. A route missing here is not
// served; TestEveryRouteIsGuarded enumerates what is. loginProofs checks
// the DPoP proofs of the anonymous sign-in routes.
func (a *App) routes(loginProofs *dpop.Verifier) [][]api.Route {
	// Configuration that could loosen the gate changes through change
	// requests: ChangeRoutes stands in for those routes of the others.
	changes := api.ChangeRoutes(a.Changes, a.Ops)
	return [][]api.Route{
		// A log.fork request is shown, approved, denied and withdrawn
		// while the log refuses; their entries wait, pending, and are
		// sequenced after the fork entry.
		whileHalted(changes, changeRoutesWhileHalted...),
		whileHalted(api.Override(api.IdentityRoutes(a.Identity, loginProofs), changes), "POST /v1/login", "POST /v1/mfa"),
		whileHalted(api.SSORoutes(a.SSO, loginProofs), "POST /v1/sso/start", "POST /v1/sso/finish"),
		api.RecoveryRoutes(a.Identity, a.Changes),
		api.StepUpRoutes(a.Identity),
		api.Override(api.PolicyRoutes(a.Policy), changes),
		api.Override(api.OpsRoutes(a.Ops, a.Exec), changes),
		api.ExecRoutes(a.Exec),
		api.KMSRoutes(a.KMS),
		api.LogRoutes(a.logReader()),
		api.PublicLogRoutes(a.logReader(), 0, 0),
		whileHalted(api.LogForkRoutes(a.Changes)),
		api.ScanRoutes(scanRecorder{db: a.db, now: a.now}),
		a.agentRoutes(),
		api.PasskeyRoutes(a.Passkeys, a.Identity),
		api.AccessRoutes(a.Elevate, a.Training, a.Identity),
		api.ReviewRoutes(a.Review),
	}
}

// secretResolver gives the executor a secret's value at dispatch time, as
// the system, with the operation as the audited reason.
type secretResolver struct{ kms *kms.Service }

func (r secretResolver) Resolve(ctx context.Context, op ops.Operation, ref string) (string, error) {
	path := strings.TrimPrefix(ref, "secret:") // plans carry "secret:PATH"
	v, err := r.kms.GetSecret(ctx, kms.Caller{Kind: "system", ID: "executor"}, path, 0, "dispatch of operation "+op.ID)
	if err != nil {
		return "", fmt.Errorf("resolve secret %s for op %s: %w", ref, op.ID, err)
	}
	return string(v.Value.Bytes()), nil
}

// secretsKey is the named key new secrets are encrypted with unless the
// caller names another (kms.Config.DefaultSecretKey's default).
const secretsKey = "secrets"

// ensureSecretsKey creates the secrets store's key on first start, so
// `interlock secret put` works without a setup step. Creating it is audited
// like any key creation, with the system as the actor.
func ensureSecretsKey(ctx context.Context, k *kms.Service) error {
	if _, err := k.GetKey(ctx, secretsKey); err == nil {
		return nil
	} else if ue, ok := usererr.As(err); !ok || ue.Kind != usererr.NotFound {
		return fmt.Errorf("look up the secrets key: %w", err)
	}
	_, err := k.CreateKey(ctx, kms.Caller{Kind: "system", ID: "interlock"}, secretsKey, kms.KeyOptions{})
	if ue, ok := usererr.As(err); ok && ue.Kind == usererr.Conflict {
		return nil // another server created it first
	}
	if err != nil {
		return fmt.Errorf("create the secrets key: %w", err)
	}
	return nil
}

// securityCounters are the /metrics counters an alert should watch: the
// audit log records each event, and these make it page someone.
type securityCounters struct {
	breakGlass, denied prometheus.Counter
}

func newSecurityCounters() securityCounters {
	return securityCounters{
		breakGlass: prometheus.NewCounter(prometheus.CounterOpts{Name: "interlock_break_glass_operations_total",
			Help: "Operations requested with break-glass (no approvals); each one should page someone."}),
		denied: prometheus.NewCounter(prometheus.CounterOpts{Name: "interlock_authorization_denials_total",
			Help: "Requests refused by policy, every one (the audit log aggregates repeats per person, action and minute)."}),
	}
}
