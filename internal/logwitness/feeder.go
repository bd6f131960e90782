// Package logwitness is the log's side of witnessing: it pushes every new
// checkpoint of Interlock's audit log to C2SP tlog-witnesses
// (https://c2sp.org/tlog-witness) with a consistency proof from the size
// each witness last cosigned, stores the cosignatures they answer with
// beside the checkpoint (audit.Log.AddCosignature), and serves the newest
// checkpoint whose witness round has finished, so that clients see a
// checkpoint with its cosignatures rather than one signed a moment ago
// that no witness has seen yet. A witness that fails never blocks the log:
// its failure is counted (interlock_log_witness_failures_total) and
// logged, and the round goes on without it.
//
// internal/app wires it; it reaches the log and the store only through
// the small interfaces below.
package logwitness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// Log is what the feeder needs from the audit log; *audit.Log has it.
type Log interface {
	Checkpoint(ctx context.Context) (audit.SignedCheckpoint, error)
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
	AddCosignature(ctx context.Context, cosigned []byte) error
}

// Store remembers, per witness (by verifier key), the size of the latest
// checkpoint it cosigned, so that after a restart the log sends the right
// consistency proof at once. internal/store implements it.
type Store interface {
	LogWitnessSize(ctx context.Context, vkey string) (size uint64, ok bool, err error)
	PutLogWitnessSize(ctx context.Context, vkey, url string, size uint64, at time.Time) error
}

// Config configures a [Feeder]. Log, Store, Endpoints and Client are
// required.
type Config struct {
	Log       Log
	Store     Store
	Endpoints []Endpoint
	Client    *http.Client
	// PollEvery is how often the latest checkpoint is looked at; zero
	// means 250 ms.
	PollEvery time.Duration
	// RoundTimeout bounds one witness's answer; zero means 10 s.
	RoundTimeout time.Duration
	Now          func() time.Time // nil means time.Now
	Logger       *slog.Logger     // nil discards
}

// Feeder pushes checkpoints to witnesses and serves witnessed checkpoints.
type Feeder struct {
	cfg Config
	log *slog.Logger

	failures, cosigned *prometheus.CounterVec
	size               *prometheus.GaugeVec

	mu       sync.Mutex
	stats    map[string]Stats  // by witness name
	sizes    map[string]uint64 // by vkey: what each witness last cosigned
	lastText string            // body of the last checkpoint a round was run for
	done     *audit.SignedCheckpoint
	served   tlog.Checkpoint // the newest checkpoint Checkpoint returned
}

// New validates cfg.
func New(cfg Config) (*Feeder, error) {
	if cfg.Log == nil || cfg.Store == nil || cfg.Client == nil || len(cfg.Endpoints) == 0 {
		return nil, errors.New("logwitness: Log, Store, Client and at least one endpoint are required")
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = 250 * time.Millisecond
	}
	if cfg.RoundTimeout <= 0 {
		cfg.RoundTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Feeder{cfg: cfg, log: cfg.Logger, sizes: map[string]uint64{}, stats: map[string]Stats{},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_log_witness_failures_total",
			Help: "Checkpoints a witness did not cosign (unreachable, refused, or an answer that does not verify)."}, []string{"witness"}),
		cosigned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_log_witness_cosignatures_total",
			Help: "Cosignatures received from each witness and stored beside their checkpoint."}, []string{"witness"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "interlock_log_witness_cosigned_size",
			Help: "Size of the latest checkpoint each witness cosigned."}, []string{"witness"}),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	for _, e := range cfg.Endpoints {
		f.failures.WithLabelValues(e.Name())
		f.cosigned.WithLabelValues(e.Name())
	}
	return f, nil
}

// Stats counts, for one witness, the rounds it cosigned and those it
// failed since the feeder started.
type Stats struct{ Cosigned, Failures uint64 }

// Stats returns the counts per witness name.
func (f *Feeder) Stats() map[string]Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Stats, len(f.stats))
	for k, v := range f.stats {
		out[k] = v
	}
	return out
}

// FailureCounter is the failures metric of one witness.
func (f *Feeder) FailureCounter(name string) prometheus.Counter {
	return f.failures.WithLabelValues(name)
}

func (f *Feeder) count(name string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats[name]
	if ok {
		s.Cosigned++
		f.cosigned.WithLabelValues(name).Inc()
	} else {
		s.Failures++
		f.failures.WithLabelValues(name).Inc()
	}
	f.stats[name] = s
}

// Collectors are the feeder's /metrics.
func (f *Feeder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.failures, f.cosigned, f.size}
}

// Run feeds every new checkpoint to the witnesses until ctx ends.
func (f *Feeder) Run(ctx context.Context) {
	for _, e := range f.cfg.Endpoints {
		size, ok, err := f.cfg.Store.LogWitnessSize(ctx, e.VKey)
		if err != nil {
			f.log.ErrorContext(ctx, "read witness state", slog.String("witness", e.Name()), slog.String("error", err.Error()))
		}
		if ok {
			f.mu.Lock()
			f.sizes[e.VKey] = size
			f.mu.Unlock()
		}
	}
	t := time.NewTicker(f.cfg.PollEvery)
	defer t.Stop()
	for {
		if err := f.Round(ctx); err != nil && ctx.Err() == nil {
			f.log.ErrorContext(ctx, "witness round", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round sends the latest checkpoint to every witness, unless a round was
// already run for it, and records what they cosigned.
func (f *Feeder) Round(ctx context.Context) error {
	cp, err := f.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return err
	}
	text := string(noteText(cp.Note))
	f.mu.Lock()
	seen := text == f.lastText
	f.mu.Unlock()
	if seen {
		return nil
	}
	logOnly := logSignatureOnly(cp.Note, cp.Checkpoint.Origin)
	var wg sync.WaitGroup
	lines := make([][]byte, len(f.cfg.Endpoints))
	for i, e := range f.cfg.Endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sigs, err := f.feed(ctx, e, cp.Checkpoint, logOnly)
			if err != nil {
				f.count(e.Name(), false)
				f.log.WarnContext(ctx, "witness did not cosign the checkpoint", slog.String("witness", e.Name()),
					slog.String("url", e.URL), slog.Uint64("size", cp.Checkpoint.Size), slog.String("error", err.Error()))
				return
			}
			f.count(e.Name(), true)
			lines[i] = sigs
		}()
	}
	wg.Wait()
	witnessed := append([]byte(nil), logOnly...)
	for _, l := range lines {
		witnessed = append(witnessed, l...)
	}
	f.mu.Lock()
	f.lastText = text
	f.done = &audit.SignedCheckpoint{Note: witnessed, Checkpoint: cp.Checkpoint}
	f.mu.Unlock()
	return nil
}

// feed runs the protocol with one witness: send the checkpoint with a
// proof from the size the witness has; on 409, learn its size and try
// once more. It returns the witness's verified cosignature line.
func (f *Feeder) feed(ctx context.Context, e Endpoint, cp tlog.Checkpoint, signed []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.RoundTimeout)
	defer cancel()
	f.mu.Lock()
	old := f.sizes[e.VKey]
	f.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if old > cp.Size {
			return nil, fmt.Errorf("the witness has cosigned a tree of %d entries but the log has %d: the log was rolled back or forked", old, cp.Size)
		}
		var proof [][]byte
		if old > 0 && old < cp.Size {
			p, err := f.cfg.Log.ConsistencyProof(ctx, old, cp.Size)
			if err != nil {
				return nil, fmt.Errorf("consistency proof %d→%d: %w", old, cp.Size, err)
			}
			proof = p
		}
		sigs, err := addCheckpoint(ctx, f.cfg.Client, e.URL, old, proof, signed)
		var ce *ConflictError
		if errors.As(err, &ce) && attempt == 0 && ce.Size != old {
			old = ce.Size
			f.rememberSize(ctx, e, old)
			continue
		}
		if errors.As(err, &ce) && ce.Size == old {
			return nil, fmt.Errorf("the witness refuses: it has cosigned a different tree of %d entries (a fork, or a log restored from an old backup)", old)
		}
		if err != nil {
			return nil, err
		}
		line, err := f.store(ctx, e, signed, sigs)
		if err != nil {
			return nil, err
		}
		f.rememberSize(ctx, e, cp.Size)
		return line, nil
	}
}

// store keeps the witness's own cosignature line from sigs (others are
// ignored, as the protocol requires); audit.Log.AddCosignature verifies it
// with the witness's key before storing it.
func (f *Feeder) store(ctx context.Context, e Endpoint, signed, sigs []byte) ([]byte, error) {
	prefix := "— " + e.Name() + " "
	for _, l := range strings.SplitAfter(string(sigs), "\n") {
		if !strings.HasPrefix(l, prefix) || !strings.HasSuffix(l, "\n") {
			continue
		}
		cosigned := append(append([]byte(nil), signed...), l...)
		if err := f.cfg.Log.AddCosignature(ctx, cosigned); err != nil {
			return nil, fmt.Errorf("store its cosignature: %w", err)
		}
		return []byte(l), nil
	}
	return nil, fmt.Errorf("its answer holds no cosignature by %s that verifies", e.Name())
}

func (f *Feeder) rememberSize(ctx context.Context, e Endpoint, size uint64) {
	f.mu.Lock()
	f.sizes[e.VKey] = size
	f.mu.Unlock()
	f.size.WithLabelValues(e.Name()).Set(float64(size))
	if err := f.cfg.Store.PutLogWitnessSize(ctx, e.VKey, e.URL, size, f.cfg.Now()); err != nil {
		f.log.ErrorContext(ctx, "store witness state", slog.String("witness", e.Name()), slog.String("error", err.Error()))
	}
}

// Checkpoint returns the checkpoint to serve: the latest one once its
// witness round has finished; while a round runs, the previous witnessed
// one, so that clients see cosignatures. It never serves a checkpoint
// older than one it served before, and falls back to the latest when no
// round finished within two round timeouts (a stuck feeder must not stop
// the log from being read).
func (f *Feeder) Checkpoint(ctx context.Context) (audit.SignedCheckpoint, error) {
	latest, err := f.cfg.Log.Checkpoint(ctx)
	if err != nil {
		return latest, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	choice := latest
	if d := f.done; d != nil && !bytes.Equal(noteText(d.Note), noteText(latest.Note)) &&
		f.cfg.Now().Sub(d.Checkpoint.Time) < 2*f.cfg.RoundTimeout+f.cfg.PollEvery+time.Second &&
		!older(d.Checkpoint, f.served) {
		choice = *d
	}
	if older(f.served, choice.Checkpoint) {
		f.served = choice.Checkpoint
	}
	return choice, nil
}

// older reports whether a was signed before b.
func older(a, b tlog.Checkpoint) bool {
	return a.Size < b.Size || (a.Size == b.Size && a.Time.Before(b.Time))
}

// noteText returns the text of a signed note (through the blank line).
func noteText(n []byte) []byte {
	if i := bytes.Index(n, []byte("\n\n")); i >= 0 {
		return n[:i+1]
	}
	return n
}

// logSignatureOnly returns the signed note with only the log's signature
// lines (named origin): what a witness is sent.
func logSignatureOnly(signed []byte, origin string) []byte {
	text := noteText(signed)
	out := append(append([]byte(nil), text...), '\n')
	for _, l := range strings.SplitAfter(string(signed[min(len(signed), len(text)+1):]), "\n") {
		if strings.HasPrefix(l, "— "+origin+" ") {
			out = append(out, l...)
		}
	}
	return out
}
