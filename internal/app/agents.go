package app

import (
	"context"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/pki"
)

// setupTLSAndAgents loads (or creates) the CA, builds the listener's TLS
// 1.3 config with optional client certificates for agents, and the hub
// that holds agent connections.
func (a *App) setupTLSAndAgents(ctx context.Context, sealer pki.Sealer) error {
	var err error
	if err := a.fetchSharedCA(ctx); err != nil {
		return err
	}
	if a.CA, err = pki.LoadOrCreateCA(a.cfg.DataDir, sealer, a.now, nil); err != nil {
		return fmt.Errorf("certificate authority: %w", err)
	}
	if err := a.shareCA(ctx); err != nil {
		return err
	}
	hosts := append([]string{"127.0.0.1", "::1", "localhost"}, a.cfg.ServerNames...)
	if a.tlsConfig, err = a.CA.ServerTLSConfig(hosts); err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	a.fleet = newFleetWitness(a.db, a.Audit, a.now) // agents witness the audit log (witness.go)
	if a.Hub, err = agenthub.New(agenthub.Config{CA: a.CA, Enroller: a.Ops, Heartbeats: a.Ops, Revocations: a.Ops,
		Certificates: hostCertificates{a.Ops}, Now: a.now, Log: a.log,
		AuditLog: hubLog{a.Audit}, Witnesses: a.fleet,
		IdentityGeneration: a.Ops.IdentityGeneration}); err != nil {
		return fmt.Errorf("agent hub: %w", err)
	}
	// A large fleet heartbeats less often; its held connections keep
	// hosts live meanwhile (agenthub heartbeat.go, ops liveness.go).
	a.Ops.SetConnections(a.Hub.ConnectedHosts)
	return nil
}

// forgetHost tells the hub that a host's identity changed on this server
// (ops.Config.OnHostRevoked), so that its cache takes it in at once.
func (a *App) forgetHost(hostID string) {
	if a.Hub != nil {
		a.Hub.ForgetHost(hostID)
	}
}

func (a *App) agentRoutes() []api.Route { return append(api.AgentRoutes(a.Hub), a.serversRoute()) }

// CAFingerprint is the pin clients and agents need: SHA256:<hex>.
func (a *App) CAFingerprint() string { return a.CA.Fingerprint() }

// hostCertificates adapts ops.Manager's certificate pins to the hub.
type hostCertificates struct{ m *ops.Manager }

func (c hostCertificates) HostPin(ctx context.Context, hostID string) (agenthub.Pin, bool, error) {
	hc, ok, err := c.m.HostCertificate(ctx, hostID)
	if err != nil || !ok {
		return agenthub.Pin{}, false, err
	}
	return agenthub.Pin{Fingerprint: hc.Fingerprint, Previous: hc.Previous, PEM: hc.PEM, IssuedAt: hc.IssuedAt}, true, nil
}

func (c hostCertificates) PinEnrolled(ctx context.Context, hostID, fingerprint, certPEM string, notAfter time.Time) error {
	return c.m.PinEnrolledCertificate(ctx, ops.HostCertificate{HostID: hostID, Fingerprint: fingerprint, PEM: certPEM, NotAfter: notAfter})
}

func (c hostCertificates) Renew(ctx context.Context, hostID, presented string, minInterval time.Duration,
	issue func() (string, string, time.Time, error)) (string, error) {
	hc, err := c.m.RenewCertificate(ctx, hostID, presented, minInterval, func() (ops.HostCertificate, error) {
		fp, pemText, notAfter, err := issue()
		return ops.HostCertificate{Fingerprint: fp, PEM: pemText, NotAfter: notAfter}, err
	})
	return hc.PEM, err
}
