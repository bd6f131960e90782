package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/config"
)

var _ = register(newServeCmd)

// serveOpenFiles is the limit on open files serve asks for: twenty
// thousand agent connections and the rest.
const serveOpenFiles = 32768

func newServeCmd(e *env) *cobra.Command {
	var file string
	var flags config.Config
	var verbose bool
	var cpuProfile, profileDir string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane (HTTPS; embedded SQLite in --data unless --store postgres://…)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file, os.Getenv)
			if err != nil {
				return err
			}
			// Flags win over the file and the environment.
			f := cmd.Flags()
			if f.Changed("listen") {
				cfg.Listen = flags.Listen
			}
			if f.Changed("data") {
				cfg.DataDir = flags.DataDir
			}
			if f.Changed("store") {
				cfg.Store = flags.Store
			}
			if f.Changed("server-name") {
				cfg.ServerNames = flags.ServerNames
			}
			if f.Changed("unseal-passphrase-file") {
				cfg.UnsealPassphraseFile = flags.UnsealPassphraseFile
			}
			if f.Changed("checkpoint-interval") {
				cfg.CheckpointInterval = flags.CheckpointInterval
			}
			if f.Changed("root-key-env") {
				cfg.RootKeyEnv = flags.RootKeyEnv
			}
			if f.Changed("log-origin") {
				cfg.LogOrigin = flags.LogOrigin
			}
			if f.Changed("log-witness") {
				cfg.LogWitnesses = flags.LogWitnesses
			}
			if f.Changed("log-witness-ca") {
				cfg.LogWitnessCAFiles = flags.LogWitnessCAFiles
			}
			if f.Changed("advertise") {
				cfg.Advertise = flags.Advertise
			}
			if cpuProfile != "" {
				// For interlock bench fleet --cpuprofile: the server's own
				// CPU profile, until it stops.
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			// One descriptor per agent connection: room for a large fleet.
			if got, warn := raiseOpenFiles(serveOpenFiles); warn != "" {
				log.Warn(fmt.Sprintf("this server can hold about %d agent connections: it may open only %d files (ulimit -n) and could not raise that to %d; for a larger fleet raise the limit (ulimit -Hn, or LimitNOFILE= in a systemd unit)",
					max(int(got)-1024, 0), got, serveOpenFiles))
			}
			if profileDir != "" {
				pctx, stop := context.WithCancel(e.ctx)
				defer stop()
				go profileOnSignal(pctx, profileDir, log)
			}
			a, err := app.New(e.ctx, cfg, app.Options{Log: log})
			if err != nil {
				return err
			}
			defer a.Close()
			return a.Serve(e.ctx, func(r app.Ready) {
				if e.json {
					_ = e.printJSON(r)
					return
				}
				e.printf("Interlock is serving on %s\n", r.URL)
				e.printf("CA fingerprint: %s\n", r.CAFingerprint)
				e.printf("Log key:        %s\n", r.LogKey)
				if r.SeparationWarning != "" {
					e.printf("\nWARNING: %s\n", r.SeparationWarning)
				}
				if r.BootstrapCode != "" {
					e.printf("\nNo one has an account yet. Create the first admin within %s with this one-time code:\n\n", time.Until(r.BootstrapExpires).Round(time.Minute))
					e.printf("  interlock bootstrap --server %s --ca-fingerprint %s --code %s --user admin\n\n", r.URL, r.CAFingerprint, r.BootstrapCode)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "YAML config file (unknown keys are errors)")
	cmd.Flags().StringVar(&flags.Listen, "listen", "", "HTTPS address (default 127.0.0.1:8443)")
	cmd.Flags().StringVar(&flags.DataDir, "data", "", "data directory (default ./interlock-data)")
	cmd.Flags().StringVar(&flags.Store, "store", "", "PostgreSQL URL (postgres://…); default: SQLite in the data directory")
	cmd.Flags().StringSliceVar(&flags.ServerNames, "server-name", nil, "extra DNS names or IPs for the server certificate")
	cmd.Flags().StringVar(&flags.UnsealPassphraseFile, "unseal-passphrase-file", "", "derive the root key from the passphrase in this file")
	cmd.Flags().DurationVar(&flags.CheckpointInterval, "checkpoint-interval", 0, "how often the log signs a checkpoint (default 10s)")
	cmd.Flags().StringVar(&flags.RootKeyEnv, "root-key-env", "", "read the root key from this environment variable (for containers)")
	cmd.Flags().StringVar(&flags.LogOrigin, "log-origin", "", "the log's name in its checkpoints (default interlock/log)")
	cmd.Flags().StringSliceVar(&flags.LogWitnesses, "log-witness", nil, "a witness whose cosignatures the log keeps: its verifier key, or URL+VKEY to push every checkpoint to that C2SP tlog-witness (repeatable)")
	cmd.Flags().StringSliceVar(&flags.LogWitnessCAFiles, "log-witness-ca", nil, "PEM certificate to trust for witnesses' HTTPS, e.g. a witness's tls.crt (repeatable)")
	cmd.Flags().StringVar(&flags.Advertise, "advertise", "", "with several servers on one PostgreSQL: the https:// URL agents reach this server at (default https://LISTEN)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log debug messages (every authorization decision)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the server to this file until it stops (for interlock bench fleet)")
	_ = cmd.Flags().MarkHidden("cpuprofile")
	cmd.Flags().StringVar(&profileDir, "profile-dir", "", "on SIGUSR1 start a CPU profile in this directory, on SIGUSR2 stop it and write a heap profile (for interlock bench fleet)")
	_ = cmd.Flags().MarkHidden("profile-dir")
	return cmd
}
