package cli_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/dpop"
)

// sendRaw sends body to method url as sc (nil: no credentials) and returns
// the status and content type.
func sendRaw(t *testing.T, hc *http.Client, sc *signedClient, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if sc != nil {
		proof, err := dpop.NewProof(sc.key, method, url, sc.token, time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "DPoP "+sc.token)
		req.Header.Set("DPoP", proof)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// TestBadInputChangesNothing sends every kind of bad body to every route
// that takes one, as an admin whom policy allows everything: each answer is
// a 4xx problem document, never a 5xx, and the log — which every state
// change must append to in its own transaction — does not grow.
func TestBadInputChangesNothing(t *testing.T) {
	q := startServer(t, "")
	q.setUp(3)
	admin := q.signedClient("admin")
	hc := q.httpClient()
	logSize := func() uint64 {
		cp, err := q.app.Audit.Sync(q.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Size
	}
	before := logSize()
	bodies := map[string]string{
		"malformed JSON": `{"name": `,
		"unknown field":  `{"no_such_field": 1}`,
		"wrong type":     `[1, 2, 3]`,
		"empty":          ``,
		"oversized":      `{"reason": "` + strings.Repeat("x", 2<<20) + `"}`,
		"trailing data":  `{} {}`,
	}
	for _, rt := range q.app.API.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if method == "GET" || rt.Pattern == "POST /v1/logout" {
			continue // logout takes no body: any call is a valid logout
		}
		url := q.ready.URL + wildcard.ReplaceAllString(path, "probe")
		for name, body := range bodies {
			t.Run(rt.Pattern+"/"+name, func(t *testing.T) {
				sc := admin
				if rt.Agent {
					sc = nil // agents are refused before their body is read
				}
				status, ct := sendRaw(t, hc, sc, method, url, body)
				if status < 400 || status >= 500 {
					t.Errorf("status %d, want a 4xx", status)
				}
				if ct != "application/problem+json" {
					t.Errorf("content type %q, want application/problem+json", ct)
				}
			})
		}
	}
	// Bad values in well-formed requests, through the CLI.
	for _, args := range [][]string{
		{"run", "no-such-runbook", "--param", "service=billing", "--param", "count=1", "--reason", "x"},
		{"run", "remove-capacity", "--param", "service=no-such-service", "--param", "count=1", "--reason", "x"},
		{"run", "remove-capacity", "--param", "service=billing", "--param", "count=0", "--reason", "x"},
		{"run", "remove-capacity", "--param", "service=billing", "--param", "count=many", "--reason", "x"},
		{"run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--param", "colour=red", "--reason", "x"},
		{"service", "set", "billing", "--min-healthy", "150%"},
		{"user", "invite", "someone", "--role", "superuser"},
		{"join-token", "create", "--services", "billing", "--ttl", "9999h"},
	} {
		code, out, errs := q.as("admin", args...)
		if code == 0 {
			t.Errorf("interlock %s succeeded:\n%s", strings.Join(args, " "), out)
		}
		if strings.Contains(errs, "internal") || strings.Contains(errs, "500") {
			t.Errorf("interlock %s: %s", strings.Join(args, " "), errs)
		}
	}
	// Parameter errors are refused before planning: nothing is recorded.
	if after := logSize(); after != before {
		kinds := q.auditKinds("")
		t.Errorf("bad input grew the log from %d to %d entries (kinds now %v)", before, after, kinds)
	}
}
