package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
)

// TestRevokedHostIsShutOut drives `interlock hosts revoke` against the real
// server and real agents: only an admin may revoke, the host's agent is
// refused from then on (its heartbeats no longer make it live), and the
// revocation is in the log with its reason kept personal.
func TestRevokedHostIsShutOut(t *testing.T) {
	q := startServer(t, "")
	q.setUp(3)
	if code, _, errOut := q.as("operator1", "hosts", "revoke", "host-02", "--reason", "looks odd"); code == 0 || !strings.Contains(errOut, "host.revoke") {
		t.Errorf("an operator revoking a host: exit %d, %q; want a policy refusal", code, errOut)
	}
	// The refusal is also a metric an alert can watch.
	if m := q.metrics(); !strings.Contains(m, "interlock_authorization_denials_total 1") ||
		!strings.Contains(m, "interlock_break_glass_operations_total 0") {
		t.Errorf("/metrics after one policy refusal and no break-glass:\n%s", grepLines(m, "interlock_"))
	}
	if code, _, errOut := q.as("admin", "hosts", "revoke", "host-02"); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Errorf("revoking without a reason: exit %d, %q", code, errOut)
	}
	if code, _, errOut := q.as("admin", "hosts", "revoke", "host-99", "--reason", "x"); code == 0 || !strings.Contains(errOut, "no host not yet revoked") {
		t.Errorf("revoking an unknown name: exit %d, %q", code, errOut)
	}
	out := q.mustAs("admin", "hosts", "revoke", "host-02", "--reason", "key copied off the box, INC-9")
	if !strings.Contains(out, "Revoked host-02") {
		t.Errorf("revoke printed %q", out)
	}
	list := func() map[string]wire.Host {
		var hosts wire.HostList
		if err := json.Unmarshal([]byte(q.mustAs("admin", "--json", "hosts")), &hosts); err != nil {
			t.Fatal(err)
		}
		out := map[string]wire.Host{}
		for _, h := range hosts.Hosts {
			out[h.Name] = h
		}
		return out
	}
	before := list()
	// Three heartbeat intervals later the revoked host's agent has not been
	// heard (its heartbeats are refused), the others have.
	time.Sleep(1500 * time.Millisecond)
	for name, h := range list() {
		revoked := name == "host-02"
		if revoked != !h.RevokedAt.IsZero() || h.Live == revoked {
			t.Errorf("host %s: live %v, revoked at %v", name, h.Live, h.RevokedAt)
		}
		if heard := h.LastSeen.After(before[name].LastSeen); heard == revoked {
			t.Errorf("host %s: last seen %v, then %v (revoked: %v)", name, before[name].LastSeen, h.LastSeen, revoked)
		}
	}
	if !strings.Contains(q.mustAs("admin", "hosts"), "revoked") {
		t.Error("`interlock hosts` does not show the revoked host as revoked")
	}
	// By name, a revoked host is no longer found; by ID it is, and the
	// server says it is revoked already.
	if code, _, errOut := q.as("admin", "hosts", "revoke", "host-02", "--reason", "again"); code == 0 || !strings.Contains(errOut, "no host not yet revoked") {
		t.Errorf("revoking the revoked host by name: exit %d, %q", code, errOut)
	}
	if code, _, errOut := q.as("admin", "hosts", "revoke", before["host-02"].ID, "--reason", "again"); code == 0 || !strings.Contains(errOut, "revoked already") {
		t.Errorf("revoking the revoked host by ID: exit %d, %q", code, errOut)
	}
	if code, _, errOut := q.as("admin", "hosts", "return", "host-01", "--reason", "checked"); code == 0 || !strings.Contains(errOut, "in service already") {
		t.Errorf("returning a host that is in service: exit %d, %q", code, errOut)
	}
	if code, _, errOut := q.as("admin", "hosts", "return", before["host-02"].ID, "--reason", "checked"); code == 0 || !strings.Contains(errOut, "is revoked") {
		t.Errorf("returning the revoked host: exit %d, %q", code, errOut)
	}
	var revoked []auditEntry
	for _, e := range q.auditEntries("host.revoked") {
		if e.Kind == "host.revoked" {
			revoked = append(revoked, e)
		}
	}
	if len(revoked) != 1 {
		t.Fatalf("%d host.revoked entries, want 1", len(revoked))
	}
	if raw, _ := json.Marshal(revoked[0]); strings.Contains(string(raw), "INC-9") || !strings.Contains(string(raw), "host-02") {
		t.Errorf("host.revoked entry %s: want the hostname, and the reason kept out of its public part", raw)
	}
}

// metrics fetches the server's /metrics (public, over the pinned TLS).
func (q *quickstart) metrics() string {
	q.t.Helper()
	cfg, err := pki.PinnedTLSConfig(q.ready.CAFingerprint)
	if err != nil {
		q.t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Do(scrapeRequest(q.t, q.ready.URL))
	if err != nil {
		q.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		q.t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
