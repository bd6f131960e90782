package agent_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/agent"
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

// fakeInventory is the Enroller and HeartbeatRecorder: one join token
// allowing a number of enrollments.
type fakeInventory struct {
	mu         sync.Mutex
	token      string
	uses       int
	hosts      []string
	byKey      map[string]string // enrolled key → host
	heartbeats map[string]int
	unhealthy  map[string]int
}

// EnrollHost spends one use of the token per key, like ops.Manager: the
// key that spent a use may enroll again and gets the same host.
func (f *fakeInventory) EnrollHost(_ context.Context, token, hostname, keySHA256 string) (string, []string, map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.byKey[keySHA256]; ok && token == f.token && keySHA256 != "" {
		return id, []string{"billing", "index"}, map[string]string{"zone": "a"}, nil
	}
	if token != f.token || f.uses == 0 {
		return "", nil, nil, usererr.New(usererr.Unauthenticated, "bad_join_token", "The join token is unknown, expired or already used.")
	}
	f.uses--
	id := fmt.Sprintf("host_%d", len(f.hosts)+1)
	f.hosts = append(f.hosts, hostname)
	if f.byKey == nil {
		f.byKey = map[string]string{}
	}
	f.byKey[keySHA256] = id
	return id, []string{"billing", "index"}, map[string]string{"zone": "a"}, nil
}

func (f *fakeInventory) HostRevoked(context.Context, string) (bool, error) { return false, nil }

func (f *fakeInventory) RecordHeartbeat(_ context.Context, hostID string, healthy bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if healthy {
		f.heartbeats[hostID]++
	} else {
		f.unhealthy[hostID]++
	}
	return nil
}

func (f *fakeInventory) beats(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.heartbeats[host]
}

// testServer serves the hub over real HTTPS (TLS 1.3, h2, optional client
// certificates), recording which connection each agent request came on.
type testServer struct {
	url     string
	ca      *pki.CA
	hub     *agenthub.Hub
	inv     *fakeInventory
	pins    *fakePins
	mu      sync.Mutex
	conns   map[string]map[string]bool // host → remote addrs
	proto   map[string]bool
	renew   int
	serials map[string][]string // host → client certificate serials, in first-seen order
	streams map[string]int      // host → GET /v1/agent/connect requests
	// dropEnroll answers that many enrollments with 502 after the hub has
	// handled them, signalling droppedEnroll each time.
	dropEnroll    int
	droppedEnroll chan struct{}
}

func startServer(t *testing.T, uses int) *testServer {
	return startServerTTL(t, uses, 0)
}

func startServerTTL(t *testing.T, uses int, certTTL time.Duration) *testServer {
	return startServerRenewing(t, uses, certTTL, 0)
}

// fakePins is the hub's Certificates, like ops.Manager's pins: one
// certificate per host, renewals from it only, at most one per interval.
type fakePins struct {
	mu       sync.Mutex
	pins     map[string]agenthub.Pin
	renewals int
	tooSoon  int
}

func (f *fakePins) HostPin(_ context.Context, hostID string) (agenthub.Pin, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pins[hostID]
	return p, ok, nil
}

func (f *fakePins) PinEnrolled(_ context.Context, hostID, fp, certPEM string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pins[hostID] = agenthub.Pin{Fingerprint: fp, PEM: certPEM, IssuedAt: time.Now()}
	return nil
}

func (f *fakePins) Renew(_ context.Context, hostID, presented string, minInterval time.Duration, issue func() (string, string, time.Time, error)) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.pins[hostID]
	if cur.Fingerprint != presented {
		return "", usererr.New(usererr.Unauthenticated, "certificate_replaced", "This certificate was replaced.")
	}
	if time.Since(cur.IssuedAt) < minInterval {
		f.tooSoon++
		return "", usererr.New(usererr.RateLimited, "renew_too_soon", "Renewed too soon.")
	}
	fp, certPEM, _, err := issue()
	if err != nil {
		return "", err
	}
	f.pins[hostID] = agenthub.Pin{Fingerprint: fp, Previous: presented, PEM: certPEM, IssuedAt: time.Now()}
	f.renewals++
	return certPEM, nil
}

func (f *fakePins) counts() (renewals, tooSoon int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.renewals, f.tooSoon
}

// tweakHub, when set, changes the hub's Config in startServerRenewing
// (the tests of this package do not run in parallel).
var tweakHub func(*agenthub.Config)

// startServerRenewing is startServerTTL with certificates pinned and
// renewals limited to one per minRenew (0: the hub's default).
func startServerRenewing(t *testing.T, uses int, certTTL, minRenew time.Duration) *testServer {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{token: "ilk_join_test", uses: uses, heartbeats: map[string]int{}, unhealthy: map[string]int{}}
	pins := &fakePins{pins: map[string]agenthub.Pin{}}
	hubCfg := agenthub.Config{CA: ca, Enroller: inv, Heartbeats: inv, Revocations: inv, Certificates: pins, CertTTL: certTTL,
		MinRenewInterval: minRenew, ConnectGrace: 300 * time.Millisecond, PingInterval: 200 * time.Millisecond, Margin: 2 * time.Second}
	if tweakHub != nil {
		tweakHub(&hubCfg)
	}
	hub, err := agenthub.New(hubCfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{ca: ca, hub: hub, inv: inv, pins: pins, conns: map[string]map[string]bool{}, proto: map[string]bool{}, serials: map[string][]string{},
		streams: map[string]int{}, droppedEnroll: make(chan struct{}, 10)}
	h := hub.Handler()
	tlsCfg, err := ca.ServerTLSConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: tlsCfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		drop := r.URL.Path == "/v1/agent/enroll" && ts.dropEnroll > 0
		if drop {
			ts.dropEnroll--
		}
		ts.mu.Unlock()
		if drop {
			// The server enrolls the host, then the answer is lost.
			h.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, "upstream connection reset", http.StatusBadGateway)
			ts.droppedEnroll <- struct{}{}
			return
		}
		if id, ok := hub.HostIDFromRequest(r); ok {
			ts.mu.Lock()
			if ts.conns[id] == nil {
				ts.conns[id] = map[string]bool{}
			}
			ts.conns[id][r.RemoteAddr] = true
			ts.proto[r.Proto] = true
			serial := r.TLS.PeerCertificates[0].SerialNumber.String()
			if !slices.Contains(ts.serials[id], serial) {
				ts.serials[id] = append(ts.serials[id], serial)
			}
			if r.URL.Path == "/v1/agent/renew" {
				ts.renew++
			}
			if r.URL.Path == "/v1/agent/connect" {
				ts.streams[id]++
			}
			ts.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	ts.url = "https://" + ln.Addr().String()
	return ts
}

func (ts *testServer) startAgents(t *testing.T, dir string, count int, token string) (stop func() error) {
	t.Helper()
	return ts.startAgentsWith(t, agent.Config{Token: token, DataDir: dir, Count: count})
}

func (ts *testServer) startAgentsWith(t *testing.T, cfg agent.Config) (stop func() error) {
	t.Helper()
	cfg.Server, cfg.CAFingerprint, cfg.Hostname = ts.url, ts.ca.Fingerprint(), "web"
	cfg.HeartbeatInterval, cfg.MaxBackoff = 100*time.Millisecond, 500*time.Millisecond
	if os.Getenv("AGENT_DEBUG") != "" {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, cfg)
	}()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("agents did not stop")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentsEndToEnd(t *testing.T) {
	t.Setenv("INTERLOCK_JOIN_TOKEN", "ilk_join_must_not_leak")
	ts := startServer(t, 3)
	dir := t.TempDir()
	stop := ts.startAgents(t, dir, 3, "ilk_join_test")
	hosts := []string{"host_1", "host_2", "host_3"}
	for _, h := range hosts {
		waitFor(t, h+" to connect and heartbeat", func() bool { return ts.hub.Connected(h) && ts.inv.beats(h) >= 2 })
	}
	ts.inv.mu.Lock()
	enrolled := append([]string(nil), ts.inv.hosts...)
	ts.inv.mu.Unlock()
	if diff := cmp.Diff([]string{"web-01", "web-02", "web-03"}, slices.Sorted(slices.Values(enrolled))); diff != "" {
		t.Errorf("enrolled hostnames (-want +got):\n%s", diff)
	}
	for i := 1; i <= 3; i++ {
		st, err := os.Stat(filepath.Join(dir, fmt.Sprintf("agent-%02d", i), "agent.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("agent-%02d key mode = %v, want 0600", i, st.Mode().Perm())
		}
	}

	marker := filepath.Join(t.TempDir(), "runs")
	once := wire.Step{StepID: "stp_once", OpID: "op1", Phase: "run", Argv: []string{"sh", "-c", "echo run >> " + marker + "; echo ran"}, TimeoutSeconds: 5}
	for _, tt := range []struct {
		name string
		host string
		step wire.Step
		want wire.StepResult
	}{
		{name: "echo", host: "host_1",
			step: wire.Step{StepID: "stp_echo", Argv: []string{"echo", "hi"}, TimeoutSeconds: 5},
			want: wire.StepResult{StepID: "stp_echo", Output: "hi\n"}},
		{name: "no shell unless asked", host: "host_1",
			step: wire.Step{StepID: "stp_noshell", Argv: []string{"echo", "$HOME;", "exit", "7"}, TimeoutSeconds: 5},
			want: wire.StepResult{StepID: "stp_noshell", Output: "$HOME; exit 7\n"}},
		{name: "shell", host: "host_2",
			step: wire.Step{StepID: "stp_shell", Argv: []string{"echo", "a;", "exit", "4"}, Shell: true, TimeoutSeconds: 5},
			want: wire.StepResult{StepID: "stp_shell", ExitCode: 4, Output: "a\n"}},
		{name: "exit 3", host: "host_2",
			step: wire.Step{StepID: "stp_exit3", Argv: []string{"sh", "-c", "exit 3"}, TimeoutSeconds: 5},
			want: wire.StepResult{StepID: "stp_exit3", ExitCode: 3}},
		{name: "timeout", host: "host_3",
			step: wire.Step{StepID: "stp_sleep", Argv: []string{"sleep", "5"}, TimeoutSeconds: 1},
			want: wire.StepResult{StepID: "stp_sleep", ExitCode: -1, TimedOut: true, Error: "killed after the step's timeout of 1s"}},
		{name: "capped and redacted", host: "host_3",
			step: wire.Step{StepID: "stp_cap", Argv: []string{"sh", "-c", "echo token=s3cr3t-VALUE; head -c 5000 /dev/zero | tr '\\0' x"},
				TimeoutSeconds: 5, MaxOutputBytes: 30, Redact: []string{"s3cr3t-VALUE"}},
			want: wire.StepResult{StepID: "stp_cap", Output: "token=[redacted]\nxxxxxxxxxxxxx", Truncated: true}},
		{name: "missing command", host: "host_1",
			step: wire.Step{StepID: "stp_missing", Argv: []string{"/nonexistent/s3cr3t"}, TimeoutSeconds: 5, Redact: []string{"s3cr3t"}},
			want: wire.StepResult{StepID: "stp_missing", ExitCode: -1, Error: "could not run the command: fork/exec /nonexistent/[redacted]: no such file or directory"}},
		{name: "environment: step variables, none of the agent's INTERLOCK_*", host: "host_2",
			step: wire.Step{StepID: "stp_env", Argv: []string{"sh", "-c", "echo ${INTERLOCK_JOIN_TOKEN:-none} $GREETING"}, Env: map[string]string{"GREETING": "hello"}, TimeoutSeconds: 5},
			want: wire.StepResult{StepID: "stp_env", Output: "none hello\n"}},
		{name: "first run of a step", host: "host_1", step: once,
			want: wire.StepResult{StepID: "stp_once", Output: "ran\n"}},
		{name: "same StepID again is not rerun", host: "host_1", step: once,
			want: wire.StepResult{StepID: "stp_once", Output: "ran\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got, err := ts.hub.Dispatch(t.Context(), tt.host, tt.step)
			if err != nil {
				t.Fatalf("Dispatch: %v", err)
			}
			if tt.step.TimeoutSeconds == 1 && time.Since(start) > 3*time.Second {
				t.Errorf("a 1 s timeout took %s", time.Since(start))
			}
			got.StartedAt, got.FinishedAt = time.Time{}, time.Time{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
	if runs, _ := os.ReadFile(marker); string(runs) != "run\n" {
		t.Errorf("step stp_once ran %d times, want once", bytes.Count(runs, []byte("run")))
	}

	t.Run("unconnected host is unreachable", func(t *testing.T) {
		_, err := ts.hub.Dispatch(t.Context(), "host_9", wire.Step{StepID: "stp_x", Argv: []string{"true"}, TimeoutSeconds: 1})
		if !errors.Is(err, agenthub.ErrUnreachable) {
			t.Errorf("Dispatch to an unconnected host: err = %v, want ErrUnreachable", err)
		}
	})

	t.Run("one HTTP/2 connection per agent", func(t *testing.T) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if ts.renew != 0 {
			t.Errorf("agents renewed %d times a certificate that has 90 days left", ts.renew)
		}
		for _, h := range hosts {
			if n := len(ts.conns[h]); n != 1 {
				t.Errorf("%s used %d connections, want 1", h, n)
			}
		}
		if diff := cmp.Diff(map[string]bool{"HTTP/2.0": true}, ts.proto); diff != "" {
			t.Errorf("protocols (-want +got):\n%s", diff)
		}
	})

	// After a restart (no token needed: the identity is on disk), the
	// ledger still refuses to run the step: it answers with the result it
	// recorded the first time.
	if err := stop(); err != nil {
		t.Fatalf("stop agents: %v", err)
	}
	waitFor(t, "host_1 to disconnect", func() bool { return !ts.hub.Connected("host_1") })
	ts.startAgents(t, dir, 3, "")
	waitFor(t, "host_1 to reconnect", func() bool { return ts.hub.Connected("host_1") })
	got, err := ts.hub.Dispatch(t.Context(), "host_1", once)
	if err != nil {
		t.Fatalf("Dispatch after restart: %v", err)
	}
	if got.Output != "ran\n" || got.ExitCode != 0 || got.Error != "" {
		t.Errorf("replayed step after restart: got %+v, want the first run's result from the ledger", got)
	}
	if runs, _ := os.ReadFile(marker); string(runs) != "run\n" {
		t.Errorf("after restart, step stp_once ran %d times, want once", bytes.Count(runs, []byte("run")))
	}
}

func TestHealthCommand(t *testing.T) {
	ts := startServer(t, 2)
	dir := t.TempDir()
	ts.startAgentsWith(t, agent.Config{Token: "ilk_join_test", DataDir: filepath.Join(dir, "sick"), HealthCommand: []string{"false"}})
	waitFor(t, "unhealthy heartbeats", func() bool { ts.inv.mu.Lock(); defer ts.inv.mu.Unlock(); return ts.inv.unhealthy["host_1"] >= 2 })
	if n := ts.inv.beats("host_1"); n != 0 {
		t.Errorf("a host whose health command fails sent %d healthy heartbeats", n)
	}
	ts.startAgentsWith(t, agent.Config{Token: "ilk_join_test", DataDir: filepath.Join(dir, "well"), HealthCommand: []string{"true"}})
	waitFor(t, "healthy heartbeats", func() bool { return ts.inv.beats("host_2") >= 2 })
}

// TestAgentRenewsItsCertificate: a renewal pins the new certificate and
// retires the old one at once; the agent tolerates the server's limit (it
// is refused first, then renews when Retry-After says), reconnects with the
// new certificate, keeps taking steps, and restarts from the renewed files.
func TestAgentRenewsItsCertificate(t *testing.T) {
	// One-minute certificates (backdated five minutes for clock skew) have
	// less than a third of their life left at once; a host may renew once
	// a second.
	ts := startServerRenewing(t, 1, time.Minute, time.Second)
	dir := t.TempDir()
	stop := ts.startAgents(t, dir, 1, "ilk_join_test")
	waitFor(t, "a renewal", func() bool { n, _ := ts.pins.counts(); return n > 0 })
	if _, tooSoon := ts.pins.counts(); tooSoon == 0 {
		t.Errorf("the agent's first renewal, right after enrollment, was not refused as too soon")
	}
	ts.mu.Lock()
	first := ts.serials["host_1"][0]
	ts.mu.Unlock()
	waitFor(t, "the renewed certificate on disk", func() bool {
		pemBytes, err := os.ReadFile(filepath.Join(dir, "agent.pem"))
		if err != nil {
			return false
		}
		c, err := pki.ParseCertificatePEM(pemBytes)
		return err == nil && c.SerialNumber.String() != first
	})
	dispatchSoon(t, ts, "host_1", "stp_after_renew")
	if n, _ := ts.pins.counts(); n != 1 {
		t.Errorf("%d renewals, want 1: a just-renewed certificate is not renewed again", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "host_1 to disconnect", func() bool { return !ts.hub.Connected("host_1") })
	// The agent restarts from the renewed files and still works.
	ts.startAgents(t, dir, 1, "")
	dispatchSoon(t, ts, "host_1", "stp_after_restart")
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if n := len(ts.serials["host_1"]); n < 2 {
		t.Errorf("the agent connected with %d distinct certificates, want the renewed one too", n)
	}
}

// dispatchSoon runs a step on host, retrying while its agent reconnects.
func dispatchSoon(t *testing.T, ts *testServer, host, step string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		got, err := ts.hub.Dispatch(t.Context(), host, wire.Step{StepID: fmt.Sprintf("%s_%d", step, i), Argv: []string{"true"}, TimeoutSeconds: 5})
		if err == nil && got.ExitCode == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dispatch to %s: %+v, %v", host, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEnrollmentSurvivesALostAnswer: the server enrolls the host but its
// answer is lost, once while the agent keeps running and once while the
// agent is stopped before it retries. Either way the agent enrolls as the
// host the token created, with its one-use token, and no second host
// appears.
func TestEnrollmentSurvivesALostAnswer(t *testing.T) {
	ts := startServer(t, 2)
	ts.dropEnroll = 1
	dir := t.TempDir()
	ts.startAgents(t, dir, 1, "ilk_join_test")
	waitFor(t, "host_1 to connect after a lost answer", func() bool { return ts.hub.Connected("host_1") })
	if _, err := os.Stat(filepath.Join(dir, "enroll-key.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the enrollment key file is still there after enrolling: %v", err)
	}

	<-ts.droppedEnroll // the first agent's
	ts.mu.Lock()
	ts.dropEnroll = 1000 // every answer, until the agent is stopped
	ts.mu.Unlock()
	dir2 := t.TempDir()
	stop := ts.startAgents(t, dir2, 1, "ilk_join_test")
	<-ts.droppedEnroll // host_2 exists, the agent did not hear of it
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ts.mu.Lock()
	ts.dropEnroll = 0
	ts.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir2, "enroll-key.pem")); err != nil {
		t.Fatalf("the stopped agent left no enrollment key: %v", err)
	}
	ts.startAgents(t, dir2, 1, "ilk_join_test")
	waitFor(t, "host_2 to connect after a restart", func() bool { return ts.hub.Connected("host_2") })
	ts.inv.mu.Lock()
	defer ts.inv.mu.Unlock()
	if len(ts.inv.hosts) != 2 || ts.inv.uses != 0 {
		t.Errorf("hosts %v with %d uses left, want 2 hosts and the token spent", ts.inv.hosts, ts.inv.uses)
	}
}

func TestAgentRoutesNeedAClientCertificate(t *testing.T) {
	ts := startServer(t, 0)
	cfg, err := pki.PinnedTLSConfig(ts.ca.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 5 * time.Second}
	for _, tt := range []struct{ method, path, body string }{
		{"GET", "/v1/agent/connect", ""},
		{"POST", "/v1/agent/heartbeat", `{"protocol_version":1,"healthy":true}`},
		{"POST", "/v1/agent/results", `{"step_id":"stp_x","exit_code":0,"output":""}`},
		{"POST", "/v1/agent/renew", `{"csr":""}`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, ts.url+tt.path, strings.NewReader(tt.body))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s without a client certificate: status %d, want 401", tt.method, tt.path, resp.StatusCode)
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		err := agent.Run(t.Context(), agent.Config{Server: ts.url, CAFingerprint: ts.ca.Fingerprint(), Token: "ilk_join_wrong", DataDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "bad_join_token") {
			t.Errorf("Run with a bad token: err = %v, want the server's bad_join_token refusal", err)
		}
	})
	t.Run("wrong pin", func(t *testing.T) {
		other, _ := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		dir := t.TempDir()
		err := agent.Run(ctx, agent.Config{Server: ts.url, CAFingerprint: other.Fingerprint(), Token: "ilk_join_test", DataDir: dir})
		if !errors.Is(err, pki.ErrPinMismatch) {
			t.Errorf("Run against a server with another CA: err = %v, want ErrPinMismatch at once", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "identity.json")); err == nil {
			t.Error("the agent enrolled with a server whose CA does not match its pin")
		}
	})
}
