package cli

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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/witness"
)

var _ = register(func(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "Run a C2SP tlog-witness that cosigns a log's checkpoints only if they extend what it saw",
		Long: "A witness keeps, for each log it trusts, the latest checkpoint it cosigned, and cosigns a new one only\n" +
			"with a consistency proof from that one: a log that shows two histories cannot get both witnessed.\n" +
			"Anyone can run one; the log pushes its checkpoints to it (`interlock serve --log-witness URL+VKEY`).",
	}
	cmd.AddCommand(witnessServeCmd(e))
	return cmd
})

// witnessReady is `witness serve --json`'s first line.
type witnessReady struct {
	URL            string `json:"url"`
	VerifierKey    string `json:"verifier_key"`
	TLSCertificate string `json:"tls_certificate,omitempty"`
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
}

func witnessServeCmd(e *env) *cobra.Command {
	var logKeys, tlsHosts []string
	var state, listen, keyFile, name string
	var insecureHTTP bool
	cmd := &cobra.Command{
		Use:   "serve --log-key VKEY --state DIR [--listen ADDR] [--key FILE] [--name NAME]",
		Short: "Serve POST /add-checkpoint (C2SP tlog-witness) over HTTPS for the logs named by --log-key",
		Long: "Serves the C2SP tlog-witness protocol for each log named by --log-key (the log's signed-note\n" +
			"verifier key, as `interlock serve` prints it). The witness's Ed25519 key is created in --state on first\n" +
			"start (0600) and its verifier key printed: give it to the log (`--log-witness URL+VKEY`) and to the\n" +
			"people who check cosignatures (`interlock log verify --witness VKEY`). HTTPS uses a self-made\n" +
			"certificate (--state/tls.crt: give it to the log with --log-witness-ca). --insecure-http serves plain\n" +
			"HTTP and is allowed only on a loopback address.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				return errors.New("--state DIR is required: the witness keeps its key and every log's latest checkpoint there")
			}
			if len(logKeys) == 0 {
				return errors.New("--log-key VKEY is required: the verifier key of each log this witness cosigns")
			}
			if err := os.MkdirAll(state, 0o700); err != nil {
				return fmt.Errorf("create state directory: %w", err)
			}
			if keyFile == "" {
				keyFile = filepath.Join(state, "witness.key")
			}
			keys := make([]string, 0, len(logKeys))
			for _, k := range logKeys {
				keys = append(keys, readKeyOrFile(k))
			}
			host, _, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q is not HOST:PORT: %v", listen, err)
			}
			if insecureHTTP {
				if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
					return fmt.Errorf("--insecure-http serves plain HTTP and is allowed only on a loopback address, not %q", host)
				}
			}
			if name == "" {
				if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
					hn, _ := os.Hostname()
					name = strings.ToLower(strings.NewReplacer("+", "-", " ", "-").Replace(hn)) + "/witness"
				}
			}
			signer, created, err := witness.LoadOrCreateKey(keyFile, name)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(e.stderr, nil))
			w, err := witness.New(witness.Config{Logs: keys, StateDir: state, Signer: signer, Log: log})
			if err != nil {
				return err
			}
			ready := witnessReady{VerifierKey: signer.VerifierKey()}
			srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
				WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
			scheme := "http"
			if !insecureHTTP {
				certFile := filepath.Join(state, "tls.crt")
				cert, fp, err := witness.LoadOrCreateTLS(certFile, filepath.Join(state, "tls.key"), append([]string{host}, tlsHosts...))
				if err != nil {
					return err
				}
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				scheme, ready.TLSCertificate, ready.TLSFingerprint = "https", certFile, fp
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			ready.URL = scheme + "://" + ln.Addr().String()
			if e.json {
				_ = e.printJSON(ready)
			} else {
				if created {
					e.printf("Created the witness key %s (0600).\n", keyFile)
				}
				e.printf("Witness is serving on %s\n", ready.URL)
				e.printf("Witness key:  %s\n", ready.VerifierKey)
				if ready.TLSCertificate != "" {
					e.printf("TLS certificate: %s (%s)\n", ready.TLSCertificate, ready.TLSFingerprint)
				}
				e.printf("Log servers add it with:\n  interlock serve --log-witness '%s+%s'", ready.URL, ready.VerifierKey)
				if ready.TLSCertificate != "" {
					e.printf(" --log-witness-ca %s", ready.TLSCertificate)
				}
				e.printf("\n")
			}
			return serveUntilDone(e.ctx, srv, ln, !insecureHTTP)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&logKeys, "log-key", nil, "verifier key of a log to witness, or a file holding it (repeatable)")
	f.StringVar(&state, "state", "", "directory for the witness key, its TLS certificate and each log's latest cosigned checkpoint")
	f.StringVar(&listen, "listen", "127.0.0.1:8444", "address to serve on")
	f.StringVar(&keyFile, "key", "", "witness private key file (default STATE/witness.key; created on first start)")
	f.StringVar(&name, "name", "", "the witness's name, fixed when its key is created (default HOSTNAME/witness)")
	f.StringSliceVar(&tlsHosts, "tls-host", nil, "extra DNS names or IPs for the self-made TLS certificate")
	f.BoolVar(&insecureHTTP, "insecure-http", false, "serve plain HTTP (loopback addresses only)")
	return cmd
}

// readKeyOrFile returns the key in file k, or k itself when it names no file.
func readKeyOrFile(k string) string {
	if b, err := os.ReadFile(k); err == nil {
		return strings.TrimSpace(string(b))
	}
	return strings.TrimSpace(k)
}

// serveUntilDone serves on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, useTLS bool) error {
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
