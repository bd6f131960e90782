// Package agent is the host agent: it enrolls with a one-time join token
// (TLS pinned to the server's CA fingerprint), keeps its key and client
// certificate in its data directory, holds one mTLS HTTP/2 connection to
// the server (a streaming GET /v1/agent/connect plus heartbeat and result
// POSTs multiplexed on it), and runs the steps it is sent — argv without a
// shell unless the step says so, with a timeout, capped and redacted
// output — never running one StepID twice, across reconnects and restarts.
//
// It MUST NOT import the store, policy, KMS, SQL drivers or cedar-go: a
// host runs only this. Only internal/cli imports it.
package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/pki"
)

// Config configures Run. Server, CAFingerprint and DataDir are required;
// Token is required until the data directory holds an identity.
type Config struct {
	// Server is the control plane's base URL, https://host:port.
	Server string
	// Servers are more servers sharing the same database, tried in turn
	// when the current one cannot be reached (--server repeated). The
	// servers' own list (GET /v1/agent/servers) is added after each connect.
	Servers []string
	// CAFingerprint pins the server's CA: "SHA256:<hex>".
	CAFingerprint string
	// Token is the join token (ilk_join_…). With Count > 1 it is Count
	// tokens separated by commas, one per agent (join tokens enroll one host
	// once; `interlock join-token create --count N` prints them so).
	Token string
	// DataDir holds the identity (key 0600, certificate, host ID) and the
	// ledger of steps already run. With Count > 1 each agent uses
	// DataDir/agent-01, agent-02, ….
	DataDir string
	// Count runs this many agents in one process, each with its own
	// identity, certificate and connection; 0 means 1.
	Count int
	// processSlots, shared by the agents of one Count > 1 process, bounds
	// the step processes they run at once (see maxInProcessSteps).
	processSlots chan struct{}
	// Hostname is reported at enrollment; "" means os.Hostname(). With
	// Count > 1 each agent appends -01, -02, ….
	Hostname string
	// HealthCommand, if set, is run (argv, no shell, 10 s timeout) before
	// each heartbeat; a non-zero exit reports the host unhealthy.
	HealthCommand []string
	// HeartbeatInterval is the time between health probes and, unless the
	// server asks for fewer (a large fleet: wire.HeartbeatResponse
	// NextHeartbeatSeconds), between heartbeats; 0 means 5 s.
	HeartbeatInterval time.Duration
	// StreamIdle ends a connection that has carried no line (the server
	// pings every 15 s) for this long, or for half as long again as the
	// interval the server's last ping announced if that is longer (a
	// server with a large fleet pings every minute); 0 means 45 s.
	StreamIdle time.Duration
	// MaxBackoff caps the wait between reconnects; 0 means 10 s (short, so
	// agents are back soon after a server restart).
	MaxBackoff time.Duration
	// MaxOutputBytes caps any step's output whatever the step asks for,
	// so a result always fits the server's body limit; 0 means 128 KiB.
	MaxOutputBytes int
	// CosignEvery is the least time between two cosignatures of the log's
	// checkpoints by this agent's witness key (a checkpoint is cosigned
	// only when the tree grew); 0 means 1 minute, negative never.
	CosignEvery time.Duration
	// AcceptLogFork clears a log alarm (and the checkpoint kept) at start:
	// the operator has checked the server after the agent saw its audit
	// log go backwards or fork. Until then the agent refuses every step.
	AcceptLogFork bool
	Log           *slog.Logger     // nil discards
	Now           func() time.Time // nil means time.Now
	Rand          io.Reader        // nil means crypto/rand
	// OnHeartbeat, if set, is called after each heartbeat the server
	// answered (interlock bench fleet counts them: a server with a large
	// fleet asks for fewer than one per HeartbeatInterval).
	OnHeartbeat func()
	// OnStepReported, if set, is called with a step's phase once a server
	// took its result (interlock bench fleet times the phases with it).
	OnStepReported func(phase string)
}

func (c *Config) defaults() error {
	all, err := parseServers(c.Server, c.Servers)
	if err != nil {
		return err
	}
	c.Server, c.Servers = all[0], all[1:]
	if _, err := pki.ParseFingerprint(c.CAFingerprint); err != nil {
		return err
	}
	if c.DataDir == "" {
		return errors.New("a data directory (--data) is required: it keeps the agent's key and the steps it has run")
	}
	if c.Count <= 0 {
		c.Count = 1
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
		c.Hostname = h
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.StreamIdle <= 0 {
		c.StreamIdle = 45 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = 128 << 10
	}
	if c.CosignEvery == 0 {
		c.CosignEvery = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return nil
}

// Run runs the agent (or Count agents) until ctx ends, which returns nil,
// or until an agent fails for good (its token was refused, its data
// directory is unusable), which stops every agent and returns the error.
// Network trouble is never fatal: the agent reconnects with backoff.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if cfg.Count == 1 {
		return runOne(ctx, cfg)
	}
	tokens := splitTokens(cfg.Token)
	if len(tokens) > 1 && len(tokens) != cfg.Count {
		return fmt.Errorf("--count %d needs one join token (allowing %d enrollments) or %d comma-separated tokens; got %d", cfg.Count, cfg.Count, cfg.Count, len(tokens))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg.processSlots = make(chan struct{}, maxInProcessSteps)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := 1; i <= cfg.Count; i++ {
		c := cfg
		c.Count = 1
		c.DataDir = filepath.Join(cfg.DataDir, fmt.Sprintf("agent-%02d", i))
		c.Hostname = fmt.Sprintf("%s-%02d", cfg.Hostname, i)
		c.Log = cfg.Log.With(slog.String("agent", fmt.Sprintf("agent-%02d", i)))
		if len(tokens) > 1 {
			c.Token = tokens[i-1]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runOne(ctx, c); err != nil {
				once.Do(func() { first = fmt.Errorf("agent-%02d: %w", i, err); cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

// maxInProcessSteps bounds the step processes that the agents of one
// process (agent --count, bench fleet) run at once. On real hosts each agent
// runs its own; in one process, 10,000 agents starting a step together would
// each hold pipes and a pidfd on top of their connection, past the file
// limit (20,000 here), and fork 10,000 processes on a machine that runs them
// on a few cores anyway. A step waits for a slot before its timeout starts.
var maxInProcessSteps = 512

func splitTokens(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// runOne is the whole life of one agent: the single-agent code path.
func runOne(ctx context.Context, cfg Config) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	id, err := loadIdentity(cfg.DataDir)
	switch {
	case err == nil:
		if !strings.EqualFold(id.CAFingerprint, cfg.CAFingerprint) {
			return fmt.Errorf("%s was enrolled with a server whose CA is %s, not %s; use another --data directory to enroll elsewhere", cfg.DataDir, id.CAFingerprint, cfg.CAFingerprint)
		}
	case errors.Is(err, os.ErrNotExist):
		if cfg.Token == "" {
			return errors.New("this agent is not enrolled yet: pass --token with a join token from `interlock join-token create`")
		}
		id, err = enroll(ctx, cfg)
		if ctx.Err() != nil {
			return nil // stopped while enrolling
		}
		if err != nil {
			return err
		}
	default:
		return err
	}
	a, err := newAgent(cfg, id)
	if err != nil {
		return err
	}
	return a.run(ctx)
}
