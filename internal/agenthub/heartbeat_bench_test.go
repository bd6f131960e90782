package agenthub_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/store"
)

// BenchmarkHeartbeatPath measures what one heartbeat costs the server
// past TLS and HTTP/2: the identity check (certificate chain, revocation,
// pin), decoding, and recording it with the real ops.Manager on SQLite —
// for a fleet of INTERLOCK_BENCH_AGENTS hosts (default 1000) whose
// heartbeats change nothing, as between operations. Each heartbeat comes
// from the next host in turn; the batched write of their last-seen times
// is included (one flush per round of the fleet). That heartbeats which
// change nothing write nothing is tested in internal/ops
// (TestHeartbeatsThatChangeNothingAreNotWritten); interlock bench fleet
// measures the whole server, TLS and HTTP/2 included.
func BenchmarkHeartbeatPath(b *testing.B) {
	n := 1000
	if s := os.Getenv("INTERLOCK_BENCH_AGENTS"); s != "" {
		fmt.Sscan(s, &n)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	m, err := ops.New(ops.Config{Store: db.OpsStore()})
	if err != nil {
		b.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA(b.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	pins := opsPins{m}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: m, Heartbeats: m, Revocations: m, Certificates: pins,
		IdentityGeneration: m.IdentityGeneration})
	if err != nil {
		b.Fatal(err)
	}
	admin := wire.Principal{Kind: "person", ID: "p_bench", Name: "bench"}
	leaves := make([]*x509.Certificate, n)
	for i := range leaves {
		tok, err := m.CreateJoinToken(ctx, admin, []string{"bench"}, nil, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		id, _, _, err := m.EnrollHost(ctx, tok.Reveal(), fmt.Sprintf("bench-%d", i), "")
		if err != nil {
			b.Fatal(err)
		}
		_, csr, err := pki.NewAgentKey(nil, id)
		if err != nil {
			b.Fatal(err)
		}
		certPEM, err := ca.SignAgentCSR(csr, id, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if leaves[i], err = pki.ParseCertificatePEM(certPEM); err != nil {
			b.Fatal(err)
		}
		if err := m.PinEnrolledCertificate(ctx, ops.HostCertificate{HostID: id, Fingerprint: sha256Hex(leaves[i].Raw), PEM: string(certPEM), NotAfter: leaves[i].NotAfter}); err != nil {
			b.Fatal(err)
		}
	}
	handler := hub.HeartbeatHandler()
	body := []byte(`{"protocol_version":2,"healthy":true}`)
	beat := func(i int) {
		r := httptest.NewRequest(http.MethodPost, "/v1/agent/heartbeat", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaves[i%n]}}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusNoContent {
			b.Fatalf("heartbeat of host %d: %d %s", i%n, w.Code, w.Body)
		}
	}
	for i := range n { // every host's first heartbeat since start is written
		beat(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		beat(i)
		if i%n == n-1 {
			if err := m.FlushHeartbeats(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// opsPins is internal/app's adapter of ops.Manager's certificate pins.
type opsPins struct{ m *ops.Manager }

func (p opsPins) HostPin(ctx context.Context, hostID string) (agenthub.Pin, bool, error) {
	hc, ok, err := p.m.HostCertificate(ctx, hostID)
	if err != nil || !ok {
		return agenthub.Pin{}, false, err
	}
	return agenthub.Pin{Fingerprint: hc.Fingerprint, Previous: hc.Previous, PEM: hc.PEM, IssuedAt: hc.IssuedAt}, true, nil
}

func (p opsPins) PinEnrolled(ctx context.Context, hostID, fingerprint, certPEM string, notAfter time.Time) error {
	return p.m.PinEnrolledCertificate(ctx, ops.HostCertificate{HostID: hostID, Fingerprint: fingerprint, PEM: certPEM, NotAfter: notAfter})
}

func (p opsPins) Renew(context.Context, string, string, time.Duration, func() (string, string, time.Time, error)) (string, error) {
	return "", fmt.Errorf("not in this benchmark")
}
