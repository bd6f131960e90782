package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/cli"
)

// TestMain lets this test binary be `interlock serve` in a child process,
// so that a test can SIGKILL the real server mid-operation and restart it.
func TestMain(m *testing.M) {
	if args := os.Getenv("INTERLOCK_E2E_SERVE"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(cli.Main(context.Background(), argv, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// childServer is `interlock serve` in a child process.
type childServer struct {
	cmd   *exec.Cmd
	ready app.Ready
}

func startChild(t *testing.T, addr, dataDir string) *childServer {
	t.Helper()
	argv, _ := json.Marshal([]string{"--json", "serve", "--listen", addr, "--data", dataDir, "--checkpoint-interval", "1s"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INTERLOCK_E2E_SERVE="+string(argv))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child server: %v", err)
	}
	c := &childServer{cmd: cmd}
	t.Cleanup(func() { c.kill() })
	if err := json.NewDecoder(out).Decode(&c.ready); err != nil {
		t.Fatalf("child server did not report ready: %v", err)
	}
	return c
}

func (c *childServer) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		_ = c.cmd.Wait()
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const slowRunbook = `name: slow-remove
description: a removal whose step takes a while, for the halt and crash cases
risk: medium
removes_capacity: true
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
  argv: ["sh", "-c", "touch MARKS/started.$$; sleep 2; touch MARKS/ran.$$"]
  timeout_s: 30
waves:
  canary: 1
  size: 50%
  max_concurrency: 5
  halt_after_failures: 0
  bake_s: 0
`

// marks counts the marker files steps leave: how many started, how many ran.
func marks(t *testing.T, dir, prefix string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, prefix+".*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (q *quickstart) opState(user, id string) wire.Operation {
	q.t.Helper()
	var op wire.Operation
	mustJSON(q.t, q.mustAs(user, "--json", "ops", "show", id), &op)
	return op
}

// TestSafetyCases runs the cases the quickstart does not: drift voids
// approvals, the kill switch halts, and a server killed with SIGKILL
// mid-operation comes back without running any host's step twice.
func TestSafetyCases(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	dataDir := filepath.Join(dir, "data")
	child := startChild(t, addr, dataDir)
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := &quickstart{t: t, ctx: ctx, ready: child.ready, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}}

	// People, as in the quickstart.
	secretFile := filepath.Join(dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")
	for _, p := range []struct{ user, role string }{{"operator1", "operator"}, {"approver1", "approver"}} {
		var inv wire.Invitation
		mustJSON(t, q.mustAs("admin", "--json", "user", "invite", p.user, "--role", p.role), &inv)
		f := filepath.Join(dir, p.user+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(p.user, f)
		q.login(p.user)
	}

	// Ten hosts: a-01, a-02 (which the planner picks first, by name) can
	// be made sick by a file; b-01 … b-08 stay well.
	markDir := filepath.Join(dir, "marks")
	sick := filepath.Join(dir, "sick")
	if err := os.MkdirAll(markDir, 0o755); err != nil {
		t.Fatal(err)
	}
	agentCtx, stopAgents := context.WithCancel(ctx)
	var agentDone []chan error
	for _, g := range []struct {
		name   string
		count  int
		health []string
	}{{"a", 2, []string{"test", "!", "-e", sick}}, {"b", 8, nil}} {
		tokens := strings.TrimSpace(q.mustAs("admin", "join-token", "create", "--services", "billing", "--count", fmt.Sprint(g.count)))
		done := make(chan error, 1)
		agentDone = append(agentDone, done)
		go func() {
			done <- agent.Run(agentCtx, agent.Config{Server: q.ready.URL, CAFingerprint: q.ready.CAFingerprint, Token: tokens,
				DataDir: filepath.Join(dir, "agents-"+g.name), Count: g.count, Hostname: g.name, HealthCommand: g.health,
				HeartbeatInterval: 300 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
		}()
	}
	defer func() {
		stopAgents()
		for _, d := range agentDone {
			<-d
		}
	}()
	q.waitHealthy(10)
	q.mustAs("admin", "service", "set", "billing", "--min-healthy", "2", "--max-per-operation", "50%")
	rb := filepath.Join(dir, "slow-remove.yaml")
	if err := os.WriteFile(rb, []byte(strings.ReplaceAll(slowRunbook, "MARKS", markDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	q.mustChange("operator1", "approver1", "runbook", "apply", "-f", rb)
	run := func(count int) wire.Operation {
		var r wire.RunResponse
		mustJSON(t, q.mustAs("operator1", "--json", "run", "slow-remove", "--param", "service=billing", "--param", fmt.Sprintf("count=%d", count), "--reason", "INC-2"), &r)
		return r.Operation
	}

	t.Run("drift voids approvals", func(t *testing.T) {
		defer q.use(t)()
		op := run(2)
		if err := os.WriteFile(sick, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a-01 and a-02 to report unhealthy", 10*time.Second, func() bool {
			var hosts wire.HostList
			mustJSON(t, q.mustAs("admin", "--json", "hosts"), &hosts)
			sickHosts := 0
			for _, h := range hosts.Hosts {
				if strings.HasPrefix(h.Name, "a-") && !h.Live {
					sickHosts++
				}
			}
			return sickHosts == 2
		})
		code, _, errs := q.as("approver1", "approve", op.ID, "--otp", q.otp("approver1"))
		if code == 0 {
			t.Fatalf("approval of a drifted plan was accepted")
		}
		if got := q.opState("admin", op.ID); got.State != "void" {
			t.Errorf("drifted operation is %s (%s), want void; approve said: %s", got.State, got.Detail, errs)
		}
		if n := marks(t, markDir, "started"); n != 0 {
			t.Errorf("%d steps started for a drifted plan", n)
		}
		if err := os.Remove(sick); err != nil {
			t.Fatal(err)
		}
		q.waitHealthy(10)
	})

	t.Run("kill switch halts within a second", func(t *testing.T) {
		defer q.use(t)()
		op := run(4)
		// approver1 logged in minutes ago: that MFA is still fresh enough.
		q.mustAs("approver1", "approve", op.ID)
		waitFor(t, "the canary to start", 10*time.Second, func() bool { return marks(t, markDir, "started") >= 1 })
		began := time.Now()
		q.mustAs("operator1", "ops", "halt", op.ID, "--reason", "looks wrong")
		if took := time.Since(began); took > time.Second {
			t.Errorf("halt took %s, want under 1 s", took)
		}
		if got := q.opState("admin", op.ID); got.State != "halted" {
			t.Fatalf("after halt the operation is %s", got.State)
		}
		started := marks(t, markDir, "started")
		time.Sleep(3 * time.Second) // longer than a step: a second wave would have started by now
		if n := marks(t, markDir, "started"); n != started || n != 1 {
			t.Errorf("steps started: %d at halt, %d three seconds later; want only the canary's 1", started, n)
		}
		q.mustAs("operator1", "ops", "abort", op.ID, "--reason", "done checking")
	})

	t.Run("SIGKILL mid-operation runs no step twice", func(t *testing.T) {
		defer q.use(t)()
		before := marks(t, markDir, "started")
		op := run(2)
		q.mustAs("approver1", "approve", op.ID)
		waitFor(t, "the canary to start", 10*time.Second, func() bool { return marks(t, markDir, "started") > before })
		child.kill()
		child = startChild(t, addr, dataDir)
		q.waitHealthy(10)
		// The canary's step was in flight: the restarted server records it
		// unknown, and its agent's ledger settles it (the agent finished
		// it, or finishes it, and reports from its ledger), so the
		// operation continues without a person and sends no host its step
		// twice.
		watch := q.mustAs("operator1", "--json", "ops", "watch", op.ID)
		if !strings.Contains(watch, `"succeeded"`) {
			t.Fatalf("the operation did not continue to success after the crash:\n%s", watch)
		}
		canary := op.Plan.Waves[0].Hosts[0]
		var unknown, settled bool
		for _, e := range q.auditEntries("op.step_settled") {
			unknown = unknown || e.Kind == "op.step_unknown" && string(e.Data["host"]) == `"`+canary+`"`
			settled = settled || e.Kind == "op.step_settled" && string(e.Data["host"]) == `"`+canary+`"` && string(e.Data["source"]) == `"agent ledger"`
		}
		if !unknown || !settled {
			t.Errorf("the log does not show the canary %s unknown after the crash (%v) and settled from its agent's ledger (%v)", canary, unknown, settled)
		}
		waitFor(t, "the steps to finish", 10*time.Second, func() bool { return marks(t, markDir, "ran") >= marks(t, markDir, "started") })
		if n := marks(t, markDir, "started") - before; n != 2 {
			t.Errorf("%d step runs for 2 hosts across a crash, want exactly 2 (no host twice)", n)
		}
	})
}

// use makes q report failures to t (a subtest) until the returned func runs.
func (q *quickstart) use(t *testing.T) func() {
	parent := q.t
	q.t = t
	return func() { q.t = parent }
}
