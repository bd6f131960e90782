// Package notify tells people when they are needed: when an operation or a
// change request waits for approval, is approved, halts, fails, or when
// someone breaks glass. It delivers [Event]s to the sinks configured in
// `interlock serve`'s config file — signed webhooks (Slack-compatible) and
// email over SMTP with STARTTLS — each from its own bounded queue, with
// jittered exponential backoff between attempts.
//
// Delivery never holds anything else up: [Notifier.Notify] only enqueues,
// and drops (and counts) a message whose sink's queue is full. Failures are
// Prometheus metrics ([Notifier.Collectors]) and log lines, never errors
// of the operation that caused them.
//
// Secrets (the webhook signing key, a webhook URL that is a credential,
// the SMTP password) are never in the config: sinks name paths in the
// secrets store and read them through [Secrets] when they send.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/config"
)

// The events a sink can receive (config.NotifyEvents).
const (
	EventApprovalNeeded = "approval_needed"
	EventApproved       = "approved"
	EventHalted         = "halted"
	EventFailed         = "failed"
	EventBreakGlass     = "break_glass"
	EventMisuse         = "misuse" // a detection rule's alert (internal/detect)
)

// Event is one thing people should know about, already in words: Title
// and Text name people and runbooks, never only ids, and MUST NOT hold a
// secret value.
type Event struct {
	Name    string    // one of the Event* constants
	Subject string    // what it is about, as the audit log names it: "op:op_…", "change:cr_…"
	Title   string    // one line: an email's subject
	Text    string    // the message: Slack mrkdwn-safe plain text, several lines
	Time    time.Time // when it happened (the audit entry's time)
	// LogIndex is the audit log entry that records it, for the reader who
	// wants to check it (interlock log show INDEX).
	LogIndex uint64
	// Details are the same facts as fields, for machines.
	Details map[string]any
}

// ErrNoSecret is in the chain of a [Secrets] error when the named secret
// does not exist. A message that needs it is given up at once (retrying
// cannot help until someone runs `interlock secret put`), and counted.
var ErrNoSecret = errors.New("notify: the secret does not exist")

// Secrets reads a secret's current value from Interlock's secrets store.
type Secrets interface {
	Secret(ctx context.Context, path, why string) ([]byte, error)
}

// Config configures a Notifier.
type Config struct {
	Sinks   config.Notifications
	Secrets Secrets
	Log     *slog.Logger     // nil discards
	Now     func() time.Time // nil means time.Now
	// Backoff is the first retry's base delay (0 means 500 ms); each next
	// one doubles, up to MaxBackoff (0 means 30 s); each delay is drawn
	// uniformly between half and all of it.
	Backoff, MaxBackoff time.Duration
	// Attempts is how often one message is tried; 0 means 6.
	Attempts int
}

// sink delivers one message.
type sink interface {
	send(ctx context.Context, ev Event) error
}

// permanentError marks a failure that retrying cannot fix (a 4xx answer,
// a server that will not speak TLS): the message is given up at once.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// worker is one sink with its queue.
type worker struct {
	name   string
	kind   string // "webhook" or "email"
	events []string
	sink   sink
	queue  chan Event
}

func (w *worker) wants(event string) bool {
	return len(w.events) == 0 || slices.Contains(w.events, event)
}

// Notifier fans events out to the configured sinks.
type Notifier struct {
	cfg     Config
	log     *slog.Logger
	workers []*worker
	secrets *secretCache

	sent, attemptFailures, failures, dropped *prometheus.CounterVec
	queued                                   *prometheus.GaugeVec

	startOnce sync.Once
}

// New builds the sinks of cfg.Sinks (which config.Validate has checked).
// Nothing is sent before Run.
func New(cfg Config) (*Notifier, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	n := &Notifier{cfg: cfg, log: cfg.Log, secrets: newSecretCache(cfg.Secrets, cfg.Now)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	labels := []string{"sink", "type"}
	n.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_notify_sent_total",
		Help: "Notifications a sink accepted."}, labels)
	n.attemptFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_notify_attempt_failures_total",
		Help: "Delivery attempts that failed (each is retried with backoff until the attempts run out)."}, labels)
	n.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_notify_failures_total",
		Help: "Notifications given up after every attempt failed (or a permanent refusal): someone was not told."}, labels)
	n.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_notify_dropped_total",
		Help: "Notifications dropped because the sink's queue was full (the sink is down or slow)."}, labels)
	n.queued = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "interlock_notify_queue_length",
		Help: "Notifications waiting in a sink's queue."}, labels)
	size := cfg.Sinks.QueueSize
	if size == 0 {
		size = 1000
	}
	for _, w := range cfg.Sinks.Webhooks {
		s, err := newWebhook(w, n.secrets, cfg.Now)
		if err != nil {
			return nil, fmt.Errorf("notifications: webhook %s: %w", w.Name, err)
		}
		n.add(&worker{name: w.Name, kind: "webhook", events: w.Events, sink: s, queue: make(chan Event, size)})
	}
	for _, m := range cfg.Sinks.Email {
		s, err := newEmail(m, n.secrets, cfg.Now)
		if err != nil {
			return nil, fmt.Errorf("notifications: email %s: %w", m.Name, err)
		}
		n.add(&worker{name: m.Name, kind: "email", events: m.Events, sink: s, queue: make(chan Event, size)})
	}
	return n, nil
}

func (n *Notifier) add(w *worker) {
	n.workers = append(n.workers, w)
	// Every series exists from the start, at zero, so an alert on an
	// increase works from the first failure.
	for _, c := range []*prometheus.CounterVec{n.sent, n.attemptFailures, n.failures, n.dropped} {
		c.WithLabelValues(w.name, w.kind)
	}
	n.queued.WithLabelValues(w.name, w.kind)
}

// Enabled reports whether any sink is configured.
func (n *Notifier) Enabled() bool { return n != nil && len(n.workers) > 0 }

// Collectors are the notifier's metrics, for the server's registry.
func (n *Notifier) Collectors() []prometheus.Collector {
	return []prometheus.Collector{n.sent, n.attemptFailures, n.failures, n.dropped, n.queued}
}

// Notify queues ev for every sink that wants it. It never blocks: a full
// queue drops the message and counts it.
func (n *Notifier) Notify(ev Event) {
	for _, w := range n.workers {
		if !w.wants(ev.Name) {
			continue
		}
		select {
		case w.queue <- ev:
			n.queued.WithLabelValues(w.name, w.kind).Set(float64(len(w.queue)))
		default:
			n.dropped.WithLabelValues(w.name, w.kind).Inc()
			n.log.Warn("notification dropped: the sink's queue is full", slog.String("sink", w.name),
				slog.String("event", ev.Name), slog.String("subject", ev.Subject))
		}
	}
}

// Run delivers queued messages until ctx ends; messages still queued
// then are not sent. Call it once.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	n.startOnce.Do(func() {
		for _, w := range n.workers {
			wg.Go(func() { n.work(ctx, w) })
		}
	})
	wg.Wait()
}

// work sends w's messages one at a time, in order.
func (n *Notifier) work(ctx context.Context, w *worker) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.queue:
			n.queued.WithLabelValues(w.name, w.kind).Set(float64(len(w.queue)))
			n.deliver(ctx, w, ev)
		}
	}
}

// deliver tries ev on w until it is accepted, refused for good, or the
// attempts run out, sleeping a jittered, doubling backoff in between.
func (n *Notifier) deliver(ctx context.Context, w *worker, ev Event) {
	delay := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := w.sink.send(ctx, ev)
		if err == nil {
			n.sent.WithLabelValues(w.name, w.kind).Inc()
			return
		}
		if ctx.Err() != nil {
			return
		}
		n.attemptFailures.WithLabelValues(w.name, w.kind).Inc()
		var perm permanentError
		last := attempt >= n.cfg.Attempts || errors.As(err, &perm) || errors.Is(err, ErrNoSecret)
		n.log.Warn("notification not delivered", slog.String("sink", w.name), slog.String("event", ev.Name),
			slog.String("subject", ev.Subject), slog.Int("attempt", attempt), slog.Bool("giving_up", last), slog.String("error", err.Error()))
		if last {
			n.failures.WithLabelValues(w.name, w.kind).Inc()
			return
		}
		// Full jitter on the upper half keeps many servers that lost the
		// same receiver from retrying in step.
		sleep := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, n.cfg.MaxBackoff)
	}
}

// secretCache keeps secret values for a few minutes, so that sending does
// not read (and audit a read of) the store for every message, while a
// rotated secret is picked up soon.
type secretCache struct {
	src Secrets
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cachedSecret
}

type cachedSecret struct {
	value []byte
	at    time.Time
}

const secretTTL = 5 * time.Minute

func newSecretCache(src Secrets, now func() time.Time) *secretCache {
	return &secretCache{src: src, now: now, m: map[string]cachedSecret{}}
}

func (c *secretCache) get(ctx context.Context, path, why string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[path]; ok && c.now().Sub(s.at) < secretTTL {
		return s.value, nil
	}
	if c.src == nil {
		return nil, fmt.Errorf("secret %s: no secrets store", path)
	}
	v, err := c.src.Secret(ctx, path, why)
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", path, err)
	}
	c.m[path] = cachedSecret{value: v, at: c.now()}
	return v, nil
}
