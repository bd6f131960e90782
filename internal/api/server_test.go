package api

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Hand-written fakes for the server's small interfaces.
type fakeAuthn struct{}

func (fakeAuthn) Authenticate(_ context.Context, token, jkt string) (wire.Principal, error) {
	if token != "good" || jkt != "key-1" {
		return wire.Principal{}, errors.New("bad session")
	}
	return wire.Principal{Kind: "person", ID: "p1", Name: "alice", Roles: []string{"viewer"}}, nil
}

type fakeProofs struct{}

func (fakeProofs) Verify(proof, method, url, token string, now time.Time) (string, error) {
	if proof != "proof-for-"+method {
		return "", errors.New("signature does not verify")
	}
	return "key-1", nil
}

// fakeAuthz allows only the actions it lists.
type fakeAuthz map[string]bool

func (a fakeAuthz) Authorize(_ context.Context, p wire.Principal, action string, res Resource, attrs map[string]any) (bool, []string, error) {
	return a[action], nil, nil
}

type echoReq struct {
	Name  string    `json:"name"`
	Count int       `json:"count"`
	At    time.Time `json:"at,omitzero"`
}

func testServer(t *testing.T) *Server {
	t.Helper()
	return testServerLimit(t, 64)
}

func testServerLimit(t *testing.T, maxBody int64) *Server {
	t.Helper()
	routes := []Route{
		{Pattern: "POST /v1/echo", Action: "echo", Handle: func(c *Call) error {
			var in echoReq
			if err := c.Decode(&in); err != nil {
				return err
			}
			return c.JSON(http.StatusOK, in)
		}},
		{Pattern: "GET /v1/secret", Action: "secret.read", Handle: func(c *Call) error { return c.JSON(200, "s") }},
		{Pattern: "GET /v1/panic", Action: "echo", Handle: func(c *Call) error { panic("boom") }},
		{Pattern: "GET /v1/public", Public: true, Handle: func(c *Call) error { return c.JSON(200, "hi") }},
	}
	s, err := New(Config{Authenticator: fakeAuthn{}, Proofs: fakeProofs{}, Authorizer: fakeAuthz{"echo": true}, MaxBodyBytes: maxBody}, routes)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(t *testing.T, s *Server, method, path, body string, authed bool) (int, wire.Problem) {
	t.Helper()
	req := httptest.NewRequest(method, "https://api.test"+path, strings.NewReader(body))
	if authed {
		req.Header.Set("Authorization", "DPoP good")
		req.Header.Set("DPoP", "proof-for-"+method)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var p wire.Problem
	if rec.Code >= 400 {
		if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s: error content type %q, want application/problem+json", method, path, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem body: %v (%s)", err, rec.Body)
		}
	}
	return rec.Code, p
}

func TestRefusals(t *testing.T) {
	s := testServer(t)
	for _, tt := range []struct {
		name, method, path, body string
		authed                   bool
		wantStatus               int
		wantCode                 string
		wantDetail               string // a part of the detail, if given
	}{
		{"no session", "POST", "/v1/echo", `{"name":"x"}`, false, 401, "unauthenticated", ""},
		{"policy denies", "GET", "/v1/secret", "", true, 403, "forbidden", ""},
		{"malformed json", "POST", "/v1/echo", `{"name":`, true, 400, "bad_json", "unexpected EOF"},
		{"unknown field", "POST", "/v1/echo", `{"nmae":"x"}`, true, 400, "unknown_field", `"/nmae"`},
		{"field in another case", "POST", "/v1/echo", `{"Name":"x"}`, true, 400, "unknown_field", `"/Name"`},
		{"duplicate field", "POST", "/v1/echo", `{"name":"x","name":"y"}`, true, 400, "bad_json", "duplicate"},
		{"invalid UTF-8", "POST", "/v1/echo", "{\"name\":\"\xff\"}", true, 400, "bad_json", "UTF-8"},
		{"wrong type", "POST", "/v1/echo", `{"count":"many"}`, true, 400, "bad_json", `field "/count" must be a whole number (int), not a string`},
		{"fraction for a count", "POST", "/v1/echo", `{"count":1.5}`, true, 400, "bad_json", "not the number 1.5"},
		{"not an object", "POST", "/v1/echo", `[]`, true, 400, "bad_json", "the body must be an object, not an array"},
		{"bad time", "POST", "/v1/echo", `{"at":"yesterday"}`, true, 400, "bad_json", `field "/at" must be an RFC 3339 time (a string), not a string: parsing time "yesterday"`},
		{"trailing data", "POST", "/v1/echo", `{"name":"x"} {}`, true, 400, "bad_json", "after top-level value"},
		{"empty body", "POST", "/v1/echo", ``, true, 400, "bad_json", "the body is empty"},
		{"oversized body", "POST", "/v1/echo", `{"name":"` + strings.Repeat("a", 100) + `"}`, true, 413, "body_too_large", "limit of 64 bytes"},
		{"unknown route", "GET", "/v1/nope", "", true, 404, "no_route", ""},
		{"panic becomes a problem", "GET", "/v1/panic", "", true, 500, "internal", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, p := do(t, s, tt.method, tt.path, tt.body, tt.authed)
			if status != tt.wantStatus || p.Code != tt.wantCode {
				t.Errorf("got %d %q (%s), want %d %q", status, p.Code, p.Detail, tt.wantStatus, tt.wantCode)
			}
			if status >= 400 && p.Detail == "" {
				t.Error("problem has no detail")
			}
			if !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("detail %q does not say %q", p.Detail, tt.wantDetail)
			}
		})
	}
	// A problem quotes at most a clipped field name, however long the name.
	status, p := do(t, testServerLimit(t, 1<<20), "POST", "/v1/echo", `{"`+strings.Repeat("x", 50000)+`":1}`, true)
	if status != 400 || p.Code != "unknown_field" || len(p.Detail) > 300 {
		t.Errorf("huge unknown field: %d %s, detail of %d bytes", status, p.Code, len(p.Detail))
	}
}

func TestAcceptsGoodCalls(t *testing.T) {
	s := testServer(t)
	if status, p := do(t, s, "POST", "/v1/echo", `{"name":"x","count":2}`, true); status != 200 {
		t.Errorf("echo = %d %s", status, p.Detail)
	}
	if status, _ := do(t, s, "GET", "/v1/public", "", false); status != 200 {
		t.Errorf("public route = %d, want 200 without a session", status)
	}
}

func TestNewRefusesRouteWithoutAction(t *testing.T) {
	_, err := New(Config{Authenticator: fakeAuthn{}, Proofs: fakeProofs{}, Authorizer: fakeAuthz{}},
		[]Route{{Pattern: "GET /v1/x", Handle: func(*Call) error { return nil }}})
	if err == nil {
		t.Fatal("New accepted a non-public route without a Cedar action")
	}
}

type denials struct{ actions []string }

func (d *denials) RecordDenial(_ context.Context, p wire.Principal, action string, res Resource, ip string) error {
	d.actions = append(d.actions, p.Name+" "+action+" "+ip)
	return nil
}

func TestDenialsAreRecorded(t *testing.T) {
	rec := &denials{}
	s, err := New(Config{Authenticator: fakeAuthn{}, Proofs: fakeProofs{}, Authorizer: fakeAuthz{"echo": true}, Denials: rec},
		[]Route{{Pattern: "GET /v1/secret", Action: "secret.read", Handle: func(c *Call) error { return nil }},
			{Pattern: "GET /v1/ok", Action: "echo", Handle: func(c *Call) error { return nil }}})
	if err != nil {
		t.Fatal(err)
	}
	do(t, s, "GET", "/v1/secret", "", true)
	do(t, s, "GET", "/v1/ok", "", true)
	if want := []string{"alice secret.read 192.0.2.1"}; !reflect.DeepEqual(rec.actions, want) {
		t.Errorf("recorded denials %q, want %q", rec.actions, want)
	}
}

// TestSlowBodyIsCutOff proves a client that trickles its body cannot hold
// a handler past the read deadline (slowloris on the body).
func TestSlowBodyIsCutOff(t *testing.T) {
	s, err := New(Config{Authenticator: fakeAuthn{}, Proofs: fakeProofs{}, Authorizer: fakeAuthz{"echo": true}, ReadTimeout: 200 * time.Millisecond},
		[]Route{{Pattern: "POST /v1/echo", Public: true, Handle: func(c *Call) error {
			var in echoReq
			if err := c.Decode(&in); err != nil {
				return err
			}
			return c.JSON(http.StatusOK, in)
		}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within 5 s to a body that stopped arriving: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Errorf("status %d, want a 4xx for a body cut off by the deadline", resp.StatusCode)
	}
}

// realProofAuthn accepts token "good" bound to one key's thumbprint.
type realProofAuthn struct{ jkt string }

func (a realProofAuthn) Authenticate(_ context.Context, token, jkt string) (wire.Principal, error) {
	if token != "good" || jkt != a.jkt {
		return wire.Principal{}, usererr.New(usererr.Unauthenticated, "session_invalid", "no such session")
	}
	return wire.Principal{Kind: "person", ID: "p1", Name: "alice", Roles: []string{"viewer"}}, nil
}

// TestJunkSessionsCannotFillTheReplayCache: with the real DPoP verifier,
// valid proofs carrying made-up tokens are refused without taking room in
// the replay cache, so the real session still gets in; and its own proof
// still cannot be replayed.
func TestJunkSessionsCannotFillTheReplayCache(t *testing.T) {
	_, good, _ := ed25519.GenerateKey(rand.Reader)
	jkt, err := dpop.Thumbprint(good.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v := dpop.NewVerifier(dpop.VerifierConfig{MaxEntries: 4})
	s, err := New(Config{Authenticator: realProofAuthn{jkt}, Proofs: v, Authorizer: fakeAuthz{"echo": true}},
		[]Route{{Pattern: "GET /v1/me", Action: "echo", Handle: func(c *Call) error { return c.JSON(200, c.Principal.Name) }}})
	if err != nil {
		t.Fatal(err)
	}
	const u = "https://api.test/v1/me"
	call := func(key ed25519.PrivateKey, token, proof string) int {
		if proof == "" {
			proof, _ = dpop.NewProof(key, "GET", u, token, time.Now(), rand.Reader)
		}
		req := httptest.NewRequest("GET", u, nil)
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", proof)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	for range 20 {
		_, junk, _ := ed25519.GenerateKey(rand.Reader)
		if code := call(junk, "ilk_ses_made-up", ""); code != http.StatusUnauthorized {
			t.Fatalf("junk session: status %d, want 401", code)
		}
	}
	if v.Len() != 0 {
		t.Errorf("junk sessions left %d proofs in the replay cache, want 0", v.Len())
	}
	proof, _ := dpop.NewProof(good, "GET", u, "good", time.Now(), rand.Reader)
	if code := call(good, "good", proof); code != http.StatusOK {
		t.Fatalf("the real session after the junk: status %d, want 200", code)
	}
	if code := call(good, "good", proof); code != http.StatusUnauthorized {
		t.Errorf("the real session's proof replayed: status %d, want 401", code)
	}
}

// TestPublicWritesAreLimitedPerSource: one address gets its burst of
// public writes, then 429 until its bucket refills; another address and
// authenticated routes are unaffected.
func TestPublicWritesAreLimitedPerSource(t *testing.T) {
	s, err := New(Config{Authenticator: fakeAuthn{}, Proofs: fakeProofs{}, Authorizer: fakeAuthz{"echo": true},
		PublicWritesPerSecond: 0.001, PublicWriteBurst: 3},
		[]Route{
			{Pattern: "POST /v1/login", Public: true, Handle: func(c *Call) error { return c.JSON(200, "ok") }},
			{Pattern: "GET /v1/public", Public: true, Handle: func(c *Call) error { return c.JSON(200, "hi") }},
		})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, addr string) (int, wire.Problem) {
		req := httptest.NewRequest(method, "https://api.test"+path, strings.NewReader(`{}`))
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var p wire.Problem
		_ = json.Unmarshal(rec.Body.Bytes(), &p)
		return rec.Code, p
	}
	for i := range 3 {
		if code, _ := call("POST", "/v1/login", "192.0.2.7:5000"); code != 200 {
			t.Fatalf("call %d within the burst: %d", i+1, code)
		}
	}
	if code, p := call("POST", "/v1/login", "192.0.2.7:5001"); code != http.StatusTooManyRequests || p.Code != "too_many_requests" {
		t.Errorf("past the burst: %d %s, want 429 too_many_requests", code, p.Code)
	}
	if code, _ := call("POST", "/v1/login", "[2001:db8::1]:443"); code != 200 {
		t.Errorf("another address: %d, want 200", code)
	}
	if code, _ := call("GET", "/v1/public", "192.0.2.7:5002"); code != 200 {
		t.Errorf("a public read from the limited address: %d, want 200", code)
	}
}

func TestSourceLimiterStaysBounded(t *testing.T) {
	l := newSourceLimiter(1, 2, 3)
	now := time.Now()
	for i := range 3 {
		if !l.allow(fmt.Sprint("10.0.0.", i), now) {
			t.Fatalf("address %d refused with room in the map", i)
		}
	}
	if l.allow("10.0.0.9", now) {
		t.Error("a fourth address was admitted while three active buckets fill the map")
	}
	if !l.allow("10.0.0.9", now.Add(10*time.Second)) || len(l.sources) > 3 {
		t.Errorf("after the others went idle: %d buckets, want the idle ones dropped", len(l.sources))
	}
}
