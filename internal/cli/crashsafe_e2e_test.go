package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/pki"
)

// gate is a runbook whose step runs until the test opens its gate: it
// records its PID and each start, writes a marker every 0.1 s while it
// waits, and notes when it finished — so a test can see whether it runs,
// ran, or was killed.
type gate struct{ dir string }

func (g gate) path(name string) string { return filepath.Join(g.dir, name) }

func (g gate) open(t *testing.T) {
	if err := os.WriteFile(g.path("go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (g gate) lines(name string) []string {
	b, _ := os.ReadFile(g.path(name))
	return strings.Fields(string(b))
}

// applyGatedRunbook applies runbook "gated": remove-capacity with the
// gated step, and not capacity-changing.
func applyGatedRunbook(t *testing.T, q *quickstart) gate {
	t.Helper()
	g := gate{dir: t.TempDir()}
	script := fmt.Sprintf("echo $$ >> %[1]s/pids; echo run >> %[1]s/runs; while [ ! -e %[1]s/go ]; do echo tick >> %[1]s/marker; sleep 0.1; done; echo done >> %[1]s/finished", g.dir)
	rb, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(rb), `argv: ["echo", "removing", "{{service}}", "from service"]
  timeout_s: 30`, fmt.Sprintf("argv: [\"/bin/sh\", \"-c\", %q]\n  timeout_s: 300", script), 1)
	text = strings.Replace(text, "name: remove-capacity", "name: gated", 1)
	// Not capacity-changing, so that two can run at once on one service.
	text = strings.Replace(text, "removes_capacity: true", "removes_capacity: false", 1)
	if !strings.Contains(text, "name: gated") || strings.Contains(text, `"removing"`) {
		t.Fatal("the example runbook changed; update this test's step")
	}
	f := filepath.Join(q.dir, "gated.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", f)
	return g
}

// runGated starts an approved operation of the gated runbook on one host.
func runGated(t *testing.T, q *quickstart, reason string) string {
	t.Helper()
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "gated", "--param", "service=billing", "--param", "count=1", "--reason", reason), &run)
	q.mustAs("approver1", "approve", run.Operation.ID, "--otp", q.otp("approver1"))
	return run.Operation.ID
}

func waitUntil(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// progressOf waits until op stops running and returns its progress, as
// the server records it (read in-process: ops watch keeps watching an
// operation that waits for agents to settle it).
func progressOf(t *testing.T, q *quickstart, op string) wire.OpProgress {
	t.Helper()
	var p exec.Progress
	waitUntil(t, "operation "+op+" to stop running", 60*time.Second, func() bool {
		var err error
		if p, err = q.app.Exec.Progress(q.ctx, op); err != nil {
			t.Fatal(err)
		}
		return p.State != "running"
	})
	out := wire.OpProgress{OpID: p.OpID, State: string(p.State), Detail: p.Detail, Version: p.Version}
	for _, w := range p.Waves {
		ow := wire.OpWaveProgress{Number: w.Number}
		for _, h := range w.Hosts {
			ow.Hosts = append(ow.Hosts, wire.OpHostProgress{HostID: h.HostID, State: string(h.State), ExitCode: h.ExitCode,
				Error: h.Error, Health: string(h.Health), Rollback: string(h.Rollback)})
		}
		out.Waves = append(out.Waves, ow)
	}
	return out
}

func opHost(p wire.OpProgress) wire.OpHostProgress {
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			if h.State != "pending" {
				return h
			}
		}
	}
	return wire.OpHostProgress{}
}

// procAlive reports whether pid runs (a zombie counts as dead).
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// TestServerKilledMidStepSettlesFromTheLedger: the server stops while a
// host runs a step; the step finishes while the server is down; the
// server starts again. Nobody marks anything: the agent's ledger settles
// the step (audited, source "agent ledger"), the operation continues to
// success, the step ran once, and an `ops watch` started before the
// restart reconnects and sees the end.
func TestServerKilledMidStepSettlesFromTheLedger(t *testing.T) {
	srv := startRestartable(t, "")
	q := srv.q
	q.setUp(10)
	g := applyGatedRunbook(t, q)
	op := runGated(t, q, "INC-21")
	waitUntil(t, "the step to start", 30*time.Second, func() bool { return len(g.lines("pids")) == 1 })

	type result struct {
		code      int
		out, errs string
	}
	watched := make(chan result, 1)
	go func() {
		code, out, errs := q.as("approver1", "ops", "watch", op)
		watched <- result{code, out, errs}
	}()
	time.Sleep(time.Second) // the watch is polling

	srv.stop()
	g.open(t)
	waitUntil(t, "the step to finish while the server is down", 30*time.Second, func() bool { return len(g.lines("finished")) == 1 })
	srv.start()

	var w result
	select {
	case w = <-watched:
	case <-time.After(2 * time.Minute):
		t.Fatal("ops watch did not end within 2 minutes of the restart")
	}
	if w.code != 0 || !strings.Contains(w.out, "Operation "+op+" succeeded.") {
		t.Fatalf("ops watch across the restart: exit %d\nstdout: %s\nstderr: %s", w.code, w.out, w.errs)
	}
	if !strings.Contains(w.errs, "server went away; reconnecting") {
		t.Errorf("ops watch did not say it reconnected:\n%s", w.errs)
	}
	if runs := g.lines("runs"); len(runs) != 1 {
		t.Errorf("the step ran %d times, want once", len(runs))
	}
	entries := q.auditEntries("op.succeeded")
	checkEntryLayouts(t, entries)
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
		if e.Kind == "op.step_settled" {
			if string(e.Data["source"]) != `"agent ledger"` || string(e.Data["state"]) != `"succeeded"` {
				t.Errorf("settled entry %v, want source agent ledger and state succeeded", e.Data)
			}
		}
	}
	if kinds["op.step_unknown"] != 1 || kinds["op.step_settled"] != 1 || kinds["op.step_marked"] != 0 || kinds["op.succeeded"] != 1 {
		t.Errorf("log kinds %v: want one step_unknown, one step_settled, no step_marked, one succeeded", kinds)
	}
}

// TestAgentKilledMidStepIsUnknownUntilItsLedgerSettles: the agents stop
// while two operations' steps run. The steps' processes die with them;
// the server records both steps unknown (not failed), sends no rollback
// and waits for a person or the agent. A person marks one host (by its
// name, as `hosts` shows it); when the agents start again, the other
// step settles from its agent's ledger as interrupted, which halts its
// operation, and the marked one stays as the person recorded it.
func TestAgentKilledMidStepIsUnknownUntilItsLedgerSettles(t *testing.T) {
	q := startServer(t, "")
	q.setUp(10)
	g := applyGatedRunbook(t, q)
	op1 := runGated(t, q, "INC-31")
	op2 := runGated(t, q, "INC-32")
	waitUntil(t, "both steps to start", 30*time.Second, func() bool { return len(g.lines("pids")) == 2 })
	var pids []int
	for _, s := range g.lines("pids") {
		pid, _ := strconv.Atoi(s)
		pids = append(pids, pid)
	}

	q.stopAgents()
	for _, pid := range pids {
		waitUntil(t, fmt.Sprintf("step process %d to die with its agent", pid), 10*time.Second, func() bool { return !procAlive(pid) })
	}
	before := len(g.lines("marker"))
	time.Sleep(300 * time.Millisecond)
	if after := len(g.lines("marker")); after != before {
		t.Errorf("the steps still write after their agents stopped (%d → %d ticks)", before, after)
	}

	for _, op := range []string{op1, op2} {
		p := progressOf(t, q, op)
		h := opHost(p)
		if p.State != "needs_attention" || h.State != "unknown" || h.Rollback != "" {
			t.Fatalf("op %s after its agent vanished: %s, host %s %s (rollback %q); want needs_attention, unknown, no rollback\n%s",
				op, p.State, h.HostID, h.State, h.Rollback, p.Detail)
		}
		if !strings.Contains(p.Detail, "contact with the agent of "+h.HostID+" was lost") || !strings.Contains(p.Detail, "Nothing was rolled back") {
			t.Errorf("op %s detail does not say which host is unknown and why: %s", op, p.Detail)
		}
	}

	// A person checked op2's host: they name it as `hosts` shows it.
	host2 := opHost(progressOf(t, q, op2)).HostID
	var hosts wire.HostList
	mustJSON(t, q.mustAs("admin", "--json", "hosts"), &hosts)
	name2 := ""
	for _, h := range hosts.Hosts {
		if h.ID == host2 {
			name2 = h.Name
		}
	}
	if code, _, errs := q.as("admin", "ops", "mark", op2, "host-99", "--state", "failed", "--reason", "checked"); code == 0 || !strings.Contains(errs, `has no host named or with ID "host-99"`) || !strings.Contains(errs, name2) {
		t.Errorf("marking an unknown host name: exit %d, %s", code, errs)
	}
	q.mustAs("admin", "ops", "mark", op2, name2, "--state", "failed", "--reason", "the step was killed; checked by hand")

	// The agents come back (identity on disk, no token).
	agentCtx, stop := context.WithCancel(q.ctx)
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(agentCtx, agent.Config{Server: q.ready.URL, CAFingerprint: q.ready.CAFingerprint,
			DataDir: filepath.Join(q.dir, "agents"), Count: 10, Hostname: "host", HeartbeatInterval: 500 * time.Millisecond})
	}()
	t.Cleanup(func() { stop(); <-done })

	var p1 wire.OpProgress
	waitUntil(t, "op1 to settle from the ledger", 60*time.Second, func() bool {
		p1 = progressOf(t, q, op1)
		return p1.State != "needs_attention"
	})
	h1 := opHost(p1)
	if p1.State != "halted" || h1.State != "failed" || !strings.Contains(h1.Error, "agent stopped while this step ran") || h1.Rollback != "" {
		t.Errorf("op1 after its agent returned: %s, host %s %s %q (rollback %q); want halted, failed as interrupted, no rollback\n%s",
			p1.State, h1.HostID, h1.State, h1.Error, h1.Rollback, p1.Detail)
	}
	if !strings.Contains(p1.Detail, "settled from its agent's ledger") {
		t.Errorf("op1 detail: %s", p1.Detail)
	}
	time.Sleep(2 * time.Second) // op2's agent has replayed its result too
	p2 := progressOf(t, q, op2)
	if h2 := opHost(p2); p2.State != "needs_attention" || h2.State != "failed" || !strings.Contains(h2.Error, "marked failed by") {
		t.Errorf("op2, marked by a person: %s, host %s %q; the agent's replay must not change it", p2.State, h2.State, h2.Error)
	}

	entries := q.auditEntries("op.step_settled")
	checkEntryLayouts(t, entries)
	settled, rollbacks := 0, 0
	for _, e := range entries {
		switch e.Kind {
		case "op.step_settled":
			settled++
			if string(e.Data["source"]) != `"agent ledger"` || string(e.Data["host"]) != strconv.Quote(h1.HostID) {
				t.Errorf("settled entry %v, want op1's host from the agent ledger", e.Data)
			}
		}
	}
	rollbacks = len(loggedHosts(t, entries, "op.steps_dispatched", "rollback"))
	if settled != 1 || rollbacks != 0 {
		t.Errorf("%d steps settled from ledgers (want 1: op2's was marked), %d rollbacks dispatched (want 0)", settled, rollbacks)
	}
	if runs := g.lines("runs"); len(runs) != 2 {
		t.Errorf("steps ran %d times, want 2 (once per operation)", len(runs))
	}
}

// TestEnrollmentLimitsGuessesNotAgents: a valid one-time join token is
// itself the credential, so 220 agents enroll from one address without a
// single 429; wrong tokens from one address are refused (429) once its
// allowance is spent.
func TestEnrollmentLimitsGuessesNotAgents(t *testing.T) {
	q := startServer(t, "")
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	const n = 220
	tokens := strings.Split(strings.TrimSpace(q.mustAs("admin", "join-token", "create", "--services", "billing", "--ttl", "1h", "--count", strconv.Itoa(n))), ",")
	if len(tokens) != n {
		t.Fatalf("%d tokens, want %d", len(tokens), n)
	}
	tlsCfg, err := pki.PinnedTLSConfig(q.ready.CAFingerprint)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}, Timeout: 30 * time.Second}
	enroll := func(token, hostname string) int {
		_, csr, err := pki.NewAgentKey(rand.Reader, hostname)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(wire.EnrollRequest{Token: token, Hostname: hostname, CSR: string(csr)})
		resp, err := c.Post(q.ready.URL+"/v1/agent/enroll", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	statuses := map[int]int{}
	for i, tok := range tokens {
		statuses[enroll(strings.TrimSpace(tok), fmt.Sprintf("fleet-%03d", i))]++
	}
	if statuses[http.StatusOK] != n {
		t.Fatalf("valid tokens from one address: statuses %v, want %d × 200 (none 429)", statuses, n)
	}

	var wrong []int
	for i := range 50 {
		wrong = append(wrong, enroll(fmt.Sprintf("ilk_join_%032d", i), fmt.Sprintf("guess-%02d", i)))
	}
	count := map[int]int{}
	for _, s := range wrong {
		count[s]++
	}
	if wrong[0] != http.StatusUnauthorized || count[http.StatusTooManyRequests] < 10 || count[http.StatusOK] != 0 {
		t.Errorf("50 wrong tokens from one address: %v (%v); want 401 first, then 429 once the allowance is spent", count, wrong)
	}
	if i := strings.Index(fmt.Sprint(wrong), "429"); i >= 0 && strings.Contains(fmt.Sprint(wrong)[i:], "401 401 401") {
		t.Errorf("guessing went on after the first 429: %v", wrong)
	}
}
