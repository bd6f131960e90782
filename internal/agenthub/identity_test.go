package agenthub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/pki"
)

// countingRevocations counts the store reads a revocation check makes.
type countingRevocations struct {
	*fakeInventory
	mu    sync.Mutex
	reads int
}

func (c *countingRevocations) HostRevoked(ctx context.Context, hostID string) (bool, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.fakeInventory.HostRevoked(ctx, hostID)
}

func (c *countingRevocations) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// generation is a fake of ops.Manager.IdentityGeneration.
type generation struct {
	mu  sync.Mutex
	n   int64
	err error
}

func (g *generation) read(context.Context) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, g.err
}

func (g *generation) bump() { g.mu.Lock(); g.n++; g.mu.Unlock() }

type idFixture struct {
	hub  *agenthub.Hub
	inv  *countingRevocations
	gen  *generation
	leaf *x509.Certificate
}

func newIDFixture(t *testing.T, ttl time.Duration) *idFixture {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &countingRevocations{fakeInventory: &fakeInventory{}}
	gen := &generation{}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: inv, Heartbeats: inv, Revocations: inv,
		IdentityGeneration: gen.read, IdentityTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	_, csr, err := pki.NewAgentKey(nil, "host_a")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignAgentCSR(csr, "host_a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &idFixture{hub: hub, inv: inv, gen: gen, leaf: leaf}
}

// beat sends one heartbeat as host_a and returns the status.
func (f *idFixture) beat() int {
	r := httptest.NewRequest(http.MethodPost, "/v1/agent/heartbeat", bytes.NewReader([]byte(`{"healthy":true}`)))
	r.Header.Set("Content-Type", "application/json")
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{f.leaf}}
	w := httptest.NewRecorder()
	f.hub.HeartbeatHandler().ServeHTTP(w, r)
	return w.Code
}

// TestIdentityCacheReadsTheStoreOncePerChange: heartbeats of a host read
// its revocation from the store once, not once each; a revocation made on
// another server (the generation moves) refuses the host once the
// generation is read again, and one made on this server (ForgetHost) at
// once.
func TestIdentityCacheReadsTheStoreOncePerChange(t *testing.T) {
	f := newIDFixture(t, 20*time.Millisecond)
	for i := range 50 {
		if code := f.beat(); code != http.StatusNoContent {
			t.Fatalf("heartbeat %d: %d", i, code)
		}
	}
	if n := f.inv.count(); n != 1 {
		t.Fatalf("50 heartbeats read the host's revocation %d times, want 1", n)
	}

	// Another server revokes: the store and the generation change.
	f.inv.revoke("host_a")
	f.gen.bump()
	time.Sleep(30 * time.Millisecond)
	if code := f.beat(); code != http.StatusUnauthorized {
		t.Fatalf("heartbeat of a host revoked elsewhere, after the generation was read again: %d, want 401", code)
	}
}

func TestForgetHostTakesARevocationAtOnce(t *testing.T) {
	f := newIDFixture(t, time.Hour) // the generation is never read again
	if code := f.beat(); code != http.StatusNoContent {
		t.Fatalf("heartbeat: %d", code)
	}
	f.inv.revoke("host_a")
	f.hub.ForgetHost("host_a")
	if code := f.beat(); code != http.StatusUnauthorized {
		t.Fatalf("heartbeat after a revocation on this server: %d, want 401", code)
	}
}

// TestIdentityCacheTrustsNothingWithoutTheGeneration: when the counter
// cannot be read, every request reads the store, so a revocation refuses
// at once.
func TestIdentityCacheTrustsNothingWithoutTheGeneration(t *testing.T) {
	f := newIDFixture(t, time.Nanosecond)
	if code := f.beat(); code != http.StatusNoContent {
		t.Fatalf("heartbeat: %d", code)
	}
	f.gen.mu.Lock()
	f.gen.err = errors.New("database down")
	f.gen.mu.Unlock()
	before := f.inv.count()
	f.beat()
	f.beat()
	if n := f.inv.count() - before; n < 2 {
		t.Fatalf("2 heartbeats without a generation read the store %d times, want each", n)
	}
	f.inv.revoke("host_a")
	if code := f.beat(); code != http.StatusUnauthorized {
		t.Fatalf("heartbeat of a revoked host while the generation is unreadable: %d, want 401", code)
	}
}

// blockingEnroller holds every enrollment until released.
type blockingEnroller struct {
	*fakeInventory
	started chan struct{}
	release chan struct{}
}

func (b *blockingEnroller) EnrollHost(ctx context.Context, token, hostname, key string) (string, []string, map[string]string, error) {
	b.started <- struct{}{}
	<-b.release
	return b.fakeInventory.EnrollHost(ctx, token, hostname, key)
}

// TestEnrollmentsWaitForASlot: only a few enrollments run at once; one
// that cannot start soon is answered 503 with Retry-After (the agent
// retries) rather than left to time out.
func TestEnrollmentsWaitForASlot(t *testing.T) {
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{}
	enr := &blockingEnroller{fakeInventory: inv, started: make(chan struct{}, 100), release: make(chan struct{})}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: enr, Heartbeats: inv, Revocations: inv, EnrollQueueWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, csr, err := pki.NewAgentKey(nil, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"token": "ilk_join_ok", "hostname": "web-1", "csr": string(csr)})
	enroll := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/v1/agent/enroll", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		hub.EnrollHandler().ServeHTTP(w, r)
		return w
	}
	codes := make(chan int, 40)
	for range 40 {
		go func() { codes <- enroll().Code }()
	}
	for range 8 { // 40 asked, at most 32 run: 8 are turned away
		if c := <-codes; c != http.StatusServiceUnavailable {
			t.Fatalf("an enrollment beyond the slots answered %d, want 503", c)
		}
	}
	if n := len(enr.started); n > 32 {
		t.Fatalf("%d enrollments ran at once", n)
	}
	close(enr.release)
	for range 32 {
		if c := <-codes; c != http.StatusOK {
			t.Fatalf("an admitted enrollment answered %d, want 200", c)
		}
	}
	if w := enroll(); w.Code != http.StatusOK || w.Header().Get("Retry-After") != "" {
		t.Fatalf("with free slots: %d", w.Code)
	}
}
