package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/api"
)

// /readyz answers 503 with the sentence while the server's own check says
// it cannot serve (a database that does not answer), and 200 once it can.
func TestReadyzReportsUnready(t *testing.T) {
	why := ""
	s, err := api.New(api.Config{Authenticator: forkAuthn{}, Proofs: logProofs{}, Authorizer: allowAll{},
		Unready: func(context.Context) string { return why }})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "https://api.test/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("ready: %d %s", code, body)
	}
	why = "the database does not answer (the server's log says why)"
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, why) {
		t.Fatalf("unready: %d %s", code, body)
	}
	if code, _ := func() (int, string) {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "https://api.test/healthz", nil))
		return rec.Code, ""
	}(); code != http.StatusOK {
		t.Errorf("/healthz while unready = %d; liveness is not readiness", code)
	}
}

// TestMetricsRefusesEmptyScrapeToken: an admin who computed a scrape
// token's hash from an unset variable (printf %s "$TOKEN" | sha256sum)
// configured the SHA-256 of nothing; an empty or blank bearer token still
// does not read /metrics.
func TestMetricsRefusesEmptyScrapeToken(t *testing.T) {
	empty := sha256.Sum256(nil)
	s, err := api.New(api.Config{Authenticator: forkAuthn{}, Proofs: logProofs{}, Authorizer: allowAll{},
		Metrics:            http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("interlock_secret_figure 1\n")) }),
		MetricsTokenHashes: [][32]byte{empty}})
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"Bearer", "Bearer ", "Bearer    ", "bearer \t"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "https://api.test/metrics", nil)
		req.Header.Set("Authorization", auth)
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "interlock_secret_figure") {
			t.Errorf("Authorization %q: %d %s", auth, rec.Code, rec.Body.String())
		}
	}
}

// TestMetricsIgnoresTokenInQuery: a scrape token belongs in the
// Authorization header (query strings end up in proxies' and browsers'
// logs); in the URL it opens nothing, nor does a token's hash, nor a second
// Authorization header behind a wrong first one.
func TestMetricsIgnoresTokenInQuery(t *testing.T) {
	const token = "scrape-0123456789abcdef"
	sum := sha256.Sum256([]byte(token))
	s, err := api.New(api.Config{Authenticator: forkAuthn{}, Proofs: logProofs{}, Authorizer: allowAll{},
		Metrics:            http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("interlock_secret_figure 1\n")) }),
		MetricsTokenHashes: [][32]byte{sum}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string, auth ...string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", url, nil)
		for _, a := range auth {
			req.Header.Add("Authorization", a)
		}
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && strings.Contains(rec.Body.String(), "interlock_secret_figure") {
			t.Errorf("%s: a refusal carries the figures", url)
		}
		return rec.Code
	}
	if code := get("https://api.test/metrics", "Bearer "+token); code != http.StatusOK {
		t.Fatalf("with the token in the header: %d", code)
	}
	for name, code := range map[string]int{
		"token in the query":        get("https://api.test/metrics?token=" + token),
		"access_token in the query": get("https://api.test/metrics?access_token=" + token),
		"the hash as the token":     get("https://api.test/metrics", "Bearer "+hex.EncodeToString(sum[:])),
		"a wrong header first":      get("https://api.test/metrics", "Bearer wrong", "Bearer "+token),
		"a token with a suffix":     get("https://api.test/metrics", "Bearer "+token+"x"),
		"a token's prefix":          get("https://api.test/metrics", "Bearer "+token[:len(token)-1]),
	} {
		if code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
}
