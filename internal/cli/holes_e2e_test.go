package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/pki"
)

// bootstrapAdmin creates the first admin and logs them in.
func (q *quickstart) bootstrapAdmin() {
	q.t.Helper()
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
}

// invite invites user with role, who accepts and logs in.
func (q *quickstart) invite(user, role string) {
	q.t.Helper()
	var inv wire.Invitation
	mustJSON(q.t, q.mustAs("admin", "--json", "user", "invite", user, "--role", role), &inv)
	f := filepath.Join(q.dir, user+".totp")
	q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret(user, f)
	q.login(user)
}

// signedRequest builds method url with body, signed now as sc.
func signedRequest(t *testing.T, sc *signedClient, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	proof, err := dpop.NewProof(sc.key, method, url, sc.token, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "DPoP "+sc.token)
	req.Header.Set("DPoP", proof)
	return req
}

// send sends req and returns its status and problem (if the answer is one).
func send(t *testing.T, hc *http.Client, req *http.Request) (int, wire.Problem) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p wire.Problem
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s %s: problem body %q: %v", req.Method, req.URL, b, err)
		}
	}
	return resp.StatusCode, p
}

// isSentence reports whether a problem's detail reads as an explanation.
func isSentence(s string) bool { return len(strings.Fields(s)) >= 5 }

// TestCedarBombsAreRefusedAndTheServerSurvives sends, as an admin whom
// policy allows everything, Cedar texts built to exhaust cedar-go's
// recursion (each of which killed the process before the bounds), to
// every route that takes Cedar: each is a 4xx with a sentence, and the
// server still answers afterwards.
func TestCedarBombsAreRefusedAndTheServerSurvives(t *testing.T) {
	q := startServer(t, "")
	q.bootstrapAdmin()
	admin := q.signedClient("admin")
	hc := q.httpClient()
	head := "@id(\"bomb\")\npermit(principal, action, resource) when { "
	bombs := map[string]string{
		"brackets":          strings.Repeat("(", 400_000),
		"balanced brackets": strings.Repeat("(", 200_000) + "true" + strings.Repeat(")", 200_000),
		"negations":         strings.Repeat("!", 900_000) + "true };",
		"minus signs":       "context.x == " + strings.Repeat("-", 900_000) + "1 };",
		"member chain":      "context" + strings.Repeat(".a", 450_000) + " == 1 };",
		"sum":               "1" + strings.Repeat("+1", 450_000) + " == 2 };",
		"too large":         "true };" + strings.Repeat("//", 600_000),
	}
	for name, body := range bombs {
		text := head + body
		apply, _ := json.Marshal(wire.PolicyApplyRequest{Text: text})
		test, _ := json.Marshal(map[string]any{"text": text, "cases": []map[string]any{{"action": "whoami", "principal": map[string]any{"id": "x"}, "resource": map[string]any{"type": "System", "id": "interlock"}}}})
		for _, r := range []struct{ method, path, body string }{
			{"PUT", "/v1/policy", string(apply)},
			{"POST", "/v1/policy/test", string(test)},
		} {
			t.Run(name+" "+r.path, func(t *testing.T) {
				status, p := send(t, hc, signedRequest(t, admin, r.method, q.ready.URL+r.path, r.body))
				if status < 400 || status >= 500 || !isSentence(p.Detail) {
					t.Fatalf("%s %s with %s: %d %q, want a 4xx with a sentence", r.method, r.path, name, status, p.Detail)
				}
				t.Logf("%d %s: %s", status, p.Code, p.Detail)
			})
		}
	}
	// A test case whose context nests deeply is Cedar input too.
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	body := fmt.Sprintf(`{"cases":[{"action":"whoami","principal":{"id":"x"},"resource":{"type":"System","id":"interlock"},"context":{"d":%s}}]}`, deep)
	if status, p := send(t, hc, signedRequest(t, admin, "POST", q.ready.URL+"/v1/policy/test", body)); status >= 500 {
		t.Errorf("policy test with a deeply nested context: %d %s", status, p.Detail)
	}
	if status, p := send(t, hc, signedRequest(t, admin, "GET", q.ready.URL+"/v1/whoami", "")); status != http.StatusOK {
		t.Fatalf("after the bombs, whoami: %d %s", status, p.Detail)
	}
	// The policy in force is still the default one.
	var cur wire.Policy
	mustJSON(t, q.mustAs("admin", "--json", "policy", "get"), &cur)
	if cur.Version != 0 {
		t.Errorf("policy version %d after only refused applies, want 0", cur.Version)
	}
}

// startServerAt starts the App on addr with dataDir, for tests that
// restart a server in place; stop ends it and waits.
func startServerAt(t *testing.T, addr, dataDir string) (ready app.Ready, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, config.Config{Listen: addr, DataDir: dataDir, CheckpointInterval: time.Second, MetricsTokenSHA256: scrapeTokenHashes}, app.Options{})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	readyc := make(chan app.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(r app.Ready) { readyc <- r }) }()
	select {
	case ready = <-readyc:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	var stopped bool
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			a.Close()
		}
	}
	t.Cleanup(stop)
	return ready, stop
}

// TestDPoPReplayAfterRestartIsRefused captures a person's signed request,
// restarts the server on the same store and address (its replay cache is
// in memory, so it starts empty), and replays the request within the
// proof's time window: 401 with a sentence. A fresh request still works.
func TestDPoPReplayAfterRestartIsRefused(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	dataDir := filepath.Join(dir, "data")
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	ready, stop := startServerAt(t, addr, dataDir)
	q := &quickstart{t: t, ctx: context.Background(), ready: ready, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}}
	q.bootstrapAdmin()
	admin := q.signedClient("admin")
	hc := q.httpClient()

	captured := signedRequest(t, admin, "GET", ready.URL+"/v1/whoami", "")
	if status, p := send(t, hc, captured.Clone(context.Background())); status != http.StatusOK {
		t.Fatalf("the original request: %d %s", status, p.Detail)
	}
	if status, p := send(t, hc, captured.Clone(context.Background())); status != http.StatusUnauthorized || p.Code != "dpop_replayed" {
		t.Fatalf("a replay before the restart: %d %s %q, want 401 dpop_replayed", status, p.Code, p.Detail)
	}

	stop()
	hc.CloseIdleConnections()
	ready2, _ := startServerAt(t, addr, dataDir)
	if ready2.URL != ready.URL {
		t.Fatalf("restarted server at %s, want %s", ready2.URL, ready.URL)
	}
	status, p := send(t, hc, captured.Clone(context.Background()))
	if status != http.StatusUnauthorized || p.Code != "dpop_before_start" || !isSentence(p.Detail) {
		t.Fatalf("the replay after the restart: %d %s %q, want 401 dpop_before_start with a sentence", status, p.Code, p.Detail)
	}
	// iat counts seconds: a proof made in the second the server started is
	// refused too, so wait for the next one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	if status, p := send(t, hc, signedRequest(t, admin, "GET", ready.URL+"/v1/whoami", "")); status != http.StatusOK {
		t.Fatalf("a fresh request after the restart: %d %s %q", status, p.Code, p.Detail)
	}
}

// enroll posts an enrollment over HTTPS (no client certificate) and
// returns the status, the answer and any problem.
func enroll(t *testing.T, hc *http.Client, url, token, hostname, csr string) (int, wire.EnrollResponse, wire.Problem) {
	t.Helper()
	body, _ := json.Marshal(wire.EnrollRequest{Token: token, Hostname: hostname, CSR: csr})
	req, err := http.NewRequestWithContext(context.Background(), "POST", url+"/v1/agent/enroll", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ok wire.EnrollResponse
	var p wire.Problem
	if resp.StatusCode == http.StatusOK {
		mustJSON(t, string(b), &ok)
	} else {
		mustJSON(t, string(b), &p)
	}
	return resp.StatusCode, ok, p
}

// TestEnrollmentRefusesDeceivingAndTakenHostnames enrolls over real HTTPS
// the way an attacker holding a join token would try to confuse the people
// reading host lists and plans: escape sequences, invisible or look-alike
// characters, a huge name, and the name of a host that already exists.
// Each is a 4xx with a sentence that leaves the token unspent; the agent
// that lost its answer still gets its host back.
func TestEnrollmentRefusesDeceivingAndTakenHostnames(t *testing.T) {
	q := startServer(t, "")
	q.bootstrapAdmin()
	hc := q.httpClient()
	newToken := func() string {
		return strings.TrimSpace(q.mustAs("admin", "join-token", "create", "--services", "web", "--ttl", "1h"))
	}
	_, csr, err := pki.NewAgentKey(rand.Reader, "web1")
	if err != nil {
		t.Fatal(err)
	}
	first := newToken()
	for name, host := range map[string]string{
		"clear screen and fake name": "web1\x1b[2J\x1b[1;1Hdb-primary",
		"right-to-left override":     "web\u202e1bd",
		"Cyrillic look-alike":        "wеb1",
		"newline":                    "web1\nweb2",
		"overlong":                   strings.Repeat("w", 100_000),
	} {
		status, _, p := enroll(t, hc, q.ready.URL, first, host, string(csr))
		if status != http.StatusBadRequest || p.Code != "bad_hostname" || !isSentence(p.Detail) || strings.ContainsAny(p.Detail, "\x1b\n") || len(p.Detail) > 300 {
			t.Errorf("%s: %d %s %q, want 400 bad_hostname with a short, clean sentence", name, status, p.Code, p.Detail)
		}
	}
	status, web1, p := enroll(t, hc, q.ready.URL, first, "web1", string(csr))
	if status != http.StatusOK {
		t.Fatalf("the token after the refusals: %d %s", status, p.Detail)
	}
	// The agent lost that answer and asks again with the same token, key and name.
	if status, again, p := enroll(t, hc, q.ready.URL, first, "web1", string(csr)); status != http.StatusOK || again.HostID != web1.HostID {
		t.Fatalf("enrolling again: %d %s %s, want host %s", status, again.HostID, p.Detail, web1.HostID)
	}
	_, otherCSR, err := pki.NewAgentKey(rand.Reader, "web1")
	if err != nil {
		t.Fatal(err)
	}
	second := newToken()
	for _, name := range []string{"web1", "WEB1"} {
		status, _, p := enroll(t, hc, q.ready.URL, second, name, string(otherCSR))
		if status != http.StatusConflict || p.Code != "hostname_taken" || !strings.Contains(p.Detail, web1.HostID) {
			t.Errorf("a second machine named %s: %d %s %q, want 409 hostname_taken naming %s", name, status, p.Code, p.Detail, web1.HostID)
		}
	}
	// A trailing dot is DNS's root: any resolver reads "WEB1." as web1.
	if status, _, p := enroll(t, hc, q.ready.URL, second, "WEB1.", string(otherCSR)); status != http.StatusBadRequest || p.Code != "bad_hostname" {
		t.Errorf("a second machine named WEB1.: %d %s %q, want 400 bad_hostname", status, p.Code, p.Detail)
	}
	if status, _, p := enroll(t, hc, q.ready.URL, second, "web2", string(otherCSR)); status != http.StatusOK {
		t.Fatalf("the second token under a free name: %d %s", status, p.Detail)
	}
	var hosts wire.HostList
	mustJSON(t, q.mustAs("admin", "--json", "hosts"), &hosts)
	if len(hosts.Hosts) != 2 {
		t.Errorf("%d hosts enrolled, want 2: %+v", len(hosts.Hosts), hosts.Hosts)
	}
}

// deniedEntries reads the whole log as admin and returns, for actor and
// action, how many entries record its refusals and how many refusals they
// add up to.
func (q *quickstart) deniedEntries(actor, action string) (entries, refusals int) {
	q.t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(q.mustAs("admin", "--json", "log", "tail", "-n", "100000")), "\n") {
		var e wire.LogEntry
		mustJSON(q.t, line, &e)
		var body struct {
			Kind, Actor string
			Data        struct {
				Action string
				Count  int
			}
		}
		mustJSON(q.t, string(e.Entry), &body)
		if body.Actor != actor || body.Data.Action != action {
			continue
		}
		switch body.Kind {
		case "authz.denied":
			entries, refusals = entries+1, refusals+1
		case "authz.denied_repeats":
			entries, refusals = entries+1, refusals+body.Data.Count
		}
	}
	return entries, refusals
}

// TestRefusalLoopDoesNotFloodTheLog: a viewer sends 1,000 refused
// requests in a loop. The metric counts every one; the log holds a handful
// of entries whose counts add up to 1,000 once the server has shut down
// (the last minute's count is written at shutdown, not lost).
func TestRefusalLoopDoesNotFloodTheLog(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	dataDir := filepath.Join(dir, "data")
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	ready, stop := startServerAt(t, addr, dataDir)
	q := &quickstart{t: t, ctx: context.Background(), ready: ready, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}}
	q.bootstrapAdmin()
	q.invite("viewer1", "viewer")
	var me wire.Principal
	mustJSON(t, q.mustAs("viewer1", "--json", "whoami"), &me)
	viewer := q.signedClient("viewer1")
	hc := q.httpClient()
	const refusals = 1000
	for i := range refusals {
		body := fmt.Sprintf(`{"name":"mallory%d","role":"admin"}`, i)
		if status, p := send(t, hc, signedRequest(t, viewer, "POST", ready.URL+"/v1/users/invitations", body)); status != http.StatusForbidden {
			t.Fatalf("refusal %d: %d %s, want 403", i, status, p.Detail)
		}
	}
	want := fmt.Sprintf("\ninterlock_authorization_denials_total %d\n", refusals)
	if m := q.metrics(); !strings.Contains(m, want) {
		t.Errorf("metrics: %q, want every refusal counted (%q)", grepLines(m, "interlock_authorization_denials_total"), want)
	}
	// While the loop's minute is open, the log holds its first refusal
	// (and at most a closed minute's first refusal and repeats).
	waitFor(t, "the first refusal in the log", 15*time.Second, func() bool {
		entries, _ := q.deniedEntries(me.Actor(), "user.invite")
		if entries > 3 {
			t.Fatalf("the log holds %d entries for the loop before its minute closed", entries)
		}
		return entries > 0
	})

	stop()
	hc.CloseIdleConnections()
	q.ready, _ = startServerAt(t, addr, dataDir)
	deadline := time.Now().Add(15 * time.Second)
	for {
		entries, got := q.deniedEntries(me.Actor(), "user.invite")
		if got == refusals {
			if entries > 6 {
				t.Errorf("%d log entries for %d refusals, want a handful", entries, refusals)
			}
			t.Logf("%d refusals in %d log entries", got, entries)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log's refusals of user.invite to %s add up to %d in %d entries, want %d", me.Actor(), got, entries, refusals)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkEntryLayouts(t, q.auditEntries("authz.denied_repeats"))
}

// agentClient is an mTLS client presenting cert (PEM) for key.
func (q *quickstart) agentClient(key *ecdsa.PrivateKey, certPEM string) *http.Client {
	q.t.Helper()
	leaf, err := pki.ParseCertificatePEM([]byte(certPEM))
	if err != nil {
		q.t.Fatal(err)
	}
	cfg, err := pki.PinnedTLSConfig(q.ready.CAFingerprint)
	if err != nil {
		q.t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
}

// agentCall sends method path with body as an agent and returns the
// status, the body and the Retry-After header.
func agentCall(t *testing.T, hc *http.Client, url, method, path, body string) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if path == "/v1/agent/connect" && resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil, "" // a live stream: do not read it to its end
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("Retry-After")
}

func renewBody(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, csr, err := pki.NewAgentKey(rand.Reader, "web1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(wire.RenewRequest{CSR: string(csr)})
	return key, string(b)
}

// TestAgentCertificateRenewalIsPinnedLimitedAndAudited plays an attacker
// who copied a host's agent key and certificate, over real HTTPS against
// the real server: renewing at will is refused (429, with when it may
// renew); once the host renews, the copied certificate is refused on every
// agent route, the stream included, and cannot renew again — it can only
// fetch the very certificate issued to the agent's new key (for an agent
// whose answer was lost); and every issuance is in the log.
func TestAgentCertificateRenewalIsPinnedLimitedAndAudited(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	q := startServerOpts(t, app.Options{Now: clock})
	q.bootstrapAdmin()
	token := strings.TrimSpace(q.mustAs("admin", "join-token", "create", "--services", "web", "--ttl", "1h"))
	key1, csr1, err := pki.NewAgentKey(rand.Reader, "web1")
	if err != nil {
		t.Fatal(err)
	}
	status, enrolled, p := enroll(t, q.httpClient(), q.ready.URL, token, "web1", string(csr1))
	if status != http.StatusOK {
		t.Fatalf("enroll: %d %s", status, p.Detail)
	}
	stolen := q.agentClient(key1, enrolled.Certificate)
	heartbeat := `{"protocol_version":1,"healthy":true}`
	if status, b, _ := agentCall(t, stolen, q.ready.URL, "POST", "/v1/agent/heartbeat", heartbeat); status/100 != 2 {
		t.Fatalf("heartbeat with the enrolled certificate: %d %s", status, b)
	}

	// Renewing right after enrollment: too soon.
	_, body := renewBody(t)
	status, b, retry := agentCall(t, stolen, q.ready.URL, "POST", "/v1/agent/renew", body)
	var prob wire.Problem
	_ = json.Unmarshal(b, &prob)
	if secs, _ := strconv.Atoi(retry); status != http.StatusTooManyRequests || prob.Code != "renew_too_soon" || !isSentence(prob.Detail) || secs < 3000 || secs > 3600 {
		t.Fatalf("renewal right after enrollment: %d Retry-After %q %s %q, want 429 renew_too_soon with about an hour to wait", status, retry, prob.Code, prob.Detail)
	}

	// An hour later the host renews (the real agent's renewal).
	offset.Store(int64(61 * time.Minute))
	key2, body2 := renewBody(t)
	status, b, _ = agentCall(t, stolen, q.ready.URL, "POST", "/v1/agent/renew", body2)
	if status != http.StatusOK {
		t.Fatalf("renewal an hour later: %d %s", status, b)
	}
	var renewed wire.RenewResponse
	mustJSON(t, string(b), &renewed)
	current := q.agentClient(key2, renewed.Certificate)

	// The old certificate is refused everywhere, the stream included.
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/agent/heartbeat", heartbeat},
		{"GET", "/v1/agent/connect", ""},
		{"POST", "/v1/agent/results", `{"step_id":"stp_x"}`},
	} {
		status, b, _ := agentCall(t, stolen, q.ready.URL, r.method, r.path, r.body)
		var p wire.Problem
		_ = json.Unmarshal(b, &p)
		if status != http.StatusUnauthorized || !isSentence(p.Detail) {
			t.Errorf("%s %s with the replaced certificate: %d %s, want 401 with a sentence", r.method, r.path, status, b)
		}
	}
	_, body3 := renewBody(t)
	status, b, _ = agentCall(t, stolen, q.ready.URL, "POST", "/v1/agent/renew", body3)
	_ = json.Unmarshal(b, &prob)
	if status != http.StatusUnauthorized || prob.Code != "certificate_replaced" || !isSentence(prob.Detail) {
		t.Errorf("renewal from the replaced certificate for a new key: %d %s, want 401 certificate_replaced", status, b)
	}
	// The agent whose answer was lost asks again for the same new key and
	// gets the same certificate; nothing changes.
	status, b, _ = agentCall(t, stolen, q.ready.URL, "POST", "/v1/agent/renew", body2)
	var again wire.RenewResponse
	if status == http.StatusOK {
		mustJSON(t, string(b), &again)
	}
	if status != http.StatusOK || again.Certificate != renewed.Certificate {
		t.Errorf("asking again for the renewed key: %d, same certificate %v", status, again.Certificate == renewed.Certificate)
	}
	if status, b, _ := agentCall(t, current, q.ready.URL, "POST", "/v1/agent/heartbeat", heartbeat); status/100 != 2 {
		t.Errorf("heartbeat with the renewed certificate: %d %s", status, b)
	}
	// The renewed certificate may not renew again within the hour either.
	_, body4 := renewBody(t)
	if status, b, _ := agentCall(t, current, q.ready.URL, "POST", "/v1/agent/renew", body4); status != http.StatusTooManyRequests {
		t.Errorf("a second renewal within the hour: %d %s, want 429", status, b)
	}

	// Back to the real time: the log holds one issuance and one renewal.
	offset.Store(0)
	time.Sleep(1100 * time.Millisecond) // proofs must be newer than the last entries' second
	entries := q.auditEntries("host.certificate_renewed")
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	if kinds["host.certificate_issued"] != 1 || kinds["host.certificate_renewed"] != 1 {
		t.Errorf("log: %d host.certificate_issued and %d host.certificate_renewed, want 1 and 1", kinds["host.certificate_issued"], kinds["host.certificate_renewed"])
	}
	checkEntryLayouts(t, entries)
}
