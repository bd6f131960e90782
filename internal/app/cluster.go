package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/cluster"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
)

// Several servers on one PostgreSQL (docs/ARCHITECTURE.md §10). With
// PostgreSQL every server runs in cluster mode: it registers itself, the
// log sequencer and signer, crash recovery and the KMS's periodic work
// run under leases (one server each at a time), and steps reach agents
// connected to other servers through the step queue. With SQLite there is
// one server: none of this runs, and it starts as it always did.

// Notification channels (PostgreSQL LISTEN/NOTIFY) between the servers.
const (
	chanSteps = "interlock_steps" // the step queue changed
	chanOps   = "interlock_ops"   // an operation changed; the payload is its ID
)

// announceOp tells the other servers that opID changed, so that their
// long-polls answer at once.
func (a *App) announceOp(opID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.db.Notify(ctx, chanOps, opID)
}

// Lease names of the work that must have one owner at a time.
const (
	leaseSequencer = "sequencer" // integrates log entries and signs checkpoints
	leaseRecovery  = "recovery"  // recovers operations whose server died
	leasePeriodic  = "periodic"  // scheduled key rotation, key destruction, dual-control expiry
)

// LeaseTTL is the lease period: a server that cannot renew a lease stops
// its work within it, and another takes over after it.
var LeaseTTL = 6 * time.Second

// clusterParts are the pieces cluster mode adds; nil with SQLite.
type clusterParts struct {
	store    store.ClusterStore
	registry *cluster.Registry
	leases   *cluster.Leases
	queue    *cluster.Queue
	ctx      context.Context    // lives until Close
	stop     context.CancelFunc // ends the LISTEN connection
	wake     chan struct{}      // the step queue changed (LISTEN)

	leasesDone <-chan struct{} // closed when the leases' jobs stopped and they were released
	seqReady   chan struct{}   // closed when this server first started the log sequencer
	seqOnce    sync.Once
}

// clustered reports whether this server shares its database with others.
func (a *App) clustered() bool { return a.cluster != nil }

// setupCluster builds the registry and the step queue (before the
// executor, which dispatches through the queue).
func (a *App) setupCluster(ctx context.Context, sealer cluster.Sealer) {
	if a.db.Dialect() != store.Postgres {
		return
	}
	c := &clusterParts{store: a.db.ClusterStore(), seqReady: make(chan struct{})}
	c.ctx, c.stop = context.WithCancel(context.WithoutCancel(ctx)) // the listener ends at Close
	c.registry = cluster.NewRegistry(c.store, cluster.NewServerID(), a.cfg.Advertise, LeaseTTL/3, a.log)
	c.wake = make(chan struct{}, 1)
	notify := func(ctx context.Context) { _ = a.db.Notify(ctx, chanSteps, "") }
	c.queue = cluster.NewQueue(cluster.QueueConfig{Store: c.store, Local: a.Hub, Sealer: sealer, Registry: c.registry,
		NotSent: func(err error) bool {
			var ou interface{ OutcomeUnknown() bool }
			return errors.Is(err, agenthub.ErrUnreachable) && !(errors.As(err, &ou) && ou.OutcomeUnknown())
		},
		Wake: c.wake, Notify: notify, Log: a.log})
	a.cluster = c
}

// listenCluster opens the one LISTEN connection (after the executor is
// built): the step queue's channel wakes its worker and waiters; the
// operations' channel wakes long-polls (ops watch) on this server when
// another server changed the operation. Without it everything still
// works, at the pace of polling.
func (a *App) listenCluster(ctx context.Context) {
	if !a.clustered() {
		return
	}
	c := a.cluster
	if err := a.db.Listen(ctx, func(channel, payload string) {
		switch channel {
		case chanSteps:
			select {
			case c.wake <- struct{}{}:
			default:
			}
		case chanOps:
			a.Exec.Changed(payload)
		}
	}, chanSteps, chanOps); err != nil {
		a.log.WarnContext(ctx, "listen for notifications from the other servers; polling only", slog.String("error", err.Error()))
	}
}

// opsAnnouncer is the executor's Announce: nil with one server.
func (a *App) opsAnnouncer() func(string) {
	if !a.clustered() {
		return nil
	}
	return a.announceOp
}

// dispatcher is what the executor sends steps through.
func (a *App) dispatcher() exec.Dispatcher {
	if a.clustered() {
		return a.cluster.queue
	}
	return a.Hub
}

// runClaims makes one live server at a time run each operation.
func (a *App) runClaims() exec.RunClaims {
	if !a.clustered() {
		return nil
	}
	return runClaims{a.cluster}
}

type runClaims struct{ c *clusterParts }

func (r runClaims) ClaimRun(ctx context.Context, opID string) (bool, error) {
	return r.c.store.ClaimRun(ctx, opID, r.c.registry.ID(), r.c.registry.MaxAge())
}

func (r runClaims) ReleaseRun(ctx context.Context, opID string) error {
	return r.c.store.ReleaseRun(ctx, opID, r.c.registry.ID())
}

// lateResults takes results no local dispatch waits for: first for a step
// queued by any server (its origin waits in the queue), then the
// executor's settling of unknown steps.
type lateResults struct {
	queue *cluster.Queue
	exec  *exec.Engine
}

func (l lateResults) SettleFromAgent(ctx context.Context, hostID string, res wire.StepResult) error {
	if ok, err := l.queue.Deliver(ctx, hostID, res); err != nil {
		return exec.RetryLaterError{StepID: res.StepID}
	} else if ok {
		return nil
	}
	return l.exec.SettleFromAgent(ctx, hostID, res)
}

// serveClustered runs what cluster mode adds until ctx ends: this
// server's registration, the step queue's worker and the leases.
func (a *App) serveClustered(ctx context.Context, url string) error {
	c := a.cluster
	if a.cfg.Advertise == "" {
		c.registry.SetURL(url)
	}
	if err := c.registry.Announce(ctx); err != nil {
		return err
	}
	c.leases = cluster.NewLeases(cluster.LeaseConfig{Store: c.store, Holder: c.registry.ID(), TTL: LeaseTTL, Log: a.log},
		cluster.Job{Name: leaseSequencer, Run: a.runSequencer},
		cluster.Job{Name: leaseRecovery, Run: a.runRecovery},
		cluster.Job{Name: leasePeriodic, Run: func(ctx context.Context, _ int64) { a.runPeriodic(ctx) }},
	)
	go c.registry.Run(ctx)
	go c.queue.Run(ctx)
	c.leasesDone = c.leases.Start(ctx)
	if _, ok := c.leases.Token(leaseSequencer); ok {
		// Like a single server: the log has checked the signer's memory
		// (and refuses, if it must) before this server answers anyone.
		select {
		case <-c.seqReady:
		case <-time.After(15 * time.Second):
			a.log.WarnContext(ctx, "the log sequencer has not started within 15 s; serving anyway")
		case <-ctx.Done():
		}
	}
	return nil
}

// leaveCluster stops this server's operation runs (in-flight steps
// report first) and, if they all stopped in time, removes this server
// from the registry so that another takes its operations over at once;
// otherwise its row expires and they are taken over after MaxAge.
func (a *App) leaveCluster(ctx context.Context) {
	if a.cluster.leasesDone != nil {
		select { // the sequencer signs its last checkpoint and the leases are released
		case <-a.cluster.leasesDone:
		case <-ctx.Done():
		}
	}
	if err := a.Exec.Shutdown(ctx); err != nil {
		a.log.WarnContext(ctx, "operations still had steps in flight at shutdown; another server takes them over when this one's registration expires")
		return
	}
	if err := a.cluster.registry.Leave(ctx); err != nil {
		a.log.WarnContext(ctx, "leave the servers sharing the database", slog.String("error", err.Error()))
	}
}

// fence is the sequencer's fencing check (store.FencedAuditStore).
func (a *App) fence() (string, int64, bool) {
	if a.cluster == nil || a.cluster.leases == nil {
		return leaseSequencer, 0, false
	}
	t, ok := a.cluster.leases.Token(leaseSequencer)
	return leaseSequencer, t, ok
}

// runSequencer integrates and signs while this server holds the
// sequencer lease. Its writes are fenced: a transaction of a server that
// lost the lease fails in the database.
func (a *App) runSequencer(ctx context.Context, _ int64) {
	for {
		err := a.Audit.Start(ctx)
		if err == nil {
			a.cluster.seqOnce.Do(func() { close(a.cluster.seqReady) })
			break
		}
		a.log.ErrorContext(ctx, "start the log sequencer; retrying", slog.String("error", err.Error()))
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
	if a.feeder != nil {
		go a.feeder.Run(ctx) // witnesses get each checkpoint once, from its signer
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), LeaseTTL/3)
	defer cancel()
	if err := a.Audit.Stop(sctx); err != nil && !errors.Is(err, cluster.ErrFenced) {
		a.log.WarnContext(sctx, "stop the log sequencer", slog.String("error", err.Error()))
	}
}

// runRecovery recovers, every second, the operations whose runner server
// died, and settles or returns the steps they had queued.
func (a *App) runRecovery(ctx context.Context, _ int64) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	unclaimed := map[string]int{} // running ops seen without a runner, rounds in a row
	for {
		if err := a.recoverOrphans(ctx, unclaimed); err != nil && ctx.Err() == nil {
			a.log.WarnContext(ctx, "recover operations of servers that went away", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *App) recoverOrphans(ctx context.Context, unclaimed map[string]int) error {
	c := a.cluster
	live, err := c.registry.Live(ctx)
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, s := range live {
		alive[s.ID] = true
	}
	for _, state := range []ops.OpState{ops.OpRunning, ops.OpHalted, ops.OpAttention} {
		list, err := a.Ops.ListByState(ctx, state)
		if err != nil {
			return err
		}
		for _, op := range list {
			holder, err := c.store.RunHolder(ctx, op.ID)
			if err != nil {
				return err
			}
			orphan := holder != "" && !alive[holder]
			if holder == "" && state == ops.OpRunning {
				// Between a state change and its claim there is no runner
				// for a moment; only a running op unclaimed for 3 rounds is.
				unclaimed[op.ID]++
				orphan = unclaimed[op.ID] >= 3
			} else {
				delete(unclaimed, op.ID)
			}
			if !orphan {
				continue
			}
			delete(unclaimed, op.ID)
			a.log.WarnContext(ctx, "recovering an operation whose server went away", slog.String("op", op.ID), slog.String("server", holder))
			if holder != "" {
				if err := c.store.ReleaseRun(ctx, op.ID, holder); err != nil {
					return err
				}
			}
			if err := a.Exec.RecoverOrphan(ctx, op); err != nil {
				return err
			}
		}
	}
	// Steps queued by servers that went away: the result of one that ran
	// settles its step; one that nobody took was never sent.
	orphans, err := c.store.OrphanedSteps(ctx, c.registry.MaxAge())
	if err != nil {
		return err
	}
	for _, q := range orphans {
		switch {
		case q.State == "queued":
			if ok, err := c.store.CancelQueued(ctx, q.StepID); err != nil || !ok {
				continue
			}
			if err := a.Exec.Unsent(ctx, q.StepID); err != nil {
				return err
			}
		case q.State == "done" && q.Outcome == cluster.OutcomeResult:
			var res wire.StepResult
			if err := jsonUnmarshal(q.Result, &res); err != nil {
				_ = c.store.DeleteStep(ctx, q.StepID)
				continue
			}
			err := a.Exec.SettleFromAgent(ctx, q.HostID, res)
			var rl interface{ RetryLater() bool }
			if errors.As(err, &rl) {
				continue // the op is not recovered yet: next round
			}
			_ = c.store.DeleteStep(ctx, q.StepID)
		case q.State == "done":
			_ = c.store.DeleteStep(ctx, q.StepID) // lost or failed: the step stays unknown for its agent's ledger
		}
	}
	return nil
}

// serversRoute answers GET /v1/agent/servers: the URLs of the live
// servers, so agents refresh the list they fail over along.
func (a *App) serversRoute() api.Route {
	return api.Route{Pattern: "GET /v1/agent/servers", Agent: true, Action: policy.ActionAgentReport,
		Resource: func(r *http.Request) api.Resource {
			id, _ := a.Hub.HostIDFromRequest(r)
			return api.Resource{Type: policy.ResourceHost, ID: id}
		},
		Handle: func(c *api.Call) error {
			out := wire.ServerList{Servers: []string{}}
			if a.clustered() {
				live, err := a.cluster.registry.Live(c.R.Context())
				if err != nil {
					return err
				}
				for _, s := range live {
					if strings.HasPrefix(s.URL, "https://") {
						out.Servers = append(out.Servers, s.URL)
					}
				}
			}
			return c.JSON(http.StatusOK, out)
		}}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// fetchSharedCA, with PostgreSQL, writes the CA another server stored in
// the database into an empty data dir, so that every server sharing the
// database uses one CA (agents pin it) and a new server needs only the
// root key. A data dir that already holds a CA is left alone (shareCA
// then checks it is the same one).
func (a *App) fetchSharedCA(ctx context.Context) error {
	if a.db.Dialect() != store.Postgres {
		return nil
	}
	certPEM, sealed, ok, err := a.db.ClusterStore().SharedCA(ctx)
	if err != nil || !ok {
		return err
	}
	dir := filepath.Join(a.cfg.DataDir, "ca")
	if _, err := os.Stat(filepath.Join(dir, pki.CACertFile)); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the CA directory: %w", err)
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, pki.CAKeyFile), sealed, 0o600); err != nil {
		return fmt.Errorf("write the shared CA key: %w", err)
	}
	if err := pki.WriteFileAtomic(filepath.Join(dir, pki.CACertFile), []byte(certPEM), 0o644); err != nil {
		return fmt.Errorf("write the shared CA certificate: %w", err)
	}
	a.log.InfoContext(ctx, "took the CA the other servers share from the database")
	return nil
}

// shareCA stores this server's CA for the others if none is stored, and
// refuses to start with a CA other than the stored one: agents pinned to
// the shared CA could not reach this server.
func (a *App) shareCA(ctx context.Context) error {
	if a.db.Dialect() != store.Postgres {
		return nil
	}
	dir := filepath.Join(a.cfg.DataDir, "ca")
	certPEM, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		return fmt.Errorf("read the CA certificate: %w", err)
	}
	sealed, err := os.ReadFile(filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		return fmt.Errorf("read the CA key: %w", err)
	}
	cs := a.db.ClusterStore()
	if err := cs.PutSharedCA(ctx, string(certPEM), sealed); err != nil {
		return err
	}
	stored, _, _, err := cs.SharedCA(ctx)
	if err != nil {
		return err
	}
	if stored != string(certPEM) {
		return fmt.Errorf("the CA in %s is not the one the other servers sharing this database use; start this server with an empty %s (it takes the shared CA from the database) or copy ca/ from another server", dir, dir)
	}
	return nil
}
