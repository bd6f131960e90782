package app

import (
	"context"
	"fmt"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/pki"
)

// setupTLSAndAgents loads (or creates) the CA, builds the listener's TLS
// 1.3 config with optional client certificates for agents, and the hub
// that holds agent connections.
func (a *App) setupTLSAndAgents(_ context.Context, sealer pki.Sealer) error {
	var err error
	if a.CA, err = pki.LoadOrCreateCA(a.cfg.DataDir, sealer, a.now, nil); err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}
	hosts := append([]string{"127.0.0.1", "::1", "localhost"}, a.cfg.ServerNames...)
	if a.tlsConfig, err = a.CA.ServerTLSConfig(hosts); err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	a.fleet = newFleetWitness(a.db, a.Audit, a.now) // agents witness the audit log (witness.go)
	if a.Hub, err = agenthub.New(agenthub.Config{CA: a.CA, Enroller: a.Ops, Heartbeats: a.Ops, Revocations: a.Ops, Now: a.now, Log: a.log,
		AuditLog: hubLog{a.Audit}, Witnesses: a.fleet}); err != nil {
		return fmt.Errorf("agent hub: %w", err)
	}
	return nil
}

func (a *App) agentRoutes() []api.Route { return api.AgentRoutes(a.Hub) }

// CAFingerprint is the pin clients and agents need: SHA256:<hex>.
func (a *App) CAFingerprint() string { return a.CA.Fingerprint() }
