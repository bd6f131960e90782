package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadRejectsUnknownKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("listen: 127.0.0.1:9000\nlisen: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("Load = %v, want an error naming the unknown key", err)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("listen: 127.0.0.1:9000\ndata_dir: /a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"INTERLOCK_DATA_DIR": "/b"}
	got, err := Load(p, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Listen: "127.0.0.1:9000", DataDir: "/b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      Config
		wantErr string
	}{
		{"zero value is valid", Config{}, ""},
		{"defaults are valid", Config{}.WithDefaults(), ""},
		{"bad listen", Config{Listen: "8443"}, "listen"},
		{"store must be postgres", Config{Store: "mysql://x"}, "postgres://"},
		{"session too long", Config{SessionTTL: 30 * 24 * time.Hour}, "session_ttl"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestValidateRefusesEmptyScrapeTokenHash: the SHA-256 of nothing (what
// `printf %s "$TOKEN" | sha256sum` prints when TOKEN is unset) would let
// an empty bearer token read /metrics.
func TestValidateRefusesEmptyScrapeTokenHash(t *testing.T) {
	err := Config{MetricsTokenSHA256: []string{"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "metrics_token_sha256[0]") || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Validate() = %v, want a refusal of the empty token's hash", err)
	}
}
