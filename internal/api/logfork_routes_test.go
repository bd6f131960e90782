package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/change"
)

// forkAuthn maps a token to a person: "<role>-<mfa age in seconds>".
type forkAuthn struct{}

func (forkAuthn) Authenticate(_ context.Context, token, _ string) (wire.Principal, error) {
	role, age, _ := strings.Cut(token, "-")
	d, _ := time.ParseDuration(age + "s")
	return wire.Principal{Kind: "person", ID: "p-" + role, Name: role, Roles: []string{role}, MFAAt: time.Now().Add(-d)}, nil
}

type allowAll struct{}

func (allowAll) Authorize(context.Context, wire.Principal, string, api.Resource, map[string]any) (bool, []string, error) {
	return true, nil, nil
}

type fakeForker struct{ actors []string }

func (f *fakeForker) ProposeLogFork(_ context.Context, by wire.Principal, reason string) (change.View, error) {
	f.actors = append(f.actors, by.Actor())
	return change.View{Request: change.Request{ID: "cr_fork", Kind: change.KindLogFork, State: change.Pending, Summary: reason}}, nil
}

// TestLogForkIsAdminOnlyWithFreshMFAWhateverThePolicy: even under a
// policy that allows everything, only an admin whose second factor is
// under 5 minutes old may ask to fork the log (and asking makes a change
// request: 202); while the server is halted the fork
// route answers and every other write is refused with the sentence.
func TestLogForkIsAdminOnlyWithFreshMFAWhateverThePolicy(t *testing.T) {
	f := &fakeForker{}
	why := "the database holds 88 entries but this server signed a checkpoint of 250"
	s, err := api.New(api.Config{Authenticator: forkAuthn{}, Proofs: logProofs{}, Authorizer: allowAll{}, Halted: func() string { return why }},
		api.LogForkRoutes(f), []api.Route{{Pattern: "POST /v1/other", Action: "whoami", Handle: func(c *api.Call) error { return c.JSON(200, "changed") }}})
	if err != nil {
		t.Fatal(err)
	}
	call := func(path, token, body string) (int, string) {
		req := httptest.NewRequest("POST", "https://api.test"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", "proof")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	for _, tc := range []struct {
		name, token, body string
		code              int
		want              string
	}{
		{"an operator", "operator-10", `{"reason":"r"}`, 403, "admin_only"},
		{"an admin without fresh MFA", "admin-600", `{"reason":"r"}`, 403, "mfa_required"},
		{"no reason", "admin-10", `{"reason":"  "}`, 400, "bad_reason"},
		{"an admin with fresh MFA", "admin-10", `{"reason":"restored backup"}`, 202, `"id":"cr_fork"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call("/v1/log/fork", tc.token, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("fork = %d %s; want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
	if len(f.actors) != 1 || f.actors[0] != "person:p-admin" {
		t.Errorf("forks recorded = %v, want one by person:p-admin", f.actors)
	}
	code, body := call("/v1/other", "admin-10", `{}`)
	var p wire.Problem
	_ = json.Unmarshal([]byte(body), &p)
	if code != http.StatusServiceUnavailable || p.Code != "log_refusing" || !strings.Contains(p.Detail, why) {
		t.Errorf("a write while halted = %d %s; want 503 log_refusing with the sentence", code, body)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "https://api.test/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), why) {
		t.Errorf("/readyz while halted = %d %s", rec.Code, rec.Body)
	}
}
