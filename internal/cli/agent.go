package cli

import (
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/agent"
)

var _ = register(newAgentCmd)

func newAgentCmd(e *env) *cobra.Command {
	var cfg agent.Config
	var health string
	var verbose bool
	var servers []string
	var fingerprint string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: enroll with a join token, hold one mTLS connection, run assigned steps",
		Long: `Run the host agent.

On first start the agent makes its own key, enrolls with the one-time join
token (--token, or $INTERLOCK_JOIN_TOKEN to keep it out of process lists)
and keeps its key (0600), certificate and host ID in --data. Later starts
need no token. It then holds one mTLS HTTP/2 connection to the server,
heartbeats every few seconds, and runs the steps it is sent — never the
same step twice, also across restarts.

--count N runs N agents in this process (for tests and the quickstart),
each in --data/agent-01, agent-02, … with its own key, certificate and
connection. They enroll with N comma-separated one-time tokens, as
"interlock join-token create --count N" prints them.

Every agent witnesses the server's audit log: it pins the log's key at
enrollment, keeps the newest checkpoint it verified (--data/log-witness.json)
and checks each heartbeat's checkpoint against it. If the log goes
backwards (a restored backup, a database cut back), forks or carries a bad
signature, the agent refuses every step and reports it, until its operator
has checked the server and restarts it with --accept-log-fork.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.CAFingerprint = fingerprint
			if len(servers) > 0 {
				cfg.Server, cfg.Servers = servers[0], servers[1:]
			}
			if cfg.Token == "" {
				cfg.Token = os.Getenv("INTERLOCK_JOIN_TOKEN")
			}
			cfg.HealthCommand = strings.Fields(health)
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			opts := &slog.HandlerOptions{Level: level}
			if e.json {
				cfg.Log = slog.New(slog.NewJSONHandler(e.stderr, opts))
			} else {
				cfg.Log = slog.New(slog.NewTextHandler(e.stderr, opts))
			}
			if cfg.Count > 1 {
				// A connection per agent, and the pipes of the step
				// processes they run at once (at most 512 in one process).
				if _, warn := raiseOpenFiles(uint64(cfg.Count) + 3072); warn != "" {
					cfg.Log.Warn(warn)
				}
			}
			return agent.Run(e.ctx, cfg)
		},
	}
	cmd.Flags().StringArrayVar(&servers, "server", nil, "server URL, e.g. https://127.0.0.1:8443 (required); repeat it (or separate URLs with commas) for several servers sharing one database: the agent fails over along them and learns the others from them")
	cmd.Flags().StringVar(&fingerprint, "ca-fingerprint", "", "the server CA's fingerprint as interlock serve printed it, SHA256:… (required)")
	_ = cmd.MarkFlagRequired("server")
	_ = cmd.MarkFlagRequired("ca-fingerprint")
	cmd.Flags().StringVar(&cfg.Token, "token", "", "one-time join token from \"interlock join-token create\" (only for the first start)")
	cmd.Flags().StringVar(&cfg.DataDir, "data", "./interlock-agent", "directory for the agent's key, certificate and step ledger (0700)")
	cmd.Flags().IntVar(&cfg.Count, "count", 1, "run this many agents in one process, each with its own identity and connection")
	cmd.Flags().StringVar(&cfg.Hostname, "hostname", "", "hostname to enroll as (default: this machine's; -01, -02, … are appended with --count)")
	cmd.Flags().StringVar(&health, "health-cmd", "", "command (argv split on spaces, no shell) whose failure reports this host unhealthy")
	cmd.Flags().DurationVar(&cfg.HeartbeatInterval, "heartbeat", 5*time.Second, "time between heartbeats")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log debug detail")
	cmd.Flags().BoolVar(&cfg.AcceptLogFork, "accept-log-fork", false, "clear a log alarm (the server's audit log went backwards or forked) after checking the server; the agent refuses every step until then")
	return cmd
}
