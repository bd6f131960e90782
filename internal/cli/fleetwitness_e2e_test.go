package cli_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// TestFleetDetectsLogRollback is the attacker who has the server's whole
// disk (or the operator who restores an old backup): with the server
// stopped, the database — audit tables and all, self-consistent — goes
// back to an earlier copy, the data directory (keys, any signer state)
// with it, and the server starts again on it. Twenty real agents, which
// had verified the later log, detect the rollback on their next
// heartbeat, report it (the rolled-back server records each report as an
// agent.log_rollback alert entry and counts it in /metrics), and refuse
// the next operation's step without running it.
func TestFleetDetectsLogRollback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		store    func(t *testing.T) string
		snapshot func(t *testing.T, dsn string) string // copy of the stopped database; returns its DSN
	}{
		{"sqlite", func(*testing.T) string { return "" }, func(*testing.T, string) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }, snapshotPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testFleetDetectsLogRollback(t, tc.store(t), tc.snapshot)
		})
	}
}

func testFleetDetectsLogRollback(t *testing.T, dsn string, snapshotDB func(*testing.T, string) string) {
	const hosts = 20
	srv := startRestartable(t, dsn)
	q := srv.q
	q.setUp(hosts)
	markers := t.TempDir()
	rb, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	touch := strings.Replace(string(rb), `argv: ["echo", "removing", "{{service}}", "from service"]`, fmt.Sprintf(`argv: ["mktemp", %q]`, filepath.Join(markers, "ran.XXXXXX")), 1)
	touch = strings.Replace(touch, "name: remove-capacity", "name: touch-marker", 1)
	if touch == string(rb) {
		t.Fatal("the example runbook changed; update this test's step")
	}
	rbFile := filepath.Join(q.dir, "touch-marker.yaml")
	if err := os.WriteFile(rbFile, []byte(touch), 0o600); err != nil {
		t.Fatal(err)
	}
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", rbFile)
	agents := filepath.Join(q.dir, "agents")
	waitAgents(t, agents, hosts, "hold a checkpoint", func(s agentLogState) bool { return s.size > 0 })
	// The log key came with the enrollment answer and is pinned.
	for i := 1; i <= hosts; i++ {
		b, err := os.ReadFile(filepath.Join(agents, fmt.Sprintf("agent-%02d", i), "log-key.txt"))
		if err != nil || strings.TrimSpace(string(b)) != q.ready.LogKey {
			t.Fatalf("agent-%02d pinned log key %q (%v), want the server's %q", i, b, err, q.ready.LogKey)
		}
	}

	// The earlier point: the server stops and the whole disk is copied.
	srv.stop()
	snapDir := filepath.Join(t.TempDir(), "data")
	copyDir(t, srv.data, snapDir)
	snapDSN := snapshotDB(t, dsn)
	srv.start()
	q.waitHealthy(hosts)

	// Life goes on: an operation runs (a marker file shows its step ran),
	// and every agent verifies the log growing past the copy.
	op1 := runTouch(t, q)
	if watch := q.mustAs("approver1", "--json", "ops", "watch", op1); !strings.Contains(watch, `"succeeded"`) {
		t.Fatalf("the operation before the rollback did not succeed:\n%s", watch)
	}
	if n := countFiles(t, markers); n != 1 {
		t.Fatalf("%d marker files after one host ran the step, want 1", n)
	}
	later, err := q.app.Audit.Sync(q.ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAgents(t, agents, hosts, fmt.Sprintf("verify the log at %d entries", later.Size), func(s agentLogState) bool { return s.size >= later.Size })
	// Each agent's cosignature is stored and verifies with its witness key
	// against the log the server holds.
	cosigs, err := q.app.AgentCosignatures(q.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cosigs) != hosts {
		t.Errorf("%d agent cosignatures stored, want one per agent (%d)", len(cosigs), hosts)
	}
	for _, c := range cosigs {
		if c.Err != nil || c.Size == 0 || !strings.HasPrefix(c.WitnessKey, "interlock-agent/") {
			t.Errorf("cosignature of %s (size %d, key %s): %v", c.HostID, c.Size, c.WitnessKey, c.Err)
		}
	}
	checkEntryLayouts(t, q.auditEntriesN("agent.witness_key", hosts))
	ledgerBefore := countLedgerLines(t, agents)

	// The rollback: stop, put the copy back (database and data directory),
	// start on it.
	srv.stop()
	if err := os.RemoveAll(srv.data); err != nil {
		t.Fatal(err)
	}
	copyDir(t, snapDir, srv.data)
	if snapDSN != "" {
		srv.store = snapDSN
	}
	srv.start()
	if now, err := q.app.Audit.Checkpoint(q.ctx); err != nil || now.Checkpoint.Size >= later.Size {
		t.Fatalf("the restarted server's log has %d entries (%v); the test needs it rolled back below %d", now.Checkpoint.Size, err, later.Size)
	}

	// Every agent detects it on its next heartbeat and reports it. An
	// agent slow to come back may find the rolled-back log already grown
	// past its size (the other agents' reports are entries too): then the
	// consistency proof fails and it sees the same rewrite as a fork.
	waitAgents(t, agents, hosts, "raise a rollback alarm", func(s agentLogState) bool {
		return s.Alarm != nil && (s.Alarm.Kind == wire.LogAlarmRollback || s.Alarm.Kind == wire.LogAlarmFork) && s.AlarmRecorded
	})
	if m := q.metrics(); !strings.Contains(m, fmt.Sprintf("interlock_agent_log_rollbacks_total %d", hosts)) {
		t.Errorf("/metrics after %d agents reported the rollback:\n%s", hosts, grepLines(m, "interlock_agent"))
	}
	entries := q.auditEntriesN("agent.log_rollback", hosts)
	reports := 0
	for _, e := range entries {
		if e.Kind == "agent.log_rollback" {
			reports++
			if string(e.Data["seen_verified"]) != "true" || string(e.Data["alert"]) != "true" {
				t.Errorf("agent.log_rollback entry: seen_verified %s, alert %s; want the agent's evidence verified by the log key",
					e.Data["seen_verified"], e.Data["alert"])
			}
		}
	}
	if reports != hosts {
		t.Errorf("%d agent.log_rollback entries in the rolled-back log, want %d (one per agent, however often it reported)", reports, hosts)
	}
	checkEntryLayouts(t, entries)

	// The next operation's step is refused by its agent, and nothing runs.
	op2 := runTouch(t, q)
	_, watch, _ := q.as("approver1", "--json", "ops", "watch", op2)
	if strings.Contains(watch, `"state":"succeeded"`) && !strings.Contains(watch, `"failed"`) {
		t.Fatalf("an operation ran on agents that saw the log roll back:\n%s", watch)
	}
	if !strings.Contains(watch, "agent refuses: log rollback detected") {
		t.Errorf("the operation's progress does not show the agent's refusal:\n%s", watch)
	}
	refusals := 0
	for _, r := range loggedHosts(t, q.auditEntries("op.halted"), "op.step_results", "") {
		if strings.Contains(string(r["error"]), "agent refuses: log rollback detected") {
			refusals++
		}
	}
	if refusals == 0 {
		t.Error("the log records no step result with the agent's refusal")
	}
	if n := countFiles(t, markers); n != 1 {
		t.Errorf("%d marker files: an agent ran a step after it saw the log roll back", n)
	}
	if got := countLedgerLines(t, agents); got != ledgerBefore {
		t.Errorf("the agents' step ledgers grew from %d to %d lines: a refused step was started", ledgerBefore, got)
	}
}

// runTouch asks for and approves one touch-marker operation on one host.
func runTouch(t *testing.T, q *quickstart) string {
	t.Helper()
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "touch-marker", "--param", "service=billing", "--param", "count=1", "--reason", "INC-7"), &run)
	q.mustAs("approver1", "approve", run.Operation.ID, "--otp", q.otp("approver1"))
	return run.Operation.ID
}

// snapshotPostgres copies the stopped server's database with CREATE
// DATABASE … TEMPLATE and returns the copy's DSN.
func snapshotPostgres(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	orig := strings.TrimPrefix(u.Path, "/")
	snap := orig + "_snap"
	admin, err := sql.Open("pgx", storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + snap + " TEMPLATE " + orig); err != nil {
		t.Fatalf("snapshot the database: %v", err)
	}
	t.Cleanup(func() {
		if a, err := sql.Open("pgx", storetest.PostgresURL(t)); err == nil {
			_, _ = a.Exec("DROP DATABASE IF EXISTS " + snap + " WITH (FORCE)")
			a.Close()
		}
	})
	u.Path = "/" + snap
	return u.String()
}

// agentLogState is the part of an agent's log-witness.json the test reads.
type agentLogState struct {
	Checkpoint    string         `json:"checkpoint"`
	Alarm         *wire.LogAlarm `json:"alarm"`
	AlarmRecorded bool           `json:"alarm_recorded"`
	size          uint64
}

func readAgentLogState(t *testing.T, dir string) agentLogState {
	var s agentLogState
	b, err := os.ReadFile(filepath.Join(dir, "log-witness.json"))
	if err != nil {
		return s
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s/log-witness.json: %v", dir, err)
	}
	if text, _, ok := strings.Cut(s.Checkpoint, "\n\n"); ok {
		if cp, err := tlog.ParseCheckpoint([]byte(text + "\n")); err == nil {
			s.size = cp.Size
		}
	}
	return s
}

// waitAgents waits (up to 45 s: agents reconnect with backoff after a
// restart) until every agent's log state satisfies ok.
func waitAgents(t *testing.T, dir string, n int, what string, ok func(agentLogState) bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		done := 0
		var last agentLogState
		for i := 1; i <= n; i++ {
			s := readAgentLogState(t, filepath.Join(dir, fmt.Sprintf("agent-%02d", i)))
			if ok(s) {
				done++
			} else {
				last = s
			}
		}
		if done == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d agents %s after 45 s; one of the others holds size %d, alarm %+v", done, n, what, last.size, last.Alarm)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// countLedgerLines counts the step IDs every agent has started.
func countLedgerLines(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	matches, _ := filepath.Glob(filepath.Join(dir, "agent-*", "steps.log"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), "\n")
	}
	return n
}

// copyDir copies a directory tree, keeping file modes.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", from, to, err)
	}
}

// auditEntriesN is auditEntries once the log holds n entries of kind.
func (q *quickstart) auditEntriesN(kind string, n int) []auditEntry {
	q.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		entries := q.auditEntries(kind)
		found := 0
		for _, e := range entries {
			if e.Kind == kind {
				found++
			}
		}
		if found >= n || time.Now().After(deadline) {
			return entries
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitCosigned waits until n agents have a cosignature stored, so that
// their first cosignatures (each adds an agent.witness_key entry) are in
// before a test measures the log.
func (q *quickstart) waitCosigned(n int) {
	q.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cs, err := q.app.AgentCosignatures(q.ctx)
		if err != nil {
			q.t.Fatal(err)
		}
		if len(cs) >= n {
			return
		}
		if time.Now().After(deadline) {
			q.t.Fatalf("%d of %d agents cosigned a checkpoint after 30 s", len(cs), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
