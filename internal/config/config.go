// Package config is the server's configuration: a plain struct whose zero
// value works, filled from an optional YAML file, then INTERLOCK_* environment
// variables, then flags, and validated once.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config configures `interlock serve`.
type Config struct {
	// Listen is the HTTPS address; empty means 127.0.0.1:8443.
	Listen string `yaml:"listen"`
	// DataDir holds the SQLite file, the CA and the root key; empty means ./interlock-data.
	DataDir string `yaml:"data_dir"`
	// Store is a postgres:// URL; empty means SQLite in DataDir.
	Store string `yaml:"store"`
	// ServerNames are extra DNS names or IPs for the server certificate.
	ServerNames []string `yaml:"server_names"`
	// SessionTTL is how long a login lasts; 0 means 12 h.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// CheckpointInterval is how often the log publishes a signed
	// checkpoint, even when idle; 0 means 10 s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// UnsealPassphraseFile, if set, derives the root key from the
	// passphrase in this file instead of the root key file in DataDir.
	UnsealPassphraseFile string `yaml:"unseal_passphrase_file"`
	// RootKeyEnv, if set, names an environment variable holding the root
	// key in its text form (for containers); it wins over the file and
	// the passphrase.
	RootKeyEnv string `yaml:"root_key_env"`
	// LogOrigin names the log in its checkpoints, e.g. "interlock.example.com/log";
	// empty means "interlock/log".
	LogOrigin string `yaml:"log_origin"`
	// LogWitnesses are the C2SP cosignature verifier keys of witnesses whose
	// cosignatures the log accepts and keeps beside its checkpoints. A value
	// URL+VKEY (https://…+name+hash+key) also makes the log push every new
	// checkpoint to that C2SP tlog-witness.
	LogWitnesses []string `yaml:"log_witnesses"`
	// LogWitnessCAFiles are PEM certificates trusted, beside the system's
	// roots, for the witnesses' HTTPS (a witness's self-made tls.crt).
	LogWitnessCAFiles []string `yaml:"log_witness_ca"`
	// LogWitnessTimeout bounds one witness's answer; 0 means 10 s.
	LogWitnessTimeout time.Duration `yaml:"log_witness_timeout"`
	// MetricsTokenSHA256 are the hex SHA-256 hashes of the bearer tokens
	// that may scrape /metrics (the tokens themselves are not stored);
	// a signed-in person whose policy allows metrics.read may too.
	MetricsTokenSHA256 []string `yaml:"metrics_token_sha256"`
	// Notifications are the webhook and email sinks (notify.go).
	Notifications Notifications `yaml:"notifications"`
	// Advertise is the URL agents reach this server at when several
	// servers share a PostgreSQL store; empty means https://LISTEN.
	Advertise string `yaml:"advertise"`
	// SSO names the OpenID Connect identity providers people may sign in
	// through (`interlock login --sso`); see SSOIssuer and sso.go.
	SSO []SSOIssuer `yaml:"sso"`
}

// Load reads a YAML file (unknown keys are errors) if path is not empty,
// then applies INTERLOCK_* environment variables through getenv.
func Load(path string, getenv func(string) string) (Config, error) {
	var c Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	for name, dst := range map[string]*string{
		"INTERLOCK_LISTEN":   &c.Listen,
		"INTERLOCK_DATA_DIR": &c.DataDir,
		"INTERLOCK_STORE":    &c.Store,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	return c, nil
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if c.DataDir == "" {
		c.DataDir = "interlock-data"
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 12 * time.Hour
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	return c
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("listen %q: %w", c.Listen, err))
		}
	}
	if c.Store != "" && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://") {
		errs = append(errs, fmt.Errorf("store %q: must be a postgres:// URL (leave it empty for the embedded SQLite)", c.Store))
	}
	if c.SessionTTL < 0 || c.SessionTTL > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("session_ttl %s: must be between 0 and 168h", c.SessionTTL))
	}
	if c.CheckpointInterval < 0 || (c.CheckpointInterval > 0 && c.CheckpointInterval < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("checkpoint_interval %s: must be at least 100ms", c.CheckpointInterval))
	}
	if c.RootKeyEnv != "" && c.UnsealPassphraseFile != "" {
		errs = append(errs, errors.New("root_key_env and unseal_passphrase_file both name a root key: choose one"))
	}
	for i, h := range c.MetricsTokenSHA256 {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			errs = append(errs, fmt.Errorf("metrics_token_sha256[%d]: must be 64 hex digits, the SHA-256 of a scrape token (printf %%s \"$TOKEN\" | sha256sum)", i))
		} else if empty := sha256.Sum256(nil); bytes.Equal(b, empty[:]) {
			// What sha256sum prints for an unset $TOKEN: it would let an
			// empty bearer token scrape.
			errs = append(errs, fmt.Errorf("metrics_token_sha256[%d]: is the SHA-256 of an empty token (was $TOKEN set?); hash a long random token", i))
		}
	}
	if err := c.Notifications.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, validateSSO(c.SSO)...)
	return errors.Join(errs...)
}
