package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// clusterServer is `interlock serve --store postgres://…` in a child
// process, one of several sharing the database.
type clusterServer struct {
	name  string
	cmd   *exec.Cmd
	ready app.Ready
	logs  *bytes.Buffer
}

func startClusterServer(t *testing.T, name, dsn, dataDir string) *clusterServer {
	t.Helper()
	argv, _ := json.Marshal([]string{"--json", "serve", "--listen", freeAddr(t), "--data", dataDir, "--store", dsn, "--checkpoint-interval", "1s"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INTERLOCK_E2E_SERVE="+string(argv))
	s := &clusterServer{name: name, cmd: cmd, logs: &bytes.Buffer{}}
	cmd.Stderr = &lockedWriter{w: s.logs}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(s.kill)
	if err := json.NewDecoder(out).Decode(&s.ready); err != nil {
		t.Fatalf("%s did not report ready: %v\n%s", name, err, s.logs)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return s
}

// interesting is the server's log without the chatter of agents coming and going.
func (s *clusterServer) interesting() string {
	var b strings.Builder
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(line, "agent connected") || strings.Contains(line, "agent disconnected") ||
			strings.Contains(line, "enrolled") || strings.Contains(line, "http2: stream closed") {
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func (s *clusterServer) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill() // SIGKILL: no shutdown, no lease released
		_ = s.cmd.Wait()
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// copyRootKey copies the one secret servers sharing a database must
// share, the root key, as the README's "Running several servers" says;
// the CA comes from the database, and the signer's memory stays each
// server's own.
func copyRootKey(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(from, kms.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, kms.RootKeyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

const failoverRunbook = `name: fleet-touch
description: a slow step on every host, to kill servers under
risk: medium
removes_capacity: false
parameters:
  - name: service
    type: service
  - name: count
    type: int
    min: 1
    max: 100
target:
  service: service
  count: count
step:
  argv: ["sh", "-c", "touch MARKS/started.$$; sleep 3; touch MARKS/ran.$$"]
  timeout_s: 60
health_check:
  argv: ["true"]
  timeout_s: 10
waves:
  canary: 1
  size: 20%
  max_concurrency: 10
  halt_after_failures: 0
  bake_s: 0
`

// TestFailoverAcrossThreeServers: three servers share one PostgreSQL and
// 50 agents; an operation runs. Mid-wave, the server holding the log
// sequencer's lease (it also runs the operation) and the server holding
// most agents are killed with SIGKILL. Within 15 s every agent is
// connected to the survivor; the operation settles from the agents'
// reports and finishes by itself; every host ran its step exactly once;
// every audit entry acknowledged before the kill is still in the log at
// its index, the log verifies in full, and no two checkpoints of one
// size differ.
func TestFailoverAcrossThreeServers(t *testing.T) {
	dsn := storetest.PostgresDSN(t) // skips without INTERLOCK_TEST_POSTGRES_URL
	const hosts = 50
	dir := t.TempDir()
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	data := func(i int) string { return filepath.Join(dir, fmt.Sprintf("data%d", i)) }

	s1 := startClusterServer(t, "s1", dsn, data(1)) // first: creates the CA, takes the sequencer lease
	copyRootKey(t, data(1), data(2))
	copyRootKey(t, data(1), data(3))
	s2 := startClusterServer(t, "s2", dsn, data(2))
	s3 := startClusterServer(t, "s3", dsn, data(3))
	defer func() {
		if t.Failed() {
			for _, s := range []*clusterServer{s1, s2, s3} {
				t.Logf("%s (%s) log:\n%s", s.name, s.ready.URL, tail(s.interesting(), 12000))
			}
		}
	}()
	if s2.ready.CAFingerprint != s1.ready.CAFingerprint || s3.ready.LogKey != s1.ready.LogKey {
		t.Fatalf("the servers do not share the CA and the log key: %s %s / %s %s", s1.ready.CAFingerprint, s2.ready.CAFingerprint, s1.ready.LogKey, s3.ready.LogKey)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := &quickstart{t: t, ctx: ctx, ready: s1.ready, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}}
	q.ready.BootstrapCode = s3.ready.BootstrapCode // each start replaces the code: the last server's works
	q.setUpPeople()

	// Agents: 30 prefer s2 (the one that will hold most), 10 s1, 10 s3;
	// each knows one other server and learns the rest from the servers.
	tokens := strings.Split(strings.TrimSpace(q.mustAs("admin", "join-token", "create", "--services", "billing",
		"--ttl", "1h", "--count", strconv.Itoa(hosts))), ",")
	if len(tokens) != hosts {
		t.Fatalf("%d join tokens, want %d", len(tokens), hosts)
	}
	groups := []struct {
		name    string
		n       int
		servers []string
	}{{"b", 30, []string{s2.ready.URL, s3.ready.URL}}, {"a", 10, []string{s1.ready.URL}}, {"c", 10, []string{s3.ready.URL, s1.ready.URL}}}
	conns := newConnectLog()
	agentCtx, stopAgents := context.WithCancel(ctx)
	var agentsDone sync.WaitGroup
	used := 0
	for _, g := range groups {
		toks := strings.Join(tokens[used:used+g.n], ",")
		used += g.n
		agentsDone.Add(1)
		go func() {
			defer agentsDone.Done()
			err := agent.Run(agentCtx, agent.Config{Server: g.servers[0], Servers: g.servers[1:], CAFingerprint: s1.ready.CAFingerprint,
				Token: toks, DataDir: filepath.Join(dir, "agents-"+g.name), Count: g.n, Hostname: "host-" + g.name,
				HeartbeatInterval: 500 * time.Millisecond, MaxBackoff: 2 * time.Second, Log: slog.New(conns)})
			if err != nil {
				t.Errorf("agents %s: %v", g.name, err)
			}
		}()
	}
	defer func() { stopAgents(); agentsDone.Wait() }()
	q.waitHealthy(hosts)

	marks := t.TempDir()
	f := filepath.Join(dir, "fleet-touch.yaml")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(failoverRunbook, "MARKS", marks)), 0o600); err != nil {
		t.Fatal(err)
	}
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", f)
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "fleet-touch", "--param", "service=billing", "--param", "count="+strconv.Itoa(hosts), "--reason", "INC-13"), &run)
	op := run.Operation.ID
	q.mustAs("approver1", "approve", op, "--otp", q.otp("approver1"))

	// Mid-wave: the canary is done and the next wave's steps are running.
	waitFor(t, "the second wave to be running", 60*time.Second, func() bool { return countMarks(t, marks, "started") >= 3 })
	db, err := store.Open(ctx, store.Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seqHolder string
	if err := db.QueryRow(ctx, `SELECT holder FROM leases WHERE name = 'sequencer'`).Scan(&seqHolder); err != nil {
		t.Fatal(err)
	}
	before := logEntries(t, q, "admin")
	byURL := map[string]*clusterServer{s1.ready.URL: s1, s2.ready.URL: s2, s3.ready.URL: s3}
	var seqServer *clusterServer
	var url string
	if err := db.QueryRow(ctx, `SELECT url FROM cluster_servers WHERE id = $1`, seqHolder).Scan(&url); err != nil {
		t.Fatal(err)
	}
	seqServer = byURL[url]
	if seqServer != s1 {
		t.Fatalf("the sequencer lease is held by %s, want s1 (the first server)", url)
	}
	if n := conns.connectedTo(s2.ready.URL); n < 25 {
		t.Fatalf("%d agents are connected to s2, want most of them", n)
	}
	killedAt := time.Now()
	s1.kill() // the sequencer, the signer and the operation's runner
	s2.kill() // 30 of the 50 agents
	t.Logf("killed s1 (sequencer, runner) and s2 (30 agents) with %d steps started", countMarks(t, marks, "started"))

	// Every agent is connected to the survivor within 15 s, as the agents
	// themselves report it.
	waitFor(t, "every agent to connect to the surviving server", 15*time.Second, func() bool {
		return conns.connectedTo(s3.ready.URL) == hosts
	})
	t.Logf("all %d agents connected to s3 within %s of the kill", hosts, conns.latest(killedAt).Sub(killedAt).Round(10*time.Millisecond))

	// Everyone goes on through s3.
	q.ready = s3.ready
	for _, u := range []string{"admin", "operator1", "approver1"} {
		q.login(u)
	}
	var final wire.Operation
	deadline := time.Now().Add(90 * time.Second)
	for {
		final = q.opState("admin", op)
		if final.State == "succeeded" || final.State == "halted" || final.State == "aborted" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the operation did not finish by itself within 90 s: %s: %s", final.State, final.Detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the operation %s %s after the kill", final.State, time.Since(killedAt).Round(100*time.Millisecond))
	if final.State != "succeeded" {
		t.Fatalf("operation %s ended %s: %s", op, final.State, final.Detail)
	}
	if s, r := countMarks(t, marks, "started"), countMarks(t, marks, "ran"); s != hosts || r != hosts {
		t.Errorf("%d steps started and %d ran on %d hosts, want each exactly once", s, r, hosts)
	}

	// The record: nothing acknowledged before the kill is lost or moved,
	// the log verifies in full, and no two checkpoints of one size differ.
	waitFor(t, "the log to sign what the survivor wrote", 30*time.Second, func() bool {
		code, _, _ := q.as("admin", "log", "verify", "--full")
		return code == 0
	})
	after := logEntries(t, q, "admin")
	if len(before) == 0 {
		t.Fatal("no entry was integrated before the kill")
	}
	for i, e := range before {
		if !bytes.Equal(after[i], e) {
			t.Fatalf("entry %d acknowledged before the kill is not in the log after it", i)
		}
	}
	var forks int
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT size FROM audit_checkpoints GROUP BY size HAVING COUNT(DISTINCT root) > 1) x`).Scan(&forks); err != nil {
		t.Fatal(err)
	}
	if forks != 0 {
		t.Errorf("%d tree sizes have checkpoints of different roots", forks)
	}
	kinds := map[string]int{}
	for _, e := range q.auditEntries("op.succeeded") {
		kinds[e.Kind]++
	}
	if kinds["op.step_marked"] != 0 || kinds["op.succeeded"] != 1 {
		t.Errorf("log kinds %v: want no step marked by a person, one op.succeeded", kinds)
	}
	t.Logf("log kinds: settled %d, unknown %d, not sent %d", kinds["op.step_settled"], kinds["op.step_unknown"], kinds["op.step_not_sent"])
}

// connectLog is a slog.Handler for in-process agents that keeps, per
// host, the last server it said it connected to and when.
type connectLog struct {
	state *connectState
	attrs []slog.Attr
}

type connectState struct {
	mu   sync.Mutex
	last map[string]connectEvent
}

type connectEvent struct {
	server string
	at     time.Time
}

func newConnectLog() *connectLog {
	return &connectLog{state: &connectState{last: map[string]connectEvent{}}}
}

func (c *connectLog) Enabled(context.Context, slog.Level) bool { return true }
func (c *connectLog) WithGroup(string) slog.Handler            { return c }
func (c *connectLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &connectLog{state: c.state, attrs: append(slices.Clone(c.attrs), as...)}
}

func (c *connectLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "connected" {
		return nil
	}
	var host, server string
	for _, a := range c.attrs {
		if a.Key == "host" {
			host = a.Value.String()
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "server" {
			server = a.Value.String()
		}
		return true
	})
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	c.state.last[host] = connectEvent{server: server, at: r.Time}
	return nil
}

// connectedTo counts the hosts whose last connection is to server.
func (c *connectLog) connectedTo(server string) int {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	n := 0
	for _, e := range c.state.last {
		if e.server == server {
			n++
		}
	}
	return n
}

// latest is the time of the last connection made after t.
func (c *connectLog) latest(t time.Time) time.Time {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	for _, e := range c.state.last {
		if e.at.After(t) {
			t = e.at
		}
	}
	return t
}

// setUpPeople bootstraps admin and invites operator1 and approver1.
func (q *quickstart) setUpPeople() {
	t := q.t
	t.Helper()
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	for _, p := range []struct{ user, role string }{{"operator1", "operator"}, {"approver1", "approver"}} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", p.user, "--role", p.role), &inv)
		f := filepath.Join(q.dir, p.user+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(p.user, f)
		q.login(p.user)
	}
}

// logEntries returns every integrated entry's leaf by its index.
func logEntries(t *testing.T, q *quickstart, user string) map[uint64][]byte {
	t.Helper()
	out := map[uint64][]byte{}
	for _, line := range strings.Split(strings.TrimSpace(q.mustAs(user, "--json", "log", "tail", "-n", "100000")), "\n") {
		var e wire.LogEntry
		mustJSON(t, line, &e)
		if len(e.Leaf) > 0 {
			out[e.Index] = e.Leaf
		}
	}
	return out
}

func countMarks(t *testing.T, dir, prefix string) int { return marks(t, dir, prefix) }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
