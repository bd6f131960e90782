package agenthub_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
)

// memPins is a Certificates whose pins the test sets.
type memPins struct {
	mu   sync.Mutex
	pins map[string]agenthub.Pin
}

func (m *memPins) HostPin(_ context.Context, hostID string) (agenthub.Pin, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pins[hostID]
	return p, ok, nil
}

func (m *memPins) set(hostID string, p agenthub.Pin) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins[hostID] = p
}

func (m *memPins) PinEnrolled(_ context.Context, hostID, fp, certPEM string, _ time.Time) error {
	m.set(hostID, agenthub.Pin{Fingerprint: fp, PEM: certPEM, IssuedAt: time.Now()})
	return nil
}

func (m *memPins) Renew(context.Context, string, string, time.Duration, func() (string, string, time.Time, error)) (string, error) {
	return "", errors.New("not in this test")
}

// pinnedClient signs a certificate for hostID and returns a client holding
// it, the certificate's fingerprint and its PEM.
func pinnedClient(t *testing.T, ca *pki.CA, hostID string) (*http.Client, string, string) {
	t.Helper()
	key, csr, err := pki.NewAgentKey(nil, hostID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignAgentCSR(csr, hostID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pki.ParseCertificatePEM(certPEM)
	cfg, _ := pki.PinnedTLSConfig(ca.Fingerprint())
	cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	sum := sha256.Sum256(leaf.Raw)
	return &http.Client{Transport: tr}, hex.EncodeToString(sum[:]), string(certPEM)
}

// TestReplacedCertificateIsShutOut: once a host's pin moves to another
// certificate (a renewal), the old one's live stream ends at its next
// ping, gets no step, and every agent route refuses it — renew included,
// unless it asks for the key of the new certificate.
func TestReplacedCertificateIsShutOut(t *testing.T) {
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{}
	pins := &memPins{pins: map[string]agenthub.Pin{}}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: inv, Heartbeats: inv, Revocations: inv, Certificates: pins,
		ConnectGrace: -1, PingInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, _ := ca.ServerTLSConfig(nil)
	srv := &http.Server{TLSConfig: tlsCfg, Handler: hub.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	f := &fixture{ca: ca, hub: hub, inv: inv, url: "https://" + ln.Addr().String()}

	old, oldFP, _ := pinnedClient(t, ca, "host_a")
	pins.set("host_a", agenthub.Pin{Fingerprint: oldFP, IssuedAt: time.Now()})
	if got := post(t, old, f.url+"/v1/agent/heartbeat", `{"healthy":true}`); got != http.StatusNoContent {
		t.Fatalf("heartbeat with the pinned certificate: %d", got)
	}
	other, _, _ := pinnedClient(t, ca, "host_a")
	if got := post(t, other, f.url+"/v1/agent/heartbeat", `{"healthy":true}`); got != http.StatusUnauthorized {
		t.Errorf("heartbeat with a valid certificate of the host that is not pinned: %d, want 401", got)
	}
	s, closeS := f.connect(t, old, "host_a")
	defer closeS()

	// The host renews: its pin moves to a new certificate.
	_, newFP, newPEM := pinnedClient(t, ca, "host_a")
	pins.set("host_a", agenthub.Pin{Fingerprint: newFP, Previous: oldFP, PEM: newPEM, IssuedAt: time.Now()})
	if _, err := hub.Dispatch(t.Context(), "host_a", wire.Step{StepID: "stp_1", Argv: []string{"true"}, TimeoutSeconds: 1}); !errors.Is(err, agenthub.ErrUnreachable) {
		t.Errorf("Dispatch over the replaced certificate's stream = %v, want ErrUnreachable", err)
	}
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case m, ok := <-s:
			if ok && m.Type == "step" {
				t.Fatalf("the replaced certificate's stream got a step: %+v", m)
			}
			open = ok
		case <-deadline:
			t.Fatal("the replaced certificate's stream is still open 5 s later")
		}
	}
	if got := post(t, old, f.url+"/v1/agent/heartbeat", `{"healthy":true}`); got != http.StatusUnauthorized {
		t.Errorf("heartbeat with the replaced certificate: %d, want 401", got)
	}
	_, csr, _ := pki.NewAgentKey(nil, "host_a")
	body, _ := json.Marshal(wire.RenewRequest{CSR: string(csr)})
	if got := post(t, old, f.url+"/v1/agent/renew", string(body)); got != http.StatusUnauthorized {
		t.Errorf("renewal from the replaced certificate for another key: %d, want 401", got)
	}
}
