// Package cluster lets several `interlock serve` processes share one
// PostgreSQL database: leases with fencing tokens for work that must have
// one owner at a time (lease.go), a registry of the live servers and the
// URLs agents reach them at (registry.go), and a queue through the
// database that carries a step to whichever server holds the agent's
// connection (queue.go). It adds no consensus of its own: PostgreSQL (with
// whatever HA its operator runs) is the one source of truth. With SQLite
// there is one server, which trivially holds every lease.
//
// It holds no SQL: internal/store implements [Store]. Only internal/app
// (and internal/store, for the types) import it.
package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ErrFenced is returned (wrapped) by a write made under a lease whose
// fencing token is no longer the lease's current one: another server took
// the lease over, and the write was refused in its own transaction.
var ErrFenced = errors.New("this server no longer holds the lease; another server took the work over")

// LeaseStore keeps leases. internal/store implements it.
type LeaseStore interface {
	// AcquireLease takes lease name for holder until ttl from now on the
	// database's clock, or extends it if holder holds it already. It
	// returns the lease's fencing token and true if holder holds it after
	// the call; false (and no error) while another holder's lease has not
	// expired. The token MUST grow whenever the holder changes, and when a
	// holder takes back a lease that had expired.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (token int64, ok bool, err error)
	// ReleaseLease ends holder's lease at once (a clean shutdown), if
	// holder still holds it with token.
	ReleaseLease(ctx context.Context, name, holder string, token int64) error
}

// Job is work that must run on one server at a time. Run runs while this
// server holds the lease: ctx ends when the lease is lost (or not renewed
// in time) or the manager stops, and Run MUST then return promptly. token
// is the lease's fencing token; writes made under the lease check it.
type Job struct {
	Name string
	Run  func(ctx context.Context, token int64)
}

// LeaseConfig configures a [Leases] manager.
type LeaseConfig struct {
	Store  LeaseStore
	Holder string // this server's ID
	// TTL is the lease period: a server that cannot renew stops the work
	// within it, and another server takes over after it. 0 means 10 s.
	TTL time.Duration
	Log *slog.Logger // nil discards
}

// Leases takes, renews and gives up leases for a set of jobs, running
// each job while its lease is held.
type Leases struct {
	cfg  LeaseConfig
	log  *slog.Logger
	jobs []Job

	mu   sync.Mutex
	held map[string]*heldLease
}

type heldLease struct {
	token    int64
	deadline time.Time // local monotonic time after which the lease may have passed on
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewLeases returns a manager for jobs; call Run to start it.
func NewLeases(cfg LeaseConfig, jobs ...Job) *Leases {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Leases{cfg: cfg, log: cfg.Log, jobs: jobs, held: map[string]*heldLease{}}
}

// Token returns the fencing token of lease name and true while this
// server holds it (and its local deadline has not passed).
func (l *Leases) Token(name string) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.held[name]
	if h == nil || !time.Now().Before(h.deadline) {
		return 0, false
	}
	return h.token, true
}

// Run tries every lease every TTL/3 until ctx ends, starting a job when
// its lease is won and stopping it when the lease is lost or its local
// deadline passes without a renewal. On the way out it stops every job
// and releases the leases, so that another server takes over at once.
func (l *Leases) Run(ctx context.Context) {
	l.round(ctx)
	l.loop(ctx)
}

// Start takes the leases it can at once — their jobs have started when
// it returns — and then goes on as Run in the background. The returned
// channel is closed when that ends: ctx ended, every job stopped and the
// leases were released.
func (l *Leases) Start(ctx context.Context) <-chan struct{} {
	l.round(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.loop(ctx)
	}()
	return done
}

func (l *Leases) loop(ctx context.Context) {
	tick := time.NewTicker(l.cfg.TTL / 3)
	defer tick.Stop()
	watch := time.NewTicker(l.cfg.TTL / 20)
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			l.stopAll()
			return
		case <-tick.C:
			l.round(ctx)
		case <-watch.C:
			l.expire()
		}
	}
}

// round acquires or renews each job's lease once.
func (l *Leases) round(ctx context.Context) {
	for _, j := range l.jobs {
		// The deadline counts from before the request left: the database
		// set the expiry later than that, so this server always stops
		// before another can take over (clock rates, not clocks, must
		// agree). A tenth of the period is kept in hand for the watch's
		// granularity and for clock rates that differ a little.
		sent := time.Now().Add(-l.cfg.TTL / 10)
		actx, cancel := context.WithTimeout(ctx, l.cfg.TTL/3)
		token, ok, err := l.cfg.Store.AcquireLease(actx, j.Name, l.cfg.Holder, l.cfg.TTL)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.log.WarnContext(ctx, "renew lease", slog.String("lease", j.Name), slog.String("error", err.Error()))
			continue // the watch stops the job when its deadline passes
		}
		l.mu.Lock()
		h := l.held[j.Name]
		switch {
		case ok && h != nil && h.token == token:
			h.deadline = sent.Add(l.cfg.TTL)
			l.mu.Unlock()
		case ok:
			l.mu.Unlock()
			if h != nil {
				l.stop(j.Name, h) // lost and won again: the old run's writes are fenced
			}
			l.start(ctx, j, token, sent.Add(l.cfg.TTL))
		default:
			l.mu.Unlock()
			if h != nil {
				l.log.WarnContext(ctx, "lost lease", slog.String("lease", j.Name))
				l.stop(j.Name, h)
			}
		}
	}
}

func (l *Leases) start(ctx context.Context, j Job, token int64, deadline time.Time) {
	jctx, cancel := context.WithCancel(ctx)
	h := &heldLease{token: token, deadline: deadline, cancel: cancel, done: make(chan struct{})}
	l.mu.Lock()
	l.held[j.Name] = h
	l.mu.Unlock()
	l.log.InfoContext(ctx, "took lease", slog.String("lease", j.Name), slog.Int64("token", token))
	go func() {
		defer close(h.done)
		j.Run(jctx, token)
	}()
}

// stop cancels a job and waits for it to return.
func (l *Leases) stop(name string, h *heldLease) {
	h.cancel()
	<-h.done
	l.mu.Lock()
	if l.held[name] == h {
		delete(l.held, name)
	}
	l.mu.Unlock()
}

// expire stops jobs whose lease was not renewed before its local deadline.
func (l *Leases) expire() {
	now := time.Now()
	l.mu.Lock()
	var late []string
	for name, h := range l.held {
		if !now.Before(h.deadline) {
			late = append(late, name)
		}
	}
	l.mu.Unlock()
	for _, name := range late {
		l.mu.Lock()
		h := l.held[name]
		l.mu.Unlock()
		if h != nil {
			l.log.Warn("lease not renewed in time; stopping its work", slog.String("lease", name))
			l.stop(name, h)
		}
	}
}

func (l *Leases) stopAll() {
	l.mu.Lock()
	held := make(map[string]*heldLease, len(l.held))
	for k, v := range l.held {
		held[k] = v
	}
	l.mu.Unlock()
	for name, h := range held {
		l.stop(name, h)
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := l.cfg.Store.ReleaseLease(rctx, name, l.cfg.Holder, h.token); err != nil {
			l.log.Warn("release lease", slog.String("lease", name), slog.String("error", err.Error()))
		}
		cancel()
	}
}
