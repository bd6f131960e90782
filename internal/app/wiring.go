package app

import (
	"context"
	"fmt"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/ops"
)

// routes gathers every domain's routes. A route missing here is not
// served; TestEveryRouteIsGuarded enumerates what is.
func (a *App) routes(proofs *dpop.Verifier) [][]api.Route {
	return [][]api.Route{
		api.IdentityRoutes(a.Identity, proofs),
		api.PolicyRoutes(a.Policy),
		api.OpsRoutes(a.Ops, a.Exec),
		api.ExecRoutes(a.Exec),
		api.KMSRoutes(a.KMS),
		api.LogRoutes(a.Audit),
		a.agentRoutes(),
	}
}

// secretResolver gives the executor a secret's value at dispatch time, as
// the system, with the operation as the audited reason.
type secretResolver struct{ kms *kms.Service }

func (r secretResolver) Resolve(ctx context.Context, op ops.Operation, ref string) (string, error) {
	v, err := r.kms.GetSecret(ctx, kms.Caller{Kind: "system", ID: "executor"}, ref, 0, "dispatch of operation "+op.ID)
	if err != nil {
		return "", fmt.Errorf("resolve secret %s for op %s: %w", ref, op.ID, err)
	}
	return string(v.Value.Bytes()), nil
}
