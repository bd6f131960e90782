package api_test

import (
	"context"
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
