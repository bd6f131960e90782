package app

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/sso"
)

// setupSSO builds the single sign-on service for the configured issuers
// (none is fine: its routes then refuse with a sentence).
func (a *App) setupSSO(sealer identity.Sealer) error {
	var err error
	a.SSO, err = sso.New(sso.Config{Store: a.db.SSOStore(), Sealer: sealer, Identity: a.Identity, Issuers: a.cfg.SSO,
		ResolveSecret: a.resolveClientSecret, Now: a.now, Log: a.log})
	if err != nil {
		return fmt.Errorf("sso: %w", err)
	}
	return nil
}

// resolveClientSecret reads a client secret reference when a sign-in needs
// it, so that a rotated secret is used without a restart: "env:NAME" from
// serve's environment, "secret:PATH" from Interlock's secrets (read as the
// system, audited like every secret read).
func (a *App) resolveClientSecret(ctx context.Context, ref string) (string, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		v := os.Getenv(strings.TrimPrefix(ref, "env:"))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", strings.TrimPrefix(ref, "env:"))
		}
		return v, nil
	case strings.HasPrefix(ref, "secret:"):
		v, err := a.KMS.GetSecret(ctx, kms.Caller{Kind: "system", ID: "sso"}, strings.TrimPrefix(ref, "secret:"), 0, "OpenID Connect client secret for a sign-in")
		if err != nil {
			return "", err
		}
		return string(v.Value.Bytes()), nil
	}
	return "", fmt.Errorf("client secret reference %q is neither env:NAME nor secret:PATH", ref)
}
