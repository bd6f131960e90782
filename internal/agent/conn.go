package agent

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/keepalive"
	"github.com/interlock-dev/interlock/internal/pki"
)

// agent is one enrolled agent with its one HTTP/2 connection.
type agent struct {
	cfg     Config
	id      identity
	log     *slog.Logger
	client  *http.Client
	ledger  *ledger
	wit     *witness        // the agent as a witness of the server's audit log
	servers *serverList     // where to connect; fails over along it
	root    context.Context // the agent's lifetime: steps and reports end with it
	cert    atomic.Pointer[tls.Certificate]

	// pending is the key of a renewal whose answer has not arrived yet:
	// a retry asks for the same key, so that if the server renewed and the
	// answer was lost, it hands the same certificate back.
	renewMu   sync.Mutex // held by renew; guards pending and renewedAt
	pending   *renewal
	renewedAt time.Time // the last renewal by this process

	probing atomic.Bool // a health probe is running (healthy)

	mu      sync.Mutex
	running map[string]bool
	results *resultCache
	wg      sync.WaitGroup // steps and reports in flight
}

func newAgent(cfg Config, id identity) (*agent, error) {
	tlsCfg, err := pki.PinnedTLSConfig(cfg.CAFingerprint)
	if err != nil {
		return nil, err
	}
	a := &agent{cfg: cfg, id: id, log: cfg.Log.With(slog.String("host", id.HostID)),
		servers: newServerList(append([]string{cfg.Server}, cfg.Servers...)),
		running: map[string]bool{}, results: newResultCache(256)}
	cert := id.cert
	a.cert.Store(&cert)
	tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return a.cert.Load(), nil }
	tr := &http.Transport{
		TLSClientConfig:   tlsCfg,
		ForceAttemptHTTP2: true,
		// One connection: the stream, heartbeats and results are HTTP/2
		// streams on it. HTTP/1 is off, so they can never need a second one.
		MaxConnsPerHost: 1,
		// The server sends a line at least every 30 s (StreamIdle ends a
		// stream that stays silent longer), so a PING is sent only when
		// the stream is not open; a vanished server is noticed by TCP
		// keepalives (internal/keepalive), which the kernel sends: an idle fleet of
		// in-process agents (bench fleet) does not wake for them.
		HTTP2:       &http.HTTP2Config{SendPingTimeout: time.Minute, PingTimeout: 15 * time.Second, WriteByteTimeout: 30 * time.Second},
		DialContext: keepalive.Dialer().DialContext,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	a.ledger, err = openLedger(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if a.wit, err = openWitness(context.Background(), Config{DataDir: cfg.DataDir, Log: a.log, Now: cfg.Now, Rand: cfg.Rand,
		CosignEvery: cfg.CosignEvery, AcceptLogFork: cfg.AcceptLogFork}, id.HostID); err != nil {
		return nil, err
	}
	a.client = &http.Client{Transport: tr}
	return a, nil
}

// run holds the connection until ctx ends, reconnecting with exponential
// backoff (1 s doubling up to MaxBackoff, with jitter; reset after a
// connection that lasted a minute).
func (a *agent) run(ctx context.Context) error {
	defer a.client.CloseIdleConnections()
	defer a.wg.Wait()
	a.root = ctx
	attempt := 0
	for {
		start := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errRenewed) {
			// The old connection's certificate is refused from now on:
			// drop the connection so the next one presents the new one.
			a.client.CloseIdleConnections()
			a.log.InfoContext(ctx, "reconnecting with the renewed certificate")
			continue
		}
		if time.Since(start) > time.Minute {
			attempt = 0
		}
		// Another server next, at once (jittered); back off only when
		// every server was tried since the last good connection.
		from := a.servers.current()
		to, roundDone := a.servers.next()
		wait := switchDelay()
		if roundDone {
			wait = backoff(attempt, a.cfg.MaxBackoff)
			attempt++
		}
		if to != from {
			a.log.InfoContext(ctx, "failing over to another server", slog.String("from", from), slog.String("to", to))
		}
		var pe *problemError
		if errors.As(err, &pe) && pe.Status == http.StatusUnauthorized {
			a.log.ErrorContext(ctx, "the server refuses this agent's certificate (expired, or the host was removed?); retrying — to enroll again, use a new join token and an empty --data directory",
				slog.String("error", err.Error()), slog.Duration("in", wait))
		} else {
			a.log.WarnContext(ctx, "connection to the server ended; reconnecting", slog.String("error", errString(err)), slog.Duration("in", wait))
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// session is one GET /v1/agent/connect: it reads step lines until the
// stream ends or stays silent for StreamIdle, heartbeating meanwhile.
func (a *agent) session(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.servers.current()+"/v1/agent/connect", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readProblem(resp)
	}
	a.log.InfoContext(ctx, "connected", slog.String("server", a.servers.current()), slog.String("proto", resp.Proto))
	a.servers.connected()
	go a.refreshServers(ctx)

	go a.heartbeats(ctx, cancel, a.wit.newSession())
	go a.renewals(ctx, cancel)
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.replayLedger(ctx) }()

	lines := make(chan []byte)
	go func() {
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		for {
			line, err := readLine(r, 4<<20)
			if err != nil {
				cancel(fmt.Errorf("stream: %w", err))
				return
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	silence := a.cfg.StreamIdle
	idle := time.NewTimer(silence)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-idle.C:
			return fmt.Errorf("the server sent nothing for %s", silence)
		case line := <-lines:
			var m wire.AgentMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return fmt.Errorf("stream: bad line: %w", err)
			}
			if m.Type == "ping" {
				silence = streamSilence(a.cfg.StreamIdle, m.NextSeconds)
			}
			idle.Reset(silence)
			if m.Type == "step" && m.Step != nil {
				step := *m.Step
				a.wg.Add(1)
				go func() {
					defer a.wg.Done()
					a.handleStep(a.root, step)
				}()
			}
		}
	}
}

// maxStreamSilence caps how long a server may ask the agent to wait for
// its next line (wire.AgentMessage NextSeconds).
const maxStreamSilence = 5 * time.Minute

// streamSilence is how long the stream may stay silent after a ping that
// announced the next within next seconds: half as long again, and never
// less than the configured StreamIdle (a server that says nothing of its
// interval pings every 15 s).
func streamSilence(configured time.Duration, next int) time.Duration {
	if next <= 0 {
		return configured
	}
	return min(max(configured, time.Duration(next)*time.Second*3/2), maxStreamSilence)
}

// readLine reads one '\n'-terminated line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, errors.New("line too long")
		}
		if err == nil {
			return line, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}

// heartbeats probes the host's health every HeartbeatInterval and sends a
// heartbeat: the first at once, then whenever the health changed or the
// witness has a cosignature or alarm to deliver, and otherwise once the
// server's asked-for interval (wire.HeartbeatResponse NextHeartbeatSeconds,
// with a tenth of jitter so a fleet spreads out) has passed — a server
// with a large fleet keeps its heartbeats within a budget this way and
// takes the held connection as the host's liveness meanwhile.
func (a *agent) heartbeats(ctx context.Context, cancel context.CancelCauseFunc, session uint64) {
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	var (
		sent        bool // a heartbeat was answered on this connection
		sentAt      time.Time
		sentHealthy bool
		wait        time.Duration // the server's interval, jittered; 0: every tick
	)
	for {
		hb := wire.Heartbeat{ProtocolVersion: wire.ProtocolVersion, Healthy: a.healthy(ctx)}
		a.wit.heartbeat(&hb)
		// A cosignature waits for the next heartbeat the server's budget
		// allows (it stays outgoing until delivered): sent at once, ten
		// thousand agents cosigning each new checkpoint would be 167
		// heartbeats a second on top of the budget. A changed health or
		// a log alarm goes at once.
		due := !sent || hb.Healthy != sentHealthy || hb.LogAlarm != nil ||
			time.Since(sentAt) >= wait-a.cfg.HeartbeatInterval/2
		if due {
			body, _ := json.Marshal(hb)
			hctx, hcancel := context.WithTimeout(ctx, a.cfg.HeartbeatInterval+10*time.Second)
			var resp wire.HeartbeatResponse
			err := postJSON(hctx, a.client, a.servers.current()+"/v1/agent/heartbeat", body, &resp)
			hcancel()
			if err == nil {
				a.wit.observeOn(ctx, session, hb, resp)
				sent, sentAt, sentHealthy = true, time.Now(), hb.Healthy
				if a.cfg.OnHeartbeat != nil {
					a.cfg.OnHeartbeat()
				}
				wait = 0
				if d := time.Duration(resp.NextHeartbeatSeconds) * time.Second; d > a.cfg.HeartbeatInterval {
					wait = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
				}
			}
			if err != nil && ctx.Err() == nil {
				var pe *problemError
				if errors.As(err, &pe) && (pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden) {
					cancel(fmt.Errorf("heartbeat refused: %w", err))
					return
				}
				a.log.WarnContext(ctx, "heartbeat failed", slog.String("error", err.Error()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errRenewed ends a session after a renewal: the server refuses the old
// certificate from then on, so the agent reconnects with the new one.
var errRenewed = errors.New("certificate renewed; reconnecting with it")

// renewal is a renewal's new key and CSR, kept across retries.
type renewal struct {
	key *ecdsa.PrivateKey
	csr []byte
}

// renewals renews the client certificate when a third of its life is
// left, checking at connect and then hourly, and at most once an hour (the
// server's limit per host; it also keeps a certificate that is due as soon
// as it is issued, as in tests, from renewing on every connect). A renewal retires the old
// certificate at once, so after one it ends the session (cancel with
// errRenewed) and run reconnects with the new certificate. The server
// allows one renewal per host per interval; a refusal names when the next
// is allowed (Retry-After), and the agent asks again then.
func (a *agent) renewals(ctx context.Context, cancel context.CancelCauseFunc) {
	for {
		wait := time.Hour
		leaf := a.cert.Load().Leaf
		a.renewMu.Lock()
		since := a.cfg.Now().Sub(a.renewedAt)
		a.renewMu.Unlock()
		if since < time.Hour {
			wait = time.Hour - since
		} else if leaf != nil && leaf.NotAfter.Sub(a.cfg.Now()) < leaf.NotAfter.Sub(leaf.NotBefore)/3 {
			err := a.renew(ctx)
			var pe *problemError
			switch {
			case err == nil:
				cancel(errRenewed)
				return
			case ctx.Err() != nil:
				return
			case errors.As(err, &pe) && pe.Status == http.StatusTooManyRequests && pe.RetryAfter > 0:
				a.log.WarnContext(ctx, "certificate renewal refused for now; will ask again when allowed",
					slog.String("error", err.Error()), slog.Duration("in", pe.RetryAfter))
				wait = pe.RetryAfter
			default:
				a.log.WarnContext(ctx, "certificate renewal failed; will retry", slog.String("error", err.Error()))
			}
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (a *agent) renew(ctx context.Context) error {
	a.renewMu.Lock()
	defer a.renewMu.Unlock()
	if a.pending == nil {
		key, csr, err := pki.NewAgentKey(a.cfg.Rand, a.id.Hostname)
		if err != nil {
			return err
		}
		a.pending = &renewal{key: key, csr: csr}
	}
	key := a.pending.key
	body, _ := json.Marshal(wire.RenewRequest{CSR: string(a.pending.csr)})
	var resp wire.RenewResponse
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := postJSON(rctx, a.client, a.servers.current()+"/v1/agent/renew", body, &resp); err != nil {
		return err
	}
	if err := checkIssued(a.cfg, key, resp.Certificate, resp.CA, a.id.HostID); err != nil {
		return err
	}
	pair, err := keyPairPEM(resp.Certificate, key)
	if err != nil {
		return err
	}
	defer clear(pair)
	cert, err := tls.X509KeyPair(pair, pair)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, certFile), pair, 0o600); err != nil {
		return fmt.Errorf("save renewed certificate: %w", err)
	}
	a.cert.Store(&cert)
	a.pending, a.renewedAt = nil, a.cfg.Now()
	a.log.InfoContext(ctx, "certificate renewed", slog.Time("not_after", cert.Leaf.NotAfter))
	return nil
}

// healthy runs the health probe without ever letting it hold the
// heartbeat: a probe that outlives its timeout by healthProbeGrace — a health
// command stuck in an uninterruptible disk wait (a hung NFS mount), which
// SIGKILL cannot end until its I/O does — counts as unhealthy at once, and
// while it is stuck no second probe starts and every heartbeat says
// unhealthy. Otherwise a stuck probe would stop heartbeats while the held
// connection still answers PINGs, and a server stretching heartbeats (a
// large fleet) would count the host healthy for minutes.
func (a *agent) healthy(ctx context.Context) bool {
	if len(a.cfg.HealthCommand) == 0 {
		return true
	}
	if !a.probing.CompareAndSwap(false, true) {
		a.log.WarnContext(ctx, "the last health command is still running past its timeout; reporting the host unhealthy")
		return false
	}
	done := make(chan bool, 1)
	go func() {
		defer a.probing.Store(false)
		done <- healthProbe(ctx, a.cfg.HealthCommand, a.log)
	}()
	t := time.NewTimer(healthProbeTimeout + healthProbeGrace)
	defer t.Stop()
	select {
	case ok := <-done:
		return ok
	case <-t.C:
		a.log.WarnContext(ctx, "health command did not end after its timeout; reporting the host unhealthy")
		return false
	case <-ctx.Done():
		return false
	}
}

// healthProbeTimeout is the health command's timeout; healthProbeGrace is
// how much longer the heartbeat waits for it to be reaped. Variables for
// tests only.
var (
	healthProbeTimeout = 10 * time.Second
	healthProbeGrace   = 2 * time.Second
)

// healthProbe runs the health command; a variable so that a test can stand
// in a probe that never returns, which no real process can be made to do.
var healthProbe = func(ctx context.Context, argv []string, log *slog.Logger) bool {
	hctx, cancel := context.WithTimeout(ctx, healthProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, argv[0], argv[1:]...)
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		log.WarnContext(ctx, "health command failed", slog.String("error", err.Error()))
		return false
	}
	return true
}

// report delivers a result, retrying through reconnects until the server
// answers (a 4xx such as "no dispatch waits for it" also ends the retries)
// or ten minutes pass. It returns true when a server answered, so that the
// ledger stops replaying the result; false leaves it for the next connect.
func (a *agent) report(ctx context.Context, res wire.StepResult) bool {
	body, _ := json.Marshal(res)
	deadline := time.Now().Add(10 * time.Minute)
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := postJSON(rctx, a.client, a.servers.current()+"/v1/agent/results", body, nil)
		cancel()
		var pe *problemError
		switch {
		case err == nil:
			return true
		case errors.As(err, &pe) && pe.Status == http.StatusUnauthorized && attempt < 5:
			// Sent on a connection whose certificate a renewal just
			// retired: the server closes that connection, and the retry
			// goes out on a new one with the renewed certificate.
		case errors.As(err, &pe) && pe.Status < 500 && pe.Status != http.StatusUnauthorized:
			a.log.WarnContext(ctx, "server did not take the step result", slog.String("step", res.StepID), slog.String("error", err.Error()))
			return true
		case time.Now().After(deadline):
			a.log.ErrorContext(ctx, "gave up reporting a step result; it is sent again at the next connect", slog.String("step", res.StepID), slog.String("error", err.Error()))
			return false
		}
		if !sleep(ctx, backoff(attempt, a.cfg.MaxBackoff)) {
			return false
		}
	}
}

// reportOnce sends a result once (a replay from the ledger): true when a
// server answered it (taken, or refused for good with a 4xx other than 401).
// A 503 (the step is still recorded as in flight: its dispatch is being
// recorded, or the server that sent it died and another has not yet
// taken its operations over, which takes up to a lease period or two) is
// retried for two minutes; anything else unanswered waits for the next
// connect.
func (a *agent) reportOnce(ctx context.Context, res wire.StepResult) bool {
	body, _ := json.Marshal(res)
	retryUntil := time.Now().Add(2 * time.Minute)
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := postJSON(rctx, a.client, a.servers.current()+"/v1/agent/results", body, nil)
		cancel()
		var pe *problemError
		switch {
		case err == nil:
			return true
		case errors.As(err, &pe) && pe.Status == http.StatusServiceUnavailable && time.Now().Before(retryUntil):
			if !sleep(ctx, max(pe.RetryAfter, time.Second)) {
				return false
			}
			continue
		case errors.As(err, &pe) && pe.Status < 500 && pe.Status != http.StatusUnauthorized:
			a.log.InfoContext(ctx, "server did not take a result from the ledger", slog.String("step", res.StepID), slog.String("error", err.Error()))
			return true
		}
		return false
	}
}

// backoff is 1 s × 2^attempt, capped, with ±20 % jitter.
func backoff(attempt int, max time.Duration) time.Duration {
	d := time.Second << min(attempt, 16)
	if d > max || d <= 0 {
		d = max
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func errString(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "closed by the server"
	}
	return err.Error()
}
