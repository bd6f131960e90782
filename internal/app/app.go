// Package app wires every Interlock service together: it opens the store,
// loads the root key and the CA, builds the domain services, mounts the
// API and serves it over TLS 1.3. Only internal/cli imports it.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/elevate"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/keepalive"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/logwitness"
	"github.com/interlock-dev/interlock/internal/notify"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/passkey"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/review"
	"github.com/interlock-dev/interlock/internal/sso"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/training"
)

// Options are what tests and `interlock serve` may set beyond the config file.
type Options struct {
	Log *slog.Logger     // nil discards
	Now func() time.Time // nil means time.Now
	// TOTPNow is the clock one-time codes are checked against (nil means
	// Now); see identity.Config.TOTPNow.
	TOTPNow func() time.Time
	// OnReady, if set, is called once the listener is bound.
	OnReady func(Ready)
	// AccessNow, if set, is the clock of just-in-time grants and training
	// (tests move it past a grant's expiry); nil means Now.
	AccessNow func() time.Time
}

// Ready describes a started server, for printing and for tests.
type Ready struct {
	URL           string
	CAFingerprint string
	// BootstrapCode is set only when no person exists yet.
	BootstrapCode    string
	BootstrapExpires time.Time
	LogKey           string
	// SeparationWarning is identity.SingleAdminWarning while the
	// installation has a single active admin, and "" otherwise.
	SeparationWarning string
}

// App is a running control plane.
type App struct {
	cfg  config.Config
	log  *slog.Logger
	now  func() time.Time
	db   *store.DB
	root *kms.RootKey

	Audit    *audit.Log
	Identity *identity.Service
	Policy   *policy.Service
	Engine   *policy.Engine
	Ops      *ops.Manager
	Changes  *change.Service
	Exec     *exec.Engine
	Hub      *agenthub.Hub
	KMS      *kms.Service
	API      *api.Server
	CA       *pki.CA
	Passkeys *passkey.Service
	SSO      *sso.Service // OpenID Connect sign-in (sso.go)
	// Elevate and Training are issue 12's just-in-time grants and courses.
	Elevate  *elevate.Service
	Training *training.Service
	Review   *review.Service

	tlsConfig *tls.Config
	denials   *denialLog
	// started is when New ran: DPoP proofs made before it are refused.
	started time.Time
	feeder  *logwitness.Feeder // nil without push witnesses
	fleet   *fleetWitness      // what witnessing agents report (witness.go)

	notifier  *notify.Notifier // webhook and email sinks (notify.go)
	announcer *announcer       // nil without sinks
	cluster   *clusterParts    // several servers on one PostgreSQL (cluster.go); nil with SQLite
	// consoleOrigins are the web console's origins, known once Serve
	// listens (console.go).
	consoleOrigins []string
	usage          *usageLog       // access use and elevated decisions (access.go)
	misuse         *misuseDetector // shared-credential and misuse alerts (detect.go)
}

// New opens everything the control plane needs. It does not listen yet.
func New(ctx context.Context, cfg config.Config, opt Options) (_ *App, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a := &App{cfg: cfg, log: opt.Log, now: opt.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict data dir: %w", err)
	}
	if a.root, err = loadRootKey(cfg); err != nil {
		return nil, err
	}
	sealer, err := kms.NewSealer(a.root)
	if err != nil {
		return nil, fmt.Errorf("root key sealer: %w", err)
	}
	if a.db, err = store.Open(ctx, store.Config{DSN: cfg.Store, DataDir: cfg.DataDir, Log: a.log}); err != nil {
		return nil, err
	}
	witnessKeys, pushWitnesses, err := splitWitnesses(cfg.LogWitnesses)
	if err != nil {
		return nil, err
	}
	auditStore := a.db.AuditStore()
	if a.db.Dialect() == store.Postgres {
		auditStore = a.db.FencedAuditStore(a.fence) // the sequencer runs under a lease (cluster.go)
	}
	if a.Audit, err = audit.New(audit.Config{Store: auditStore, Sealer: sealer, Origin: cfg.LogOrigin, Witnesses: witnessKeys,
		CheckpointEvery: cfg.CheckpointInterval, Now: a.now, Log: a.log,
		Memory: audit.FileMemory{Path: filepath.Join(cfg.DataDir, SignerStateFile)}}); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if a.feeder, err = a.newFeeder(cfg, pushWitnesses); err != nil {
		return nil, err
	}
	if a.Engine, err = policy.NewEngine(policy.EngineConfig{Now: a.now, Log: a.log}); err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	if a.Policy, err = policy.New(policy.Config{Store: a.db.PolicyStore(), Engine: a.Engine, Now: a.now, Log: a.log}); err != nil {
		return nil, fmt.Errorf("policy service: %w", err)
	}
	if err := a.Policy.Sync(ctx); err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	if a.Identity, err = identity.New(identity.Config{Store: a.db.IdentityStore(), Sealer: sealer, Now: a.now, TOTPNow: opt.TOTPNow, Log: a.log, SessionTTL: cfg.SessionTTL}); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := a.newAccess(opt); err != nil {
		return nil, err
	}
	if err := a.newReview(); err != nil {
		return nil, err
	}
	alarms := newSecurityCounters()
	// Independence is the elevation service: it adds, to identity's check,
	// that a role held through a grant is not owed to the requester.
	if a.Ops, err = ops.New(ops.Config{Store: a.db.OpsStore(), Policy: a.Engine, Now: a.now, Log: a.log,
		OnBreakGlass: func(ops.Operation) { alarms.breakGlass.Inc() }, Independence: a.Elevate,
		OnHostRevoked: a.forgetHost}); err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	if a.Changes, err = change.New(change.Config{Store: a.db.ChangeStore(), Policy: a.Policy, Ops: a.Ops, People: a.Identity,
		Independent: a.Elevate, GrantedRoles: a.grantedRoles, Forker: a.Audit, Now: a.now, Log: a.log}); err != nil {
		return nil, fmt.Errorf("change: %w", err)
	}
	if a.KMS, err = kms.New(kms.Config{Store: a.db.KMSStore(), Root: a.root, Now: a.now, Log: a.log, Independence: a.Elevate}); err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	// A wrong unseal passphrase must stop the start, not surface later as
	// undecryptable keys.
	if err := a.KMS.CheckRootKey(ctx); err != nil {
		return nil, fmt.Errorf("kms: %w", err)
	}
	if err := ensureSecretsKey(ctx, a.KMS); err != nil {
		return nil, err
	}
	if err := a.setupSSO(sealer); err != nil {
		return nil, err
	}
	if err := a.setupTLSAndAgents(ctx, sealer); err != nil {
		return nil, err
	}
	a.setupCluster(ctx, sealer)
	if a.Exec, err = exec.New(exec.Config{Store: a.db.ExecStore(), Ops: a.Ops, Guard: a.Ops, Dispatcher: a.dispatcher(), Secrets: secretResolver{a.KMS},
		Runs: a.runClaims(), Announce: a.opsAnnouncer(), Now: a.now, Log: a.log, RecordLinger: exec.DefaultRecordLinger}); err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	a.Hub.SetLateResults(a.Exec) // agents' ledgers settle steps the server lost track of
	if err := a.setupNotifications(); err != nil {
		return nil, err
	}
	if a.clustered() {
		a.Hub.SetLateResults(lateResults{queue: a.cluster.queue, exec: a.Exec}) // and results for steps another server queued
		a.listenCluster(a.cluster.ctx)
	}
	// Two replay caches: one for session requests (filled only by requests
	// whose session authenticated) and one for the anonymous sign-in
	// routes, so that a flood of sign-in proofs can at worst slow sign-ins,
	// never refuse a signed-in person's halt. A proof cannot cross over:
	// session proofs bind a token (ath), sign-in proofs must not.
	// Both refuse proofs made before this start: their replay caches are
	// in memory and begin empty (see dpop.VerifierConfig.NotBefore, and
	// Serve, which waits for the next whole second before it answers).
	a.started = a.now()
	started := dpop.VerifierConfig{NotBefore: a.started}
	proofs, loginProofs := dpop.NewVerifier(started), dpop.NewVerifier(started)
	a.denials = newDenialLog(a.db, a.now, alarms.denied, a.log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		alarms.breakGlass, alarms.denied, a.fleet.rollbacks, signerRefusingGauge(a.Audit))
	if a.feeder != nil {
		reg.MustRegister(a.feeder.Collectors()...)
	}
	reg.MustRegister(a.notifier.Collectors()...)
	if a.announcer != nil {
		reg.MustRegister(a.announcer.lost) // notify.go
	}
	reg.MustRegister(fleetCollector{a}, stepFailures(a.Audit)) // metrics.go
	reg.MustRegister(adminGauges(a.Identity, a.log)...)
	if a.Passkeys, err = a.newPasskeys(); err != nil {
		return nil, err
	}
	a.misuse = newMisuseDetector(a.db, a.now, a.log)
	a.misuse.expire, a.misuse.halted = a.Elevate.ExpireDue, a.Audit.Refusal
	reg.MustRegister(a.misuse.alerts)
	if a.API, err = api.New(api.Config{
		Authenticator: elevatedAuthenticator{inner: a.Identity, el: a.Elevate, usage: a.usage},
		Proofs:        proofs,
		Agents:        a.Hub,
		Authorizer:    accessAuthorizer{inner: api.PolicyAuthorizer(a.Engine), training: a.Training, usage: a.usage},
		Denials:       a.denials,
		Separation:    a.Identity,
		Metrics:       promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		// Scrapers present a token; people need metrics.read (metrics.go).
		MetricsTokenHashes: metricsTokenHashes(cfg.MetricsTokenSHA256),
		Halted:             a.Audit.Refusal,
		Unready:            a.unready, // metrics.go
		Now:                a.now,
		Log:                a.log,
	}, a.routes(loginProofs)...); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return a, nil
}

// runPeriodic does the KMS's due work once a minute until ctx ends:
// scheduled rotations, approved key destructions after their wait, and
// expiry of stale dual-control requests.
func (a *App) runPeriodic(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if a.Audit.Refusal() != "" {
				continue // nothing changes while the log cannot record it
			}
			if n, err := a.KMS.RunDue(ctx); err != nil {
				a.log.ErrorContext(ctx, "kms periodic work", slog.String("error", err.Error()))
			} else if n > 0 {
				a.log.InfoContext(ctx, "kms periodic work done", slog.Int("items", n))
			}
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func loadRootKey(cfg config.Config) (*kms.RootKey, error) {
	if cfg.RootKeyEnv != "" {
		k, err := kms.RootKeyFromEnv(cfg.RootKeyEnv)
		if err != nil {
			return nil, fmt.Errorf("root key from $%s: %w", cfg.RootKeyEnv, err)
		}
		return k, nil
	}
	if cfg.UnsealPassphraseFile == "" {
		k, err := kms.LoadOrCreateRootKey(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("root key: %w", err)
		}
		return k, nil
	}
	pass, err := os.ReadFile(cfg.UnsealPassphraseFile)
	if err != nil {
		return nil, fmt.Errorf("read unseal passphrase: %w", err)
	}
	salt, err := kms.LoadOrCreateSalt(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("root key salt: %w", err)
	}
	return kms.RootKeyFromPassphrase(pass, salt)
}

// Close releases everything New opened.
func (a *App) Close() {
	if a.cluster != nil {
		a.cluster.stop()
	}
	if a.KMS != nil {
		_ = a.KMS.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
}

// Serve listens and serves until ctx ends, then shuts down gracefully.
func (a *App) Serve(ctx context.Context, onReady func(Ready)) error {
	ln, err := keepalive.Listen(ctx, a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	ready := Ready{URL: "https://" + ln.Addr().String(), CAFingerprint: a.CAFingerprint()}
	if a.clustered() {
		// Other servers may be running operations and the log: recovery,
		// the sequencer and periodic work run under leases instead.
		if err := a.serveClustered(ctx, ready.URL); err != nil {
			ln.Close()
			return fmt.Errorf("join the servers sharing the database: %w", err)
		}
	} else {
		if err := a.Exec.Recover(ctx); err != nil {
			ln.Close()
			return fmt.Errorf("recover operations: %w", err)
		}
		if err := a.Audit.Start(ctx); err != nil {
			ln.Close()
			return fmt.Errorf("start log: %w", err)
		}
		defer a.Audit.Stop(context.WithoutCancel(ctx))
	}
	code, expires, ok, err := a.Identity.EnsureBootstrapCode(ctx)
	if err != nil {
		ln.Close()
		return fmt.Errorf("bootstrap code: %w", err)
	}
	if ok {
		ready.BootstrapCode, ready.BootstrapExpires = code.Reveal(), expires
	}
	ready.SeparationWarning = a.Identity.SeparationOfDutiesWarning(ctx)
	if ready.LogKey, err = a.Audit.PublicKey(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("log key: %w", err)
	}
	a.consoleOrigins = consoleOrigins(a.cfg.ServerNames, ln.Addr())
	handler, err := a.handler()
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           a.usage.middleware(handler),
		TLSConfig:         a.tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Agents hold one long connection each. A host that vanished
		// (powered off, cut off) is noticed by the kernel's TCP
		// keepalives (internal/keepalive), which cost this process nothing; an
		// HTTP/2 PING is only the backstop, sent after two minutes without
		// a frame from the peer (a large fleet heartbeats every 100 s, a
		// small one every 5 s, so it is rarely sent), and the connection
		// closes if its answer is not back within 15 s. A PING every 10 s
		// on ten thousand connections was a thousand TLS writes a second,
		// most of the server's idle CPU. A connection that accepts no byte
		// for 30 s (a peer gone while we write) is closed too. With a
		// large fleet the held connection is the host's liveness between
		// heartbeats (agenthub heartbeat.go), so these bound how long a
		// host that went silent still counts as connected: about 30 s.
		//
		// The rest keeps what an idle agent connection holds small (ten
		// thousand of them on one server): agents send small frames, so
		// frames are read into at most 16 KiB (the protocol's least; the
		// default lets one large frame grow a connection's read buffer to
		// 1 MiB for good), the HPACK table for requests is 1 KiB, not 4,
		// and answers' headers are not indexed at all (a table of 1 byte
		// holds no entry: zero would mean the default). Every answer
		// carries a new X-Request-Id and Date, so each connection's table
		// and its maps only filled with values never sent again, about
		// 6 KiB per connection.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 2 * time.Minute, PingTimeout: 15 * time.Second, WriteByteTimeout: 30 * time.Second,
			MaxReadFrameSize: 16 << 10, MaxDecoderHeaderTableSize: 1 << 10, MaxEncoderHeaderTableSize: 1,
			MaxReceiveBufferPerStream: 256 << 10},
		ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	// DPoP proofs carry their time in whole seconds and those made in the
	// second this process started are refused (the replay cache cannot
	// know whether the previous process accepted them), so answer nobody
	// before the next second begins: a client with a correct clock then
	// never meets that refusal.
	if !sleepCtx(ctx, a.started.Truncate(time.Second).Add(time.Second).Sub(a.now())) {
		ln.Close()
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if !a.clustered() {
		go a.runPeriodic(ctx)
	}
	go a.denials.run(ctx)
	go a.misuse.run(ctx)
	// On the way out, write the refusals still counted in memory (after
	// the server stopped answering), so that none is lost.
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := a.denials.flush(fctx, true); err != nil {
			a.log.ErrorContext(fctx, "record repeated authorization denials at shutdown", slog.String("error", err.Error()))
		}
	}()
	if a.feeder != nil && !a.clustered() { // clustered: the sequencer's holder pushes (cluster.go)
		go a.feeder.Run(ctx)
	}
	if a.announcer != nil {
		go a.notifier.Run(ctx)
		go a.announcer.run(ctx)
	}
	// Heartbeats that changed nothing are written in batches (ops
	// liveness.go); the last batch after the server stopped answering.
	go a.Ops.RunHeartbeatFlusher(ctx, 0)
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.Ops.FlushHeartbeats(fctx); err != nil {
			a.log.ErrorContext(fctx, "write the last heartbeats at shutdown", slog.String("error", err.Error()))
		}
	}()
	if onReady != nil {
		onReady(ready)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down: %w", err)
	}
	if a.clustered() {
		a.leaveCluster(shutdownCtx)
	}
	return nil
}
