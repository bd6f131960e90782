package cli_test

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
)

// TestMetricsAccess: /metrics answers a scraper with a configured token
// and a signed-in viewer, nobody else (no credentials, a wrong token, a
// session token sent as a bearer), and carries the figures an operator
// pages on: operations by state, waiting approvals and the oldest's age,
// step failures, agents connected, log size and checkpoint age.
func TestMetricsAccess(t *testing.T) {
	q := startServer(t, "")
	q.setUp(10)
	tlsCfg, err := pki.PinnedTLSConfig(q.ready.CAFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 10 * time.Second}
	get := func(auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, q.ready.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Refusals: each a 401 with a sentence, and no figure in it.
	for name, auth := range map[string]string{
		"no credentials":    "",
		"a wrong token":     "Bearer " + strings.Repeat("x", len(scrapeToken)),
		"a token's hash":    "Bearer " + scrapeTokenHashes[0],
		"an empty bearer":   "Bearer ",
		"a made-up session": "DPoP ilk_sess_madeup",
	} {
		code, body := get(auth)
		if code != http.StatusUnauthorized || strings.Contains(body, "interlock_") || !strings.Contains(body, `"detail"`) {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	if code, _, errs := q.run("", "--profile", "nobody", "metrics"); code == 0 || errs == "" {
		t.Errorf("interlock metrics without a login: exit %d, %q", code, errs)
	}

	// Something waits: an operation and a change request.
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "INC-3"), &run)
	q.mustAs("admin", "service", "set", "billing", "--min-healthy", "40%") // lowers a floor: a change request
	time.Sleep(1100 * time.Millisecond)                                    // so that the oldest has waited

	code, body := get("Bearer " + scrapeToken)
	if code != 200 {
		t.Fatalf("with the scrape token: %d %s", code, body)
	}
	for series, want := range map[string]func(float64) bool{
		`interlock_operations{state="pending_approval"}`:            func(v float64) bool { return v == 1 },
		`interlock_operations{state="running"}`:                     func(v float64) bool { return v == 0 },
		`interlock_approvals_waiting{kind="operation"}`:             func(v float64) bool { return v == 1 },
		`interlock_approvals_waiting{kind="change"}`:                func(v float64) bool { return v == 1 },
		`interlock_approvals_oldest_wait_seconds{kind="operation"}`: func(v float64) bool { return v >= 1 && v < 120 },
		`interlock_approvals_oldest_wait_seconds{kind="change"}`:    func(v float64) bool { return v >= 1 && v < 120 },
		`interlock_agents_connected`:                                func(v float64) bool { return v == 10 },
		`interlock_log_entries`:                                     func(v float64) bool { return v > 20 },
		`interlock_log_checkpoint_age_seconds`:                      func(v float64) bool { return v >= 0 && v < 30 },
		`interlock_step_failures_total`:                             func(v float64) bool { return v == 0 },
		`interlock_metrics_scrape_errors`:                           func(v float64) bool { return v == 0 },
	} {
		if v := metricValue(body, series); !want(v) {
			t.Errorf("%s = %v", series, v)
		}
	}

	// A signed-in viewer reads them through the CLI (metrics.read).
	var inv wire.Invitation
	mustJSON(t, q.mustAs("admin", "--json", "user", "invite", "viewer1", "--role", "viewer"), &inv)
	f := filepath.Join(q.dir, "viewer1.totp")
	q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
	q.readSecret("viewer1", f)
	q.login("viewer1")
	out := q.mustAs("viewer1", "metrics", "--grep", "interlock_approvals_waiting")
	if !strings.Contains(out, `interlock_approvals_waiting{kind="operation"} 1`) || strings.Contains(out, "go_goroutines") {
		t.Errorf("interlock metrics --grep as viewer1:\n%s", out)
	}
}

// TestFirstRunHintsCarryServerAndFingerprint: bootstrap's closing hint,
// an invitation's accept command and accept's closing hint are commands a
// new person can paste: they carry the real --server and --ca-fingerprint.
func TestFirstRunHintsCarryServerAndFingerprint(t *testing.T) {
	q := startServer(t, "")
	flags := "--server " + q.ready.URL + " --ca-fingerprint " + q.ready.CAFingerprint
	secretFile := filepath.Join(q.dir, "admin.totp")
	out := q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	if !strings.Contains(out, "Then: interlock login "+flags+" --user admin") {
		t.Errorf("bootstrap's hint lacks the server and fingerprint:\n%s", out)
	}
	q.readSecret("admin", secretFile)
	q.login("admin")
	out = q.mustAs("admin", "user", "invite", "viewer1", "--role", "viewer")
	m := regexp.MustCompile(`They run: interlock user accept ` + regexp.QuoteMeta(flags) + ` --code (ilk_inv_\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("user invite does not print the accept command with the server and fingerprint:\n%s", out)
	}
	out = q.must(password+"\n", "user", "accept", "--server", q.ready.URL, "--ca-fingerprint", q.ready.CAFingerprint, "--code", m[1], "--password-stdin")
	if !strings.Contains(out, "Then: interlock login "+flags+" --user viewer1") {
		t.Errorf("accept's hint lacks the server and fingerprint:\n%s", out)
	}
}
