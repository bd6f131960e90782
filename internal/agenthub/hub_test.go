package agenthub_test

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/usererr"
)

type testSealer struct{}

func (testSealer) aead() cipher.AEAD {
	b, _ := aes.NewCipher(make([]byte, 32))
	a, _ := cipher.NewGCM(b)
	return a
}
func (s testSealer) Seal(p, aad []byte) ([]byte, error) {
	return s.aead().Seal(nil, make([]byte, 12), p, aad), nil
}
func (s testSealer) Open(c, aad []byte) ([]byte, error) {
	return s.aead().Open(nil, make([]byte, 12), c, aad)
}

type fakeInventory struct {
	mu      sync.Mutex
	calls   int
	keys    []string // keySHA256 of each call
	revoked map[string]bool
	lookErr error // HostRevoked fails with it when set
}

func (f *fakeInventory) HostRevoked(_ context.Context, hostID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookErr != nil {
		return true, f.lookErr
	}
	return f.revoked[hostID], nil
}

func (f *fakeInventory) revoke(hostID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.revoked == nil {
		f.revoked = map[string]bool{}
	}
	f.revoked[hostID] = true
}

func (f *fakeInventory) EnrollHost(_ context.Context, token, hostname, keySHA256 string) (string, []string, map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.keys = append(f.keys, keySHA256)
	if token != "ilk_join_ok" {
		return "", nil, nil, usererr.New(usererr.Unauthenticated, "bad_join_token", "The join token is unknown, expired or already used.")
	}
	return "host_new", []string{"index"}, nil, nil
}

func (f *fakeInventory) RecordHeartbeat(context.Context, string, bool) error { return nil }

type fixture struct {
	ca  *pki.CA
	hub *agenthub.Hub
	inv *fakeInventory
	url string
}

func newFixture(t *testing.T, now func() time.Time) *fixture {
	return newFixturePing(t, now, time.Hour)
}

func newFixturePing(t *testing.T, now func() time.Time, ping time.Duration) *fixture {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: inv, Heartbeats: inv, Revocations: inv, Margin: 300 * time.Millisecond, ConnectGrace: 500 * time.Millisecond, PingInterval: ping, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := ca.ServerTLSConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: tlsCfg, Handler: hub.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return &fixture{ca: ca, hub: hub, inv: inv, url: "https://" + ln.Addr().String()}
}

// client returns an HTTP client holding a certificate for hostID.
func (f *fixture) client(t *testing.T, hostID string) *http.Client {
	t.Helper()
	return f.clientFor(t, hostID, time.Hour)
}

// clientFor is client with a certificate valid for ttl.
func (f *fixture) clientFor(t *testing.T, hostID string, ttl time.Duration) *http.Client {
	t.Helper()
	key, csr, err := pki.NewAgentKey(nil, hostID)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := f.ca.SignAgentCSR(csr, hostID, ttl)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pki.ParseCertificatePEM(certPEM)
	cfg, _ := pki.PinnedTLSConfig(f.ca.Fingerprint())
	cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// connect opens a stream and returns its lines and a function closing it.
func (f *fixture) connect(t *testing.T, c *http.Client, hostID string) (<-chan wire.AgentMessage, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/v1/agent/connect", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("connect: status %d", resp.StatusCode)
	}
	out := make(chan wire.AgentMessage, 8)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var m wire.AgentMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				out <- m
			}
		}
	}()
	if m := <-out; m.Type != "ping" {
		t.Fatalf("first line = %+v, want a ping", m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !f.hub.Connected(hostID) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return out, cancel
}

func post(t *testing.T, c *http.Client, url, body string) int {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type dispatched struct {
	res wire.StepResult
	err error
}

func (f *fixture) dispatch(hostID string, step wire.Step) <-chan dispatched {
	ch := make(chan dispatched, 1)
	go func() {
		res, err := f.hub.Dispatch(context.Background(), hostID, step)
		ch <- dispatched{res, err}
	}()
	return ch
}

func TestResultsOnlyFromTheHostTheStepWentTo(t *testing.T) {
	f := newFixture(t, nil)
	a, b := f.client(t, "host_a"), f.client(t, "host_b")
	streamA, _ := f.connect(t, a, "host_a")
	f.connect(t, b, "host_b")

	done := f.dispatch("host_a", wire.Step{StepID: "stp_1", Argv: []string{"true"}, TimeoutSeconds: 5})
	if m := <-streamA; m.Type != "step" || m.Step.StepID != "stp_1" {
		t.Fatalf("host_a got %+v, want step stp_1", m)
	}
	if got := post(t, b, f.url+"/v1/agent/results", `{"step_id":"stp_1","exit_code":0,"output":"forged"}`); got != http.StatusConflict {
		t.Errorf("host_b reporting host_a's step: status %d, want 409", got)
	}
	if got := post(t, a, f.url+"/v1/agent/results", `{"step_id":"stp_1","exit_code":0,"output":"real"}`); got != http.StatusNoContent {
		t.Errorf("host_a reporting its step: status %d, want 204", got)
	}
	d := <-done
	if d.err != nil || d.res.Output != "real" {
		t.Errorf("Dispatch = %+v, %v; want host_a's real result", d.res, d.err)
	}
}

func TestStreamEnds(t *testing.T) {
	f := newFixture(t, nil)
	a := f.client(t, "host_a")

	t.Run("a new stream replaces the old one", func(t *testing.T) {
		old, _ := f.connect(t, a, "host_a")
		cur, closeCur := f.connect(t, a, "host_a")
		defer closeCur()
		select {
		case _, open := <-old:
			if open {
				t.Fatal("old stream got a message instead of ending")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("old stream still open after a new one connected")
		}
		done := f.dispatch("host_a", wire.Step{StepID: "stp_r", Argv: []string{"true"}, TimeoutSeconds: 5})
		if m := <-cur; m.Step == nil || m.Step.StepID != "stp_r" {
			t.Fatalf("new stream got %+v, want the step", m)
		}
		post(t, a, f.url+"/v1/agent/results", `{"step_id":"stp_r","exit_code":0,"output":""}`)
		if d := <-done; d.err != nil {
			t.Errorf("Dispatch over the new stream: %v", d.err)
		}
	})

	t.Run("stream dies while the step runs", func(t *testing.T) {
		s, closeS := f.connect(t, a, "host_a")
		done := f.dispatch("host_a", wire.Step{StepID: "stp_d", Argv: []string{"true"}, TimeoutSeconds: 30})
		<-s
		closeS()
		select {
		case d := <-done:
			if !errors.Is(d.err, agenthub.ErrUnreachable) {
				t.Errorf("Dispatch err = %v, want ErrUnreachable", d.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Dispatch kept waiting after the stream died")
		}
	})

	t.Run("no result within the step's timeout and margin", func(t *testing.T) {
		s, closeS := f.connect(t, a, "host_a")
		defer closeS()
		done := f.dispatch("host_a", wire.Step{StepID: "stp_t", Argv: []string{"true"}, TimeoutSeconds: 1})
		<-s
		select {
		case d := <-done:
			if !errors.Is(d.err, context.DeadlineExceeded) {
				t.Errorf("Dispatch err = %v, want DeadlineExceeded", d.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Dispatch ignored the timeout")
		}
	})
}

func TestDispatchWaitsBrieflyForAHostToConnect(t *testing.T) {
	f := newFixture(t, nil)
	a := f.client(t, "host_a")

	start := time.Now()
	_, err := f.hub.Dispatch(t.Context(), "host_never", wire.Step{StepID: "stp_n", Argv: []string{"true"}, TimeoutSeconds: 5})
	if !errors.Is(err, agenthub.ErrUnreachable) {
		t.Errorf("Dispatch to a host that never connects: err = %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %s, want about the 500 ms grace", d)
	}

	// A host that connects within the grace gets the step.
	done := f.dispatch("host_a", wire.Step{StepID: "stp_late", Argv: []string{"true"}, TimeoutSeconds: 5})
	time.Sleep(100 * time.Millisecond)
	s, closeS := f.connect(t, a, "host_a")
	defer closeS()
	if m := <-s; m.Step == nil || m.Step.StepID != "stp_late" {
		t.Fatalf("late stream got %+v, want the step", m)
	}
	post(t, a, f.url+"/v1/agent/results", `{"step_id":"stp_late","exit_code":0,"output":""}`)
	if d := <-done; d.err != nil {
		t.Errorf("Dispatch to a host that connected within the grace: %v", d.err)
	}
}

func TestEnroll(t *testing.T) {
	f := newFixture(t, nil)
	key, csr, _ := pki.NewAgentKey(nil, "web-1")
	csrJSON, _ := json.Marshal(string(csr))
	cfg, _ := pki.PinnedTLSConfig(f.ca.Fingerprint())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	for _, tt := range []struct {
		name      string
		body      string
		status    int
		code      string
		wantCalls int // Enroller calls: bad input must not spend a token
	}{
		{name: "bad CSR", body: `{"token":"ilk_join_ok","hostname":"web-1","csr":"nope"}`, status: 400, code: "bad_csr"},
		{name: "unknown field", body: `{"token":"ilk_join_ok","hostname":"web-1","csr":` + string(csrJSON) + `,"host_id":"host_x"}`, status: 400, code: "bad_json"},
		{name: "no token", body: `{"hostname":"web-1","csr":` + string(csrJSON) + `}`, status: 400, code: "missing_token"},
		{name: "bad token", body: `{"token":"ilk_join_no","hostname":"web-1","csr":` + string(csrJSON) + `}`, status: 401, code: "bad_join_token", wantCalls: 1},
		{name: "ok", body: `{"token":"ilk_join_ok","hostname":"web-1","csr":` + string(csrJSON) + `}`, status: 200, wantCalls: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f.inv.calls = 0
			resp, err := c.Post(f.url+"/v1/agent/enroll", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if f.inv.calls != tt.wantCalls {
				t.Errorf("Enroller called %d times, want %d", f.inv.calls, tt.wantCalls)
			}
			if tt.wantCalls > 0 {
				// The enroller learns which key enrolls (SHA-256 of its
				// SubjectPublicKeyInfo), so the same key can ask again.
				spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
				sum := sha256.Sum256(spki)
				if got := f.inv.keys[len(f.inv.keys)-1]; got != hex.EncodeToString(sum[:]) {
					t.Errorf("key passed to the enroller = %q, want the CSR key's SPKI SHA-256", got)
				}
			}
			if tt.status != 200 {
				var p wire.Problem
				_ = json.NewDecoder(resp.Body).Decode(&p)
				if p.Code != tt.code || resp.Header.Get("Content-Type") != "application/problem+json" {
					t.Errorf("problem code %q (%s), want %q as application/problem+json", p.Code, resp.Header.Get("Content-Type"), tt.code)
				}
				return
			}
			var er wire.EnrollResponse
			if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
				t.Fatal(err)
			}
			leaf, err := pki.ParseCertificatePEM([]byte(er.Certificate))
			if err != nil {
				t.Fatal(err)
			}
			id, err := f.ca.VerifyAgent(leaf, time.Now())
			if diff := cmp.Diff("host_new", id); diff != "" || err != nil {
				t.Errorf("issued certificate names (-want +got):\n%s (err %v)", diff, err)
			}
		})
	}
}

func TestHostIDFromRequest(t *testing.T) {
	now := time.Now()
	clock := now
	f := newFixture(t, func() time.Time { return clock })
	other, _ := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	_, csr, _ := pki.NewAgentKey(nil, "web-1")
	mine, _ := f.ca.SignAgentCSR(csr, "host_1", time.Hour)
	foreign, _ := other.SignAgentCSR(csr, "host_1", time.Hour)
	server, _ := f.ca.ServerCertificate(nil)
	parse := func(p []byte) *x509.Certificate { c, _ := pki.ParseCertificatePEM(p); return c }
	for _, tt := range []struct {
		name  string
		cert  *x509.Certificate
		at    time.Time
		want  string
		found bool
	}{
		{name: "valid", cert: parse(mine), at: now, want: "host_1", found: true},
		{name: "expired", cert: parse(mine), at: now.Add(2 * time.Hour)},
		{name: "other CA", cert: parse(foreign), at: now},
		{name: "server certificate", cert: server.Leaf, at: now},
		{name: "none", at: now},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock = tt.at
			r := httptest.NewRequest("GET", "/v1/agent/connect", nil)
			r.TLS = &tls.ConnectionState{}
			if tt.cert != nil {
				r.TLS.PeerCertificates = []*x509.Certificate{tt.cert}
			}
			got, ok := f.hub.HostIDFromRequest(r)
			if got != tt.want || ok != tt.found {
				t.Errorf("HostIDFromRequest = %q, %v; want %q, %v", got, ok, tt.want, tt.found)
			}
		})
	}
}

// TestHaltStopsAStepWaitingForItsHost: a step still waiting for its host
// to (re)connect is not sent once its context ends (the kill switch), and
// a step already handed over keeps waiting for its result through it.
func TestHaltStopsAStepWaitingForItsHost(t *testing.T) {
	f := newFixture(t, nil)
	a := f.client(t, "host_a")
	ctx, halt := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := f.hub.Dispatch(ctx, "host_a", wire.Step{StepID: "stp_halted", Argv: []string{"true"}, TimeoutSeconds: 5})
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	halt()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Dispatch after a halt = %v, want context.Canceled (not sent)", err)
	}
	s, closeS := f.connect(t, a, "host_a")
	defer closeS()
	select {
	case m := <-s:
		if m.Step != nil {
			t.Fatalf("the agent got step %s after the halt", m.Step.StepID)
		}
	case <-time.After(700 * time.Millisecond): // past the connect grace
	}

	// Handed over, then halted: the result still comes back.
	ctx2, halt2 := context.WithCancel(t.Context())
	type res struct {
		r   wire.StepResult
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := f.hub.Dispatch(ctx2, "host_a", wire.Step{StepID: "stp_inflight", Argv: []string{"true"}, TimeoutSeconds: 5})
		done <- res{r, err}
	}()
	if m := <-s; m.Step == nil || m.Step.StepID != "stp_inflight" {
		t.Fatalf("stream got %+v, want stp_inflight", m)
	}
	halt2()
	post(t, a, f.url+"/v1/agent/results", `{"step_id":"stp_inflight","exit_code":0,"output":"done"}`)
	if d := <-done; d.err != nil || d.r.Output != "done" {
		t.Errorf("in-flight step after a halt: %+v, %v; want its result", d.r, d.err)
	}
}

// TestStreamEndsWhenItsCertificateExpires: the certificate is checked at
// connect; an open stream must not outlive it and keep receiving steps.
func TestStreamEndsWhenItsCertificateExpires(t *testing.T) {
	f := newFixture(t, nil)
	a := f.clientFor(t, "host_a", 2*time.Second)
	s, closeS := f.connect(t, a, "host_a")
	defer closeS()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, open := <-s:
			if !open {
				return // the server ended the stream
			}
		case <-deadline:
			t.Fatal("the stream is still open 10 s after a 2 s certificate expired")
		}
	}
}

// TestRevokedHostIsShutOut: once a host is revoked, its still-valid
// certificate is refused on every route, nothing is dispatched to it, and
// its open stream ends at the next ping.
func TestRevokedHostIsShutOut(t *testing.T) {
	f := newFixturePing(t, nil, 50*time.Millisecond)
	a := f.client(t, "host_a")
	s, closeS := f.connect(t, a, "host_a")
	defer closeS()
	f.inv.revoke("host_a")
	deadline := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-s:
		case <-deadline:
			t.Fatal("the revoked host's stream is still open 5 s later")
		}
	}
	if got := post(t, a, f.url+"/v1/agent/heartbeat", `{"healthy":true}`); got != http.StatusUnauthorized {
		t.Errorf("heartbeat from a revoked host: status %d, want 401", got)
	}
	if got := post(t, a, f.url+"/v1/agent/renew", `{"csr":"x"}`); got != http.StatusUnauthorized {
		t.Errorf("renewal by a revoked host: status %d, want 401", got)
	}
	resp, err := a.Get(f.url + "/v1/agent/connect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("reconnect of a revoked host: status %d, want 401", resp.StatusCode)
	}
	if _, err := f.hub.Dispatch(t.Context(), "host_a", wire.Step{StepID: "stp_r", Argv: []string{"true"}}); !errors.Is(err, agenthub.ErrUnreachable) {
		t.Errorf("Dispatch to a revoked host = %v, want ErrUnreachable", err)
	}
}

// TestRevocationLookupFailures: a failed revocation lookup refuses new
// agent requests (fail closed) but does not end a live stream, whose
// in-flight steps would otherwise fail.
func TestRevocationLookupFailures(t *testing.T) {
	f := newFixturePing(t, nil, 20*time.Millisecond)
	a := f.client(t, "host_a")
	s, closeS := f.connect(t, a, "host_a")
	defer closeS()
	f.inv.mu.Lock()
	f.inv.lookErr = errors.New("database is down")
	f.inv.mu.Unlock()
	if got := post(t, a, f.url+"/v1/agent/heartbeat", `{"healthy":true}`); got != http.StatusUnauthorized {
		t.Errorf("heartbeat while revocation cannot be checked: status %d, want 401", got)
	}
	quiet := time.After(300 * time.Millisecond) // 15 pings
	for done := false; !done; {
		select {
		case _, open := <-s:
			if !open {
				t.Fatal("the stream ended because a revocation lookup failed")
			}
		case <-quiet:
			done = true
		}
	}
}
