package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
)

// metricsTokenHashes decodes the configured scrape-token hashes
// (config.Validate has checked them).
func metricsTokenHashes(hexes []string) [][32]byte {
	var out [][32]byte
	for _, h := range hexes {
		var b [32]byte
		if n, err := hex.Decode(b[:], []byte(h)); err == nil && n == 32 {
			out = append(out, b)
		}
	}
	return out
}

// activeStates are the operation states someone may have to act on; the
// terminal ones only grow and are in the log.
var activeStates = []ops.OpState{ops.OpPending, ops.OpReady, ops.OpRunning, ops.OpHalted, ops.OpAttention}

var (
	descOpsByState = prometheus.NewDesc("interlock_operations", "Operations in each state that is not final.", []string{"state"}, nil)
	descWaiting    = prometheus.NewDesc("interlock_approvals_waiting",
		"Operations and change requests waiting for approval.", []string{"kind"}, nil)
	descOldest = prometheus.NewDesc("interlock_approvals_oldest_wait_seconds",
		"How long the oldest operation or change request has waited for approval (0 when none waits).", []string{"kind"}, nil)
	descAgents        = prometheus.NewDesc("interlock_agents_connected", "Agents holding a live connection to this server.", nil, nil)
	descLogSize       = prometheus.NewDesc("interlock_log_entries", "Entries integrated into the audit log's Merkle tree.", nil, nil)
	descCheckpointAge = prometheus.NewDesc("interlock_log_checkpoint_age_seconds",
		"Age of the newest signed checkpoint; it should stay near checkpoint_interval.", nil, nil)
	descScrapeErrors = prometheus.NewDesc("interlock_metrics_scrape_errors",
		"Figures this scrape could not read (each is logged).", nil, nil)
)

// fleetCollector reads the figures an operator pages on at scrape time,
// from the store, the hub and the log, within 5 s.
type fleetCollector struct{ a *App }

func (c fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOpsByState, descWaiting, descOldest, descAgents, descLogSize, descCheckpointAge, descScrapeErrors} {
		ch <- d
	}
}

func (c fleetCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := a.now()
	errs := 0
	fail := func(what string, err error) {
		errs++
		a.log.ErrorContext(ctx, "metrics: read "+what, slog.String("error", err.Error()))
	}
	if list, err := a.Ops.List(ctx, ops.OperationFilter{States: activeStates}); err != nil {
		fail("operations", err)
	} else {
		counts := map[ops.OpState]int{}
		var oldest time.Time
		for _, op := range list {
			counts[op.State]++
			if op.State == ops.OpPending && (oldest.IsZero() || op.CreatedAt.Before(oldest)) {
				oldest = op.CreatedAt
			}
		}
		for _, s := range activeStates {
			ch <- prometheus.MustNewConstMetric(descOpsByState, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(counts[ops.OpPending]), "operation")
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age(now, oldest), "operation")
	}
	if list, err := a.Changes.List(ctx, change.Filter{States: []change.State{change.Pending}}); err != nil {
		fail("change requests", err)
	} else {
		var oldest time.Time
		n := 0
		for _, r := range list {
			if r.State != change.Pending || !now.Before(r.ExpiresAt) {
				continue // expired, though nobody touched it yet
			}
			n++
			if oldest.IsZero() || r.CreatedAt.Before(oldest) {
				oldest = r.CreatedAt
			}
		}
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(n), "change")
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age(now, oldest), "change")
	}
	ch <- prometheus.MustNewConstMetric(descAgents, prometheus.GaugeValue, float64(a.Hub.ConnectedCount()))
	if n, err := a.Audit.IntegratedSize(ctx); err != nil {
		fail("log size", err)
	} else {
		ch <- prometheus.MustNewConstMetric(descLogSize, prometheus.GaugeValue, float64(n))
	}
	if cp, err := a.Audit.Checkpoint(ctx); err != nil {
		fail("checkpoint", err)
	} else {
		ch <- prometheus.MustNewConstMetric(descCheckpointAge, prometheus.GaugeValue, age(now, cp.Checkpoint.Time))
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.GaugeValue, float64(errs))
}

func age(now, t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return max(now.Sub(t).Seconds(), 0)
}

// stepFailures counts failed steps as their entries join the log
// (op.step_results, op.step_settled and op.step_marked with state failed).
func stepFailures(l *audit.Log) prometheus.Collector {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "interlock_step_failures_total",
		Help: "Steps that failed on a host (non-zero exit, timeout, lost host settled as failed), counted as the log records them."})
	l.OnSequenced(func(es []audit.StoredEntry) {
		for _, e := range es {
			if e.Kind == "op.step_results" || e.Kind == "op.step_result" {
				// Results, batched or (older) one per host.
				steps, _ := exec.LoggedSteps(e.Kind, e.Data)
				for _, s := range steps {
					if s.State == string(ops.StepFailed) {
						c.Inc()
					}
				}
				continue
			}
			if e.Kind != "op.step_settled" && e.Kind != "op.step_marked" {
				continue
			}
			var d struct {
				State string `json:"state"`
			}
			if json.Unmarshal(e.Data, &d) == nil && d.State == string(ops.StepFailed) {
				c.Inc()
			}
		}
	})
	return c
}

// unready is /readyz's check beyond the log's signer: the database must
// answer a query within 2 s. The driver's error goes to the log, not to
// the unauthenticated caller.
func (a *App) unready(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var one int
	if err := a.db.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		a.log.ErrorContext(ctx, "readiness: the database does not answer", slog.String("error", err.Error()))
		return "the database does not answer (the server's log says why)"
	}
	return ""
}
