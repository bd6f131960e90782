// Package agenthub is the server side of agent connections: enrollment
// (sign an agent's CSR after an [Enroller] spends its join token), the one
// long-lived stream per host over which steps are sent, heartbeats, and
// step results. It holds no store and makes no policy decision: the caller
// (internal/api) puts the Cedar check in front of the handlers, and
// internal/app gives the Hub to the executor as its Dispatcher. Only
// internal/app and internal/api import it.
//
// # Mounting
//
// The four handlers are plain http.Handlers:
//
//	POST /v1/agent/enroll     EnrollHandler     public (join token in the body; no client certificate)
//	GET  /v1/agent/connect    ConnectHandler    mTLS; long-lived stream, needs no write timeout
//	POST /v1/agent/heartbeat  HeartbeatHandler  mTLS
//	POST /v1/agent/results    ResultsHandler    mTLS
//	POST /v1/agent/renew      RenewHandler      mTLS; new certificate for a new key, same host
//
// The listener's tls.Config comes from pki.CA.ServerTLSConfig (TLS 1.3,
// h2, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: the CA pool).
// Each mTLS handler checks for the client certificate itself with
// [Hub.HostIDFromRequest], which re-verifies the leaf against the CA, so
// the handlers stay safe even if a route is mounted without the middleware.
// The agent's identity comes only from that certificate, never from the
// body or a header.
//
// With Config.AuditLog set, agents witness the audit log: enrollment
// answers carry the log key and heartbeat answers the latest checkpoint
// and consistency proofs; cosignatures and alarms come back in heartbeats
// (checkpoint.go).
package agenthub

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Enroller spends a join token and creates the host. ops.Manager
// implements it. It MUST return a usererr (Unauthenticated) for an unknown,
// expired or used token and change nothing in that case.
// keySHA256 identifies the agent's key (SHA-256 of the CSR's
// SubjectPublicKeyInfo, hex): the same token and key may enroll again and
// MUST then get the same host, so that an agent whose answer was lost
// retries instead of stranding its token.
type Enroller interface {
	EnrollHost(ctx context.Context, token, hostname, keySHA256 string) (hostID string, services []string, labels map[string]string, err error)
}

// Revocations says whether a host's identity was revoked. ops.Manager
// implements it. It is asked on every agent request and before every
// dispatch, so that a revocation takes effect at once on every server
// sharing the database, though the certificate itself stays valid until it
// expires. An error counts as revoked.
type Revocations interface {
	HostRevoked(ctx context.Context, hostID string) (bool, error)
}

// Pin is the one certificate a host's agent may use (see [Certificates]).
type Pin struct {
	Fingerprint string // SHA-256 of the certificate's DER, hex
	Previous    string // the certificate the last renewal replaced ("" after an enrollment)
	PEM         string // the current certificate
	IssuedAt    time.Time
}

// Certificates pins each host to one client certificate. internal/app
// adapts ops.Manager to it. Every agent request and stream is refused
// unless its certificate is the host's pinned one, checked beside the
// revocation on the same path, so that a renewal retires the certificate
// it replaces at once on every server sharing the database. The one
// exception is POST /v1/agent/renew with the certificate the last renewal
// replaced: it may fetch its replacement again (never a new one), so that
// an agent whose renewal answer was lost is not stranded.
type Certificates interface {
	// HostPin returns the host's pin; ok is false for a host enrolled
	// before pinning (any certificate of it is accepted until it renews).
	HostPin(ctx context.Context, hostID string) (pin Pin, ok bool, err error)
	// PinEnrolled pins the certificate just issued at enrollment, with its
	// audit entry in the same transaction.
	PinEnrolled(ctx context.Context, hostID, fingerprint, certPEM string, notAfter time.Time) error
	// Renew replaces the pinned certificate, which must be presented, by
	// the one issue signs, with its audit entry in the same transaction;
	// it MUST refuse (usererr RateLimited) when the pinned certificate is
	// younger than minInterval, and (usererr Unauthenticated) when
	// presented is not pinned.
	Renew(ctx context.Context, hostID, presented string, minInterval time.Duration, issue func() (fingerprint, certPEM string, notAfter time.Time, err error)) (certPEM string, err error)
}

// HeartbeatRecorder records that a host is alive. ops.Manager implements it.
type HeartbeatRecorder interface {
	RecordHeartbeat(ctx context.Context, hostID string, healthy bool) error
}

// ErrUnreachable is returned (wrapped) by Dispatch when the host has no open
// stream or its stream ends before the result arrives.
var ErrUnreachable = errors.New("its agent is not connected")

// Config configures a Hub. CA, Enroller and Heartbeats are required.
type Config struct {
	CA          *pki.CA
	Enroller    Enroller
	Heartbeats  HeartbeatRecorder
	Revocations Revocations
	// Certificates pins hosts to one certificate each and records
	// renewals; nil accepts any unexpired certificate of the CA for a host
	// that is not revoked, and renews without limit (tests of the protocol
	// alone). internal/app always sets it.
	Certificates Certificates
	// CertTTL is the lifetime of agent certificates; 0 means 90 days.
	CertTTL time.Duration
	// MinRenewInterval is how long a host must keep a certificate before it
	// may renew it; 0 means an hour, or CertTTL/3 if that is shorter. It
	// must be shorter than CertTTL/2: agents renew when a third of their
	// certificate's life is left.
	MinRenewInterval time.Duration
	// PingInterval is how often the stream carries a ping line; 0 means
	// 15 s. While heartbeats are stretched it is doubled, to at most 30 s
	// (heartbeat.go).
	PingInterval time.Duration
	// Margin is added to a step's own timeout before Dispatch gives up
	// waiting for its result; 0 means 10 s.
	Margin time.Duration
	// ConnectGrace is how long Dispatch waits for a host without a stream
	// to connect before it calls the host unreachable, so that a server
	// restart or a network blip (agents reconnect within seconds) does not
	// fail steps; 0 means 5 s, negative means no wait.
	ConnectGrace time.Duration
	// MaxBodyBytes caps request bodies; 0 means 1 MiB (results carry output).
	MaxBodyBytes int64
	// AuditLog, if set, makes agents witnesses of the audit log: heartbeat
	// answers carry its latest checkpoint and consistency proofs (see
	// checkpoint.go). Witnesses is then required.
	AuditLog  LogSource
	Witnesses WitnessRecorder
	// CheckpointTTL is how long the latest checkpoint is served from
	// memory before it is read again; 0 means 1 s.
	CheckpointTTL time.Duration
	Now           func() time.Time // nil means time.Now
	Log           *slog.Logger     // nil discards

	// IdentityGeneration, if set, returns a counter that changes with
	// every revocation and pinned certificate on any server sharing the
	// store (ops.Manager.IdentityGeneration); the hub then keeps hosts'
	// revocations and pins in memory and reads the counter at most once
	// per IdentityTTL (0 means 1 s) instead of the store on every agent
	// request (identity.go). nil reads the store every time.
	IdentityGeneration func(ctx context.Context) (int64, error)
	IdentityTTL        time.Duration
	// HeartbeatBudget is how many heartbeats per second this server takes
	// from its agents before it asks them to send fewer (heartbeat.go); 0
	// means DefaultHeartbeatBudget, negative never asks.
	HeartbeatBudget float64
	// MaxHeartbeatInterval caps the interval the hub asks agents for; 0
	// means DefaultMaxHeartbeatInterval.
	MaxHeartbeatInterval time.Duration
	// EnrollQueueWait is how long an enrollment waits for one of the
	// few that run at once before it is answered 503 (identity.go); 0
	// means 10 s (agents give up on a request after 30 s).
	EnrollQueueWait time.Duration
}

// Hub tracks connected agents and routes steps and results.
type Hub struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	streams map[string]*stream                  // host ID → its live stream
	pending map[pendingKey]chan wire.StepResult // waiting Dispatch calls
	nextID  uint64
	// attached is closed (and replaced) whenever a stream attaches, waking
	// Dispatch calls waiting for their host to connect.
	attached chan struct{}

	ids         *identityCache   // verified certificates, hosts' revocations and pins
	enrolling   chan struct{}    // enrollment slots (admitEnrollment)
	checkpoints *checkpointCache // nil when agents do not witness the log
	late        LateResults      // takes results no Dispatch waits for; nil until set
}

type pendingKey struct{ host, step string }

// stream is one open GET /v1/agent/connect.
type stream struct {
	id   uint64
	cert string // fingerprint of the certificate that opened it
	send chan wire.AgentMessage
	done chan struct{} // closed when the stream ends or is replaced
	once sync.Once
}

func (s *stream) close() { s.once.Do(func() { close(s.done) }) }

// New returns a Hub.
func New(cfg Config) (*Hub, error) {
	if cfg.CA == nil || cfg.Enroller == nil || cfg.Heartbeats == nil || cfg.Revocations == nil {
		return nil, errors.New("agenthub: Config needs CA, Enroller, Heartbeats and Revocations")
	}
	if cfg.CertTTL <= 0 {
		cfg.CertTTL = 90 * 24 * time.Hour
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 10 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MinRenewInterval <= 0 {
		cfg.MinRenewInterval = min(time.Hour, cfg.CertTTL/3)
	}
	if cfg.MinRenewInterval >= cfg.CertTTL/2 {
		return nil, fmt.Errorf("agenthub: MinRenewInterval %s must be shorter than half of CertTTL %s, or agents could not renew in time", cfg.MinRenewInterval, cfg.CertTTL)
	}
	if cfg.HeartbeatBudget == 0 {
		cfg.HeartbeatBudget = DefaultHeartbeatBudget
	}
	if cfg.MaxHeartbeatInterval <= 0 {
		cfg.MaxHeartbeatInterval = DefaultMaxHeartbeatInterval
	}
	if cfg.ConnectGrace == 0 {
		cfg.ConnectGrace = 5 * time.Second
	}
	h := &Hub{cfg: cfg, log: cfg.Log, now: cfg.Now, streams: map[string]*stream{}, pending: map[pendingKey]chan wire.StepResult{},
		attached: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.IdentityTTL <= 0 {
		cfg.IdentityTTL = time.Second
	}
	if h.cfg.EnrollQueueWait <= 0 {
		h.cfg.EnrollQueueWait = 10 * time.Second
	}
	h.ids = newIdentityCache(cfg.IdentityGeneration, cfg.IdentityTTL)
	h.enrolling = make(chan struct{}, maxConcurrentEnrollments)
	if h.now == nil {
		h.now = time.Now
	}
	if cfg.AuditLog != nil {
		if cfg.Witnesses == nil {
			return nil, errors.New("agenthub: Config.AuditLog needs Config.Witnesses")
		}
		if cfg.CheckpointTTL <= 0 {
			cfg.CheckpointTTL = time.Second
		}
		h.cfg.CheckpointTTL = cfg.CheckpointTTL
		h.checkpoints = &checkpointCache{src: cfg.AuditLog, ttl: cfg.CheckpointTTL, log: h.log}
	}
	return h, nil
}

// Handler serves all four agent routes (for tests and simple servers; the
// API mounts the handlers one by one behind its Cedar checks).
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/agent/enroll", h.EnrollHandler())
	mux.Handle("GET /v1/agent/connect", h.ConnectHandler())
	mux.Handle("POST /v1/agent/heartbeat", h.HeartbeatHandler())
	mux.Handle("POST /v1/agent/results", h.ResultsHandler())
	mux.Handle("POST /v1/agent/renew", h.RenewHandler())
	return mux
}

// renewPath is the one route the certificate a renewal replaced may call.
const renewPath = "/v1/agent/renew"

// HostIDFromRequest returns the host named by the request's verified client
// certificate. It re-verifies the leaf against the hub's CA at the hub's
// clock for client authentication, so a certificate from another CA, a
// server certificate or an expired one is refused even if the listener
// was configured loosely; then it refuses a revoked host and a certificate
// that is not the host's pinned one (except, on the renew route, the one
// the last renewal replaced: see [Certificates]).
func (h *Hub) HostIDFromRequest(r *http.Request) (string, bool) {
	id, state, _, ok := h.identify(r)
	if !ok || state == certReplaced && r.URL.Path != renewPath {
		return "", false
	}
	return id, true
}

// certState is how a request's certificate relates to its host's pin.
type certState int

const (
	certPinned   certState = iota // the host's pinned certificate
	certUnpinned                  // the host was enrolled before pinning
	certReplaced                  // the certificate the last renewal replaced
)

// identify verifies the request's client certificate and looks up its
// host's revocation and pin. ok is false when the request may not act as
// any host.
func (h *Hub) identify(r *http.Request) (hostID string, state certState, pin Pin, ok bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", 0, Pin{}, false
	}
	leaf := r.TLS.PeerCertificates[0]
	fp := fingerprint(leaf)
	id, err := h.verifyAgent(leaf, fp, h.now())
	if err != nil {
		h.log.InfoContext(r.Context(), "agent certificate refused", slog.String("error", err.Error()))
		return "", 0, Pin{}, false
	}
	if h.revoked(r.Context(), id) {
		h.log.InfoContext(r.Context(), "agent certificate refused: the host is revoked", slog.String("host", id))
		return "", 0, Pin{}, false
	}
	state, pin, err = h.pinState(r.Context(), id, fp)
	if err != nil {
		h.log.InfoContext(r.Context(), "agent certificate refused", slog.String("host", id), slog.String("error", err.Error()))
		return "", 0, Pin{}, false
	}
	return id, state, pin, true
}

// pinState compares a certificate fingerprint with the host's pin. An
// error (a failed lookup, or a certificate that is neither pinned nor the
// replaced one) refuses.
func (h *Hub) pinState(ctx context.Context, hostID, fp string) (certState, Pin, error) {
	if h.cfg.Certificates == nil {
		return certUnpinned, Pin{}, nil
	}
	e, err := h.host(ctx, hostID)
	pin, ok := e.pin, e.pinned
	switch {
	case err != nil:
		return 0, Pin{}, fmt.Errorf("look up the pinned certificate: %w", err)
	case !ok:
		return certUnpinned, Pin{}, nil
	case pin.Fingerprint == fp:
		return certPinned, pin, nil
	case pin.Previous != "" && pin.Previous == fp:
		return certReplaced, pin, nil
	}
	return 0, Pin{}, errNotCurrent
}

var errNotCurrent = errors.New("it is not the host's current certificate")

// currentCert reports whether fp may still act for hostID: the host is
// not revoked and fp is its pinned certificate (or it has none). Errors
// count as no.
func (h *Hub) currentCert(ctx context.Context, hostID, fp string) bool {
	if h.revoked(ctx, hostID) {
		return false
	}
	state, _, err := h.pinState(ctx, hostID, fp)
	return err == nil && state != certReplaced
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// revoked asks Revocations, failing closed.
func (h *Hub) revoked(ctx context.Context, hostID string) bool {
	e, err := h.host(ctx, hostID)
	revoked := e.revoked
	if err != nil {
		h.log.ErrorContext(ctx, "check host revocation", slog.String("host", hostID), slog.String("error", err.Error()))
		return true
	}
	return revoked
}

// Connected reports whether host has a live stream on this server.
func (h *Hub) Connected(hostID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.streams[hostID]
	return ok
}

// Dispatch sends step to host's stream and waits for its result. ctx is
// honoured only until the step is handed to the stream: if it ends first,
// Dispatch returns ctx's error and the step was NOT sent (a halt stops it,
// even while waiting for the host to reconnect). After the hand-off ctx is
// ignored, so an in-flight step's result is never lost to a halt. It
// returns an error wrapping ErrUnreachable when the host has no stream
// (after waiting up to ConnectGrace for one) or the stream ends first, and
// one wrapping context.DeadlineExceeded when no result arrives within the
// step's timeout (wire.DefaultStepTimeoutSeconds if zero) plus the margin.
// Only one Dispatch per (host, StepID) may wait at a time.
func (h *Hub) Dispatch(ctx context.Context, hostID string, step wire.Step) (wire.StepResult, error) {
	if step.StepID == "" {
		return wire.StepResult{}, errors.New("dispatch: step has no StepID")
	}
	if h.revoked(ctx, hostID) {
		return wire.StepResult{}, fmt.Errorf("host %s is revoked: %w", hostID, ErrUnreachable)
	}
	key := pendingKey{hostID, step.StepID}
	ch := make(chan wire.StepResult, 1)
	h.mu.Lock()
	s := h.streams[hostID]
	if s == nil && h.cfg.ConnectGrace > 0 {
		grace := time.NewTimer(h.cfg.ConnectGrace)
		defer grace.Stop()
		for s == nil {
			wake := h.attached
			h.mu.Unlock()
			select {
			case <-wake:
			case <-grace.C:
				return wire.StepResult{}, fmt.Errorf("host %s: %w (not within %s)", hostID, ErrUnreachable, h.cfg.ConnectGrace)
			case <-ctx.Done():
				return wire.StepResult{}, ctx.Err()
			}
			h.mu.Lock()
			s = h.streams[hostID]
		}
	}
	if s == nil {
		h.mu.Unlock()
		return wire.StepResult{}, fmt.Errorf("host %s: %w", hostID, ErrUnreachable)
	}
	if _, dup := h.pending[key]; dup {
		h.mu.Unlock()
		return wire.StepResult{}, fmt.Errorf("dispatch: step %s is already waiting for host %s", step.StepID, hostID)
	}
	h.pending[key] = ch
	h.mu.Unlock()
	// The stream may have been opened with a certificate a renewal has
	// since replaced (it ends at its next ping): send it nothing.
	if h.cfg.Certificates != nil && !h.currentCert(ctx, hostID, s.cert) {
		h.mu.Lock()
		delete(h.pending, key)
		h.mu.Unlock()
		return wire.StepResult{}, fmt.Errorf("host %s: %w (its stream uses a certificate that was replaced)", hostID, ErrUnreachable)
	}
	defer func() {
		h.mu.Lock()
		delete(h.pending, key)
		h.mu.Unlock()
	}()

	timeout := step.TimeoutSeconds
	if timeout <= 0 {
		timeout = wire.DefaultStepTimeoutSeconds // what the agent applies
	}
	wait := time.Duration(timeout)*time.Second + h.cfg.Margin
	timer := time.NewTimer(wait)
	defer timer.Stop()
	msg := wire.AgentMessage{Type: "step", Step: &step}
	select {
	case s.send <- msg:
	case <-s.done:
		return wire.StepResult{}, fmt.Errorf("host %s: %w (the connection closed before the step was sent)", hostID, ErrUnreachable)
	case <-ctx.Done():
		return wire.StepResult{}, ctx.Err()
	case <-timer.C:
		return wire.StepResult{}, fmt.Errorf("host %s did not take the step within %s: %w", hostID, wait, context.DeadlineExceeded)
	}
	for {
		select {
		case res := <-ch:
			return res, nil
		case <-s.done:
			// A newer stream of the same agent replaced this one: its result
			// comes over that connection. With no stream left, this dispatch
			// cannot know the outcome.
			next := h.nextStream(hostID, s)
			if next == nil {
				select {
				case res := <-ch: // reported just before the stream ended
					return res, nil
				default:
				}
				return wire.StepResult{}, lostInFlightError{fmt.Errorf("host %s: %w (the connection closed while the step ran)", hostID, ErrUnreachable)}
			}
			s = next
		// ctx is not watched here: once the step is on its way, a halt
		// must not lose its result; the timer bounds the wait.
		case <-timer.C:
			return wire.StepResult{}, fmt.Errorf("host %s reported no result within %s: %w", hostID, wait, context.DeadlineExceeded)
		}
	}
}

// nextStream returns the host's stream that replaced old, waiting up to
// ConnectGrace for the agent to reconnect (a network blip, or a restart
// of the agent, which reports the step's result from its ledger); nil if
// none comes.
func (h *Hub) nextStream(hostID string, old *stream) *stream {
	var grace <-chan time.Time
	if h.cfg.ConnectGrace > 0 {
		t := time.NewTimer(h.cfg.ConnectGrace)
		defer t.Stop()
		grace = t.C
	}
	for {
		h.mu.Lock()
		next, wake := h.streams[hostID], h.attached
		h.mu.Unlock()
		if next != nil && next != old {
			return next
		}
		if grace == nil {
			return nil
		}
		select {
		case <-wake:
		case <-grace:
			return nil
		}
	}
}

// lostInFlightError is Dispatch's error when the host's connection ended
// after the step was handed over: the step may have run, so its outcome
// is unknown, not failed (the executor asks OutcomeUnknown).
type lostInFlightError struct{ error }

func (e lostInFlightError) Unwrap() error { return e.error }

// OutcomeUnknown says the step may have run.
func (lostInFlightError) OutcomeUnknown() bool { return true }

// LateResults takes a step result no Dispatch is waiting for: one an
// agent reports after this server restarted, or after its connection was
// lost mid-step (its ledger replays it at the next connect). The executor
// implements it. It MUST accept a result only for a step of that host,
// record it at most once, and return nil for a replay of a result already
// recorded; an error with a RetryLater() bool method answers 503 (the
// agent sends it again), a usererr its status (the agent stops).
type LateResults interface {
	SettleFromAgent(ctx context.Context, hostID string, res wire.StepResult) error
}

// SetLateResults installs the taker of late results (the executor, which
// is built after the hub). Until it is set, late results get 409.
func (h *Hub) SetLateResults(l LateResults) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.late = l
}

// EnrollHandler serves POST /v1/agent/enroll: wire.EnrollRequest in,
// wire.EnrollResponse out. The CSR is checked before the token is spent,
// so a malformed request changes nothing.
func (h *Hub) EnrollHandler() http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		release, ok := h.admitEnrollment(w, r)
		if !ok {
			return nil
		}
		defer release()
		var req wire.EnrollRequest
		if err := h.decode(w, r, &req); err != nil {
			return err
		}
		if req.Token == "" {
			return usererr.New(usererr.Invalid, "missing_token", "The enrollment request has no join token; pass --token from `interlock join-token create`.")
		}
		csr, err := pki.ParseCSR([]byte(req.CSR))
		if err != nil {
			return usererr.Wrap(err, usererr.Invalid, "bad_csr", "The certificate signing request is not valid: %v.", err)
		}
		keySum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
		hostID, services, labels, err := h.cfg.Enroller.EnrollHost(r.Context(), req.Token, req.Hostname, hex.EncodeToString(keySum[:]))
		if err != nil {
			return err
		}
		cert, err := h.cfg.CA.SignAgentCSR([]byte(req.CSR), hostID, h.cfg.CertTTL)
		if err != nil {
			return fmt.Errorf("sign certificate for %s: %w", hostID, err)
		}
		if h.cfg.Certificates != nil {
			leaf, err := pki.ParseCertificatePEM(cert)
			if err != nil {
				return fmt.Errorf("read the certificate signed for %s: %w", hostID, err)
			}
			if err := h.cfg.Certificates.PinEnrolled(r.Context(), hostID, fingerprint(leaf), string(cert), leaf.NotAfter); err != nil {
				return err
			}
			h.ForgetHost(hostID)
		}
		var logKey string
		if h.cfg.AuditLog != nil {
			// The agent pins it as it pins the CA (see checkpoint.go).
			if logKey, err = h.cfg.AuditLog.PublicKey(r.Context()); err != nil {
				return fmt.Errorf("log key for %s: %w", hostID, err)
			}
		}
		h.log.InfoContext(r.Context(), "agent enrolled", slog.String("host", hostID))
		return writeJSON(w, http.StatusOK, wire.EnrollResponse{
			HostID: hostID, Certificate: string(cert), CA: string(h.cfg.CA.CertificatePEM()),
			Services: services, Labels: labels, LogKey: logKey,
		})
	})
}

// ConnectHandler serves GET /v1/agent/connect (mTLS): it streams
// wire.AgentMessage values as JSON lines (application/x-ndjson), flushing
// after each, with a ping every PingInterval. A new stream for the same
// host replaces (ends) the old one.
func (h *Hub) ConnectHandler() http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		hostID, ok := h.HostIDFromRequest(r)
		if !ok {
			return refuseCert(w, r)
		}
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout

		cert := fingerprint(r.TLS.PeerCertificates[0])
		s := h.attach(hostID, cert)
		defer h.detach(hostID, s)
		h.log.InfoContext(r.Context(), "agent connected", slog.String("host", hostID), slog.String("proto", r.Proto))

		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		write := func(m wire.AgentMessage) error {
			if err := enc.Encode(m); err != nil {
				return err
			}
			return rc.Flush()
		}
		every := h.streamPingEvery()
		ping := func() wire.AgentMessage {
			return wire.AgentMessage{Type: "ping", NextSeconds: int(math.Ceil(every.Seconds()))}
		}
		if err := write(ping()); err != nil {
			return nil
		}
		pings := time.NewTicker(every)
		defer pings.Stop()
		// The certificate was checked once, at connect: end the stream when
		// it expires, so a key that is no longer valid receives no steps.
		expiry := time.NewTimer(r.TLS.PeerCertificates[0].NotAfter.Sub(h.now()))
		defer expiry.Stop()
		for {
			select {
			case <-expiry.C:
				h.log.InfoContext(r.Context(), "agent stream ended: its certificate expired", slog.String("host", hostID))
				return nil
			case <-r.Context().Done():
				return nil
			case <-s.done:
				return nil // replaced by a newer stream
			case m := <-s.send:
				if err := write(m); err != nil {
					h.log.InfoContext(r.Context(), "agent stream write failed", slog.String("host", hostID), slog.String("error", err.Error()))
					return nil
				}
			case <-pings.C:
				// Only a revocation or a renewal ends a live stream: a
				// failed lookup here would fail the steps in flight, so it
				// is logged and the next ping asks again (new requests and
				// dispatches still fail closed).
				if e, err := h.host(r.Context(), hostID); err != nil {
					h.log.ErrorContext(r.Context(), "check host revocation", slog.String("host", hostID), slog.String("error", err.Error()))
				} else if e.revoked {
					h.log.InfoContext(r.Context(), "agent stream ended: the host is revoked", slog.String("host", hostID))
					return nil
				}
				state, _, err := h.pinState(r.Context(), hostID, cert)
				switch {
				case errors.Is(err, errNotCurrent) || err == nil && state == certReplaced:
					h.log.InfoContext(r.Context(), "agent stream ended: its certificate was replaced", slog.String("host", hostID))
					return nil
				case err != nil:
					h.log.ErrorContext(r.Context(), "check the pinned certificate", slog.String("host", hostID), slog.String("error", err.Error()))
				}
				every = h.streamPingEvery()
				if err := write(ping()); err != nil {
					return nil
				}
				pings.Reset(every)
			}
		}
	})
}

func (h *Hub) attach(hostID, cert string) *stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	s := &stream{id: h.nextID, cert: cert, send: make(chan wire.AgentMessage), done: make(chan struct{})}
	if old := h.streams[hostID]; old != nil {
		old.close()
	}
	h.streams[hostID] = s
	close(h.attached)
	h.attached = make(chan struct{})
	return s
}

func (h *Hub) detach(hostID string, s *stream) {
	s.close()
	h.mu.Lock()
	if h.streams[hostID] == s {
		delete(h.streams, hostID)
	}
	h.mu.Unlock()
	h.log.Info("agent disconnected", slog.String("host", hostID))
}

// HeartbeatHandler serves POST /v1/agent/heartbeat (mTLS, wire.Heartbeat).
// With an AuditLog, or when it asks the agent to wait longer before the
// next (heartbeat.go), it answers 200 with a wire.HeartbeatResponse, else
// 204.
func (h *Hub) HeartbeatHandler() http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		started := time.Now()
		hostID, ok := h.HostIDFromRequest(r)
		if !ok {
			return refuseCert(w, r)
		}
		var hb wire.Heartbeat
		if err := h.decode(w, r, &hb); err != nil {
			return err
		}
		if err := h.cfg.Heartbeats.RecordHeartbeat(r.Context(), hostID, hb.Healthy); err != nil {
			return err
		}
		var resp wire.HeartbeatResponse
		if h.checkpoints != nil {
			resp = h.witnessAnswer(r.Context(), hostID, started, hb)
		}
		resp.NextHeartbeatSeconds = int(h.heartbeatEvery() / time.Second)
		if h.checkpoints != nil || resp.NextHeartbeatSeconds > 0 {
			return writeJSON(w, http.StatusOK, resp)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// ResultsHandler serves POST /v1/agent/results (mTLS, wire.StepResult). A
// result is accepted only from the host the step was sent to: 204 when
// delivered to its waiting Dispatch, or taken by LateResults when none
// waits (a step whose outcome the server lost); 503 (retry_later) while
// the step is still being recorded; 409 (code unknown_step) when no step
// of this host wants it — the agent then stops retrying it.
func (h *Hub) ResultsHandler() http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		hostID, ok := h.HostIDFromRequest(r)
		if !ok {
			return refuseCert(w, r)
		}
		var res wire.StepResult
		if err := h.decode(w, r, &res); err != nil {
			return err
		}
		h.mu.Lock()
		ch, late := h.pending[pendingKey{hostID, res.StepID}], h.late
		h.mu.Unlock()
		if ch == nil && late != nil {
			err := late.SettleFromAgent(r.Context(), hostID, res)
			var rl interface{ RetryLater() bool }
			if errors.As(err, &rl) && rl.RetryLater() {
				w.Header().Set("Retry-After", "1")
				return writeProblem(w, r, http.StatusServiceUnavailable, "retry_later", err.Error())
			}
			if err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if ch == nil {
			return usererr.New(usererr.Conflict, "unknown_step", "No dispatch to this host is waiting for step %q; the result was dropped.", res.StepID)
		}
		select {
		case ch <- res:
		default: // a result was already delivered; the first one stands
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// RenewHandler serves POST /v1/agent/renew (mTLS, wire.RenewRequest): it
// signs a certificate for the same host ID as the caller's current,
// still-valid certificate, for the key in the CSR, and pins it: from then
// on the caller's certificate is refused everywhere. A host renews at most
// once per MinRenewInterval; earlier it gets 429 with Retry-After and a
// sentence naming the time. The certificate a renewal replaced may ask
// again with a CSR for the same new key and gets the same certificate
// back (nothing changes): its agent lost the first answer. Agents renew
// when a third of their certificate's life is left.
func (h *Hub) RenewHandler() http.Handler {
	return h.handle(func(w http.ResponseWriter, r *http.Request) error {
		hostID, state, pin, ok := h.identify(r)
		if !ok {
			return refuseCert(w, r)
		}
		var req wire.RenewRequest
		if err := h.decode(w, r, &req); err != nil {
			return err
		}
		csr, err := pki.ParseCSR([]byte(req.CSR))
		if err != nil {
			return usererr.Wrap(err, usererr.Invalid, "bad_csr", "The certificate signing request is not valid: %v.", err)
		}
		if state == certReplaced {
			return h.renewAgain(w, r, hostID, pin, csr)
		}
		if h.cfg.Certificates == nil {
			cert, err := h.cfg.CA.SignAgentCSR([]byte(req.CSR), hostID, h.cfg.CertTTL)
			if err != nil {
				return fmt.Errorf("renew certificate for %s: %w", hostID, err)
			}
			return writeJSON(w, http.StatusOK, wire.RenewResponse{Certificate: string(cert), CA: string(h.cfg.CA.CertificatePEM())})
		}
		presented := fingerprint(r.TLS.PeerCertificates[0])
		cert, err := h.cfg.Certificates.Renew(r.Context(), hostID, presented, h.cfg.MinRenewInterval,
			func() (string, string, time.Time, error) {
				pemBytes, err := h.cfg.CA.SignAgentCSR([]byte(req.CSR), hostID, h.cfg.CertTTL)
				if err != nil {
					return "", "", time.Time{}, fmt.Errorf("sign: %w", err)
				}
				leaf, err := pki.ParseCertificatePEM(pemBytes)
				if err != nil {
					return "", "", time.Time{}, fmt.Errorf("read the signed certificate: %w", err)
				}
				return fingerprint(leaf), string(pemBytes), leaf.NotAfter, nil
			})
		if ue, ok := usererr.As(err); ok && ue.Kind == usererr.RateLimited && !pin.IssuedAt.IsZero() {
			wait := pin.IssuedAt.Add(h.cfg.MinRenewInterval).Sub(h.now())
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Round(time.Second)/time.Second))))
		}
		if err != nil {
			return err
		}
		h.ForgetHost(hostID)
		h.log.InfoContext(r.Context(), "agent certificate renewed", slog.String("host", hostID))
		return writeJSON(w, http.StatusOK, wire.RenewResponse{Certificate: cert, CA: string(h.cfg.CA.CertificatePEM())})
	})
}

// renewAgain answers a renewal from the certificate the last renewal
// replaced: only for a CSR of the key the current certificate was issued
// to (proof that the caller holds the new key, i.e. is the agent that
// renewed), with that same certificate.
func (h *Hub) renewAgain(w http.ResponseWriter, r *http.Request, hostID string, pin Pin, csr *x509.CertificateRequest) error {
	cur, err := pki.ParseCertificatePEM([]byte(pin.PEM))
	if err != nil {
		return fmt.Errorf("read the pinned certificate of %s: %w", hostID, err)
	}
	if !bytes.Equal(cur.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
		return usererr.New(usererr.Unauthenticated, "certificate_replaced",
			"This certificate of host %s was replaced by a renewal at %s and no longer works; it can only fetch its replacement again, for the same new key (if this agent did not renew, its key may be stolen: revoke the host).",
			hostID, pin.IssuedAt.UTC().Format(time.RFC3339))
	}
	h.log.InfoContext(r.Context(), "agent fetched its renewed certificate again", slog.String("host", hostID))
	return writeJSON(w, http.StatusOK, wire.RenewResponse{Certificate: pin.PEM, CA: string(h.cfg.CA.CertificatePEM())})
}

// refuseCert answers a request whose certificate may not act for any
// host. When it carried one, it also ends the connection once its other
// requests finish (for HTTP/2, a GOAWAY): an agent whose certificate a
// renewal replaced then opens a new connection, presenting its current
// certificate.
func refuseCert(w http.ResponseWriter, r *http.Request) error {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		w.Header().Set("Connection", "close")
	}
	return errNoCert()
}

func errNoCert() error {
	return usererr.New(usererr.Unauthenticated, "agent_unauthenticated", "This route needs an agent's client certificate issued by this server's CA; enroll the agent with a join token first.")
}

// decode reads one JSON value, rejecting unknown fields, trailing data and
// bodies over the limit.
func (h *Hub) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return usererr.New(usererr.Invalid, "bad_content_type", "The body must be application/json, not %q.", ct)
	}
	dec := json.NewDecoder(bufio.NewReader(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return usererr.New(usererr.TooLarge, "body_too_large", "The body is larger than %d bytes.", h.cfg.MaxBodyBytes)
		}
		return usererr.Wrap(err, usererr.Invalid, "bad_json", "The body is not valid JSON for this route: %v.", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return usererr.New(usererr.Invalid, "bad_json", "The body must hold exactly one JSON value.")
	}
	return nil
}

// handle renders a handler's error as an RFC 9457 problem body: user
// errors with their sentence, anything else as a 500 that names nothing
// internal (the cause is logged).
func (h *Hub) handle(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		p := wire.Problem{RequestID: w.Header().Get("X-Request-Id")}
		if ue, ok := usererr.As(err); ok {
			p.Status, p.Code, p.Detail = ue.Kind.HTTPStatus(), ue.Code, ue.Msg
			if p.Status == 0 {
				p.Status = http.StatusBadRequest
			}
		} else {
			p.Status, p.Code = http.StatusInternalServerError, "internal"
			p.Detail = "The server failed to handle this agent request; operators can find the cause in its log."
			h.log.ErrorContext(r.Context(), "agent request failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		}
		p.Title = http.StatusText(p.Status)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(p.Status)
		_ = json.NewEncoder(w).Encode(p)
	})
}

// writeProblem writes a problem body with a status usererr has no kind for.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) error {
	p := wire.Problem{RequestID: w.Header().Get("X-Request-Id"), Status: status, Code: code, Detail: detail, Title: http.StatusText(status)}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
