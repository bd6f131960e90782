package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/cli"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// quickstart is one running control plane and the people and agents of the
// README's quickstart, all driven through the real CLI over real HTTPS.
type quickstart struct {
	t      *testing.T
	ctx    context.Context
	app    *app.App
	ready  app.Ready
	dir    string
	mu     sync.Mutex
	otpAt  map[string]int64 // last TOTP step used per person
	secret map[string]string
	// stopAgents stops the agents setUp started, as abruptly as an
	// in-process agent can stop (their context ends); idempotent.
	stopAgents func()
	// totp is the clock an in-process server checks one-time codes
	// against; nil for a server in a child process (real time).
	totp *totpClock
}

// totpClock runs ahead of real time by whole 30-second steps: a person
// whose code of this step is used gets the next step's code at once,
// instead of the test sleeping until it comes (the server never accepts a
// step twice).
type totpClock struct{ ahead atomic.Int64 } // nanoseconds

func (c *totpClock) now() time.Time { return time.Now().Add(time.Duration(c.ahead.Load())) }

const password = "correct-horse-battery-staple-42"

// startServer starts `interlock serve`'s App on a free loopback port.
func startServer(t *testing.T, store string) *quickstart {
	t.Helper()
	return startServerWith(t, store, app.Options{})
}

// startServerOpts starts it on SQLite with options (an injected clock).
func startServerOpts(t *testing.T, opt app.Options) *quickstart {
	t.Helper()
	return startServerWith(t, "", opt)
}

func startServerWith(t *testing.T, store string, opt app.Options) *quickstart {
	t.Helper()
	return startServerConfig(t, config.Config{Store: store}, opt)
}

// startServerConfig starts it with cfg (notification sinks, SSO issuers…);
// the listen address, data dir, checkpoint interval and scrape tokens are
// the harness's unless cfg sets them.
func startServerConfig(t *testing.T, cfg config.Config, opt app.Options) *quickstart {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	var clock *totpClock
	if opt.TOTPNow == nil {
		clock = &totpClock{}
		opt.TOTPNow = clock.now
	}
	cfg.DataDir = filepath.Join(dir, "data")
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Second
	}
	if cfg.MetricsTokenSHA256 == nil {
		cfg.MetricsTokenSHA256 = scrapeTokenHashes
	}
	a, err := app.New(ctx, cfg, opt)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	readyc := make(chan app.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(r app.Ready) { readyc <- r }) }()
	var ready app.Ready
	select {
	case ready = <-readyc:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	return &quickstart{t: t, ctx: ctx, app: a, ready: ready, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}, totp: clock}
}

// run runs one CLI command in-process and returns its exit code and output.
func (q *quickstart) run(stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Main(q.ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// must runs a command that must succeed.
func (q *quickstart) must(stdin string, args ...string) string {
	q.t.Helper()
	code, out, errs := q.run(stdin, args...)
	if code != 0 {
		q.t.Fatalf("interlock %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// otp returns a fresh, not yet used TOTP code for user, waiting for the
// next time step when the skew window is used up.
func (q *quickstart) otp(user string) string {
	q.t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		now := time.Now().Unix() / 30
		if q.totp != nil {
			now = q.totp.now().Unix() / 30
			if step := q.otpAt[user] + 1; step > now+1 {
				q.totp.ahead.Add(int64(time.Duration(step-now-1) * 30 * time.Second))
				now = step - 1
			}
		}
		step := max(now, q.otpAt[user]+1)
		if step <= now+1 {
			q.otpAt[user] = step
			code, err := totp.GenerateCode(q.secret[user], time.Unix(step*30, 0))
			if err != nil {
				q.t.Fatal(err)
			}
			return code
		}
		time.Sleep(time.Until(time.Unix((now+1)*30, 0)))
	}
}

func (q *quickstart) readSecret(user, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		q.t.Fatalf("read TOTP secret of %s: %v", user, err)
	}
	q.secret[user] = strings.TrimSpace(string(b))
}

func (q *quickstart) serverFlags() []string {
	return []string{"--server", q.ready.URL, "--ca-fingerprint", q.ready.CAFingerprint}
}

func (q *quickstart) login(user string) {
	q.t.Helper()
	args := append([]string{"--profile", user, "login", "--user", user, "--password-stdin", "--otp", q.otp(user)}, q.serverFlags()...)
	q.must(password+"\n", args...)
}

// as runs a command as user's profile.
func (q *quickstart) as(user string, args ...string) (int, string, string) {
	return q.run("", append([]string{"--profile", user}, args...)...)
}

func (q *quickstart) mustAs(user string, args ...string) string {
	q.t.Helper()
	return q.must("", append([]string{"--profile", user}, args...)...)
}

// auditKinds returns the kinds of every entry `interlock log tail` shows,
// once the log has integrated at least one entry of kind wantKind.
func (q *quickstart) auditKinds(wantKind string) map[string]int {
	q.t.Helper()
	kinds := map[string]int{}
	for _, e := range q.auditEntries(wantKind) {
		kinds[e.Kind]++
	}
	return kinds
}

// auditEntry is the part of a log entry the tests look at.
type auditEntry struct {
	Kind    string
	Version int
	Data    map[string]json.RawMessage
}

// loggedHosts returns the host records of the batch entries of kind
// (op.steps_dispatched or op.step_results) among entries, for phase (""
// means any), each as its JSON object.
func loggedHosts(t *testing.T, entries []auditEntry, kind, phase string) []map[string]json.RawMessage {
	t.Helper()
	list := "steps"
	if kind == "op.step_results" {
		list = "results"
	}
	var out []map[string]json.RawMessage
	for _, e := range entries {
		if e.Kind != kind || (phase != "" && string(e.Data["phase"]) != strconv.Quote(phase)) {
			continue
		}
		var items []map[string]json.RawMessage
		mustJSON(t, string(e.Data[list]), &items)
		out = append(out, items...)
	}
	return out
}

// auditEntries returns every entry `interlock log tail` shows, once the
// log has integrated at least one entry of kind wantKind.
func (q *quickstart) auditEntries(wantKind string) []auditEntry {
	q.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out []auditEntry
		found := false
		for _, line := range strings.Split(strings.TrimSpace(q.mustAs("admin", "--json", "log", "tail", "-n", "100000")), "\n") {
			var e wire.LogEntry
			mustJSON(q.t, line, &e)
			var body auditEntry
			mustJSON(q.t, string(e.Entry), &body)
			out = append(out, body)
			found = found || body.Kind == wantKind
		}
		if found || time.Now().After(deadline) {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

// checkEntryLayouts pins the Data fields of every kind/version the run
// wrote against testdata/audit_kinds.golden: changing a kind's layout
// without a new version fails here (go test ./internal/cli -run
// TestQuickstart -update rewrites the file; review its diff). Kinds the
// file has but this run did not write are left alone.
func checkEntryLayouts(t *testing.T, entries []auditEntry) {
	t.Helper()
	seen := map[string]map[string]bool{}
	for _, e := range entries {
		k := fmt.Sprintf("%s v%d", e.Kind, e.Version)
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		for f := range e.Data {
			seen[k][f] = true
		}
	}
	const golden = "testdata/audit_kinds.golden"
	want := map[string]string{}
	if b, err := os.ReadFile(golden); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, fields, ok := strings.Cut(line, ": "); ok {
				want[k] = fields
			}
		}
	} else if !*update {
		t.Fatalf("read %s: %v (run with -update to create it)", golden, err)
	}
	for k, fs := range seen {
		names := make([]string, 0, len(fs))
		for f := range fs {
			names = append(names, f)
		}
		sort.Strings(names)
		got := strings.Join(names, ",")
		if *update {
			want[k] = got
			continue
		}
		if w, ok := want[k]; !ok {
			t.Errorf("%s is not in %s: a new kind needs its layout pinned (-update)", k, golden)
		} else if w != got {
			t.Errorf("%s changed its Data fields without a new version:\n  golden: %s\n  now:    %s", k, w, got)
		}
	}
	if *update {
		lines := make([]string, 0, len(want))
		for k, fs := range want {
			lines = append(lines, k+": "+fs)
		}
		sort.Strings(lines)
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// setUp walks quickstart steps 2–7: people, agents, services, runbook.
func (q *quickstart) setUp(hosts int) {
	t := q.t
	t.Helper()
	// 2. bootstrap the first admin; the code works once.
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	if code, _, errs := q.run(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "mallory", "--password-stdin"}, q.serverFlags()...)...); code == 0 {
		t.Fatalf("a bootstrap code worked twice")
	} else if !strings.Contains(errs, "code") {
		t.Errorf("second bootstrap refused without naming the code: %s", errs)
	}
	// 3. log in.
	q.login("admin")
	// 4. invite people; each accepts with their own password and TOTP.
	for _, p := range []struct{ user, role string }{{"operator1", "operator"}, {"approver1", "approver"}} {
		var inv wire.Invitation
		if err := json.Unmarshal([]byte(q.mustAs("admin", "--json", "user", "invite", p.user, "--role", p.role)), &inv); err != nil {
			t.Fatalf("invite %s: %v", p.user, err)
		}
		f := filepath.Join(q.dir, p.user+".totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret(p.user, f)
		q.login(p.user)
	}
	// 5. join tokens and agents.
	tokens := strings.TrimSpace(q.mustAs("admin", "join-token", "create", "--services", "index,billing", "--labels", "zone=a", "--ttl", "1h", "--count", strconv.Itoa(hosts)))
	agentCtx, stopAgents := context.WithCancel(q.ctx)
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- agent.Run(agentCtx, agent.Config{Server: q.ready.URL, CAFingerprint: q.ready.CAFingerprint, Token: tokens,
			DataDir: filepath.Join(q.dir, "agents"), Count: hosts, Hostname: "host", HeartbeatInterval: 500 * time.Millisecond})
	}()
	var stopOnce sync.Once
	q.stopAgents = func() { stopOnce.Do(func() { stopAgents(); <-agentDone }) }
	t.Cleanup(q.stopAgents)
	q.waitHealthy(hosts)
	q.waitCosigned(hosts) // each agent's first cosignature is logged: the log is quiet again
	// 6. capacity rules.
	q.mustAs("admin", "service", "set", "billing", "--min-healthy", "50%", "--max-per-operation", "10%")
	q.mustAs("admin", "service", "set", "index", "--min-healthy", "80%")
	// 7. the runbook: operator1 proposes it as a change request, which
	// approver1 approves after seeing the diff (one added runbook, its
	// steps). Not admin: approver1 owes their account to admin, so could
	// not approve admin's request (sock puppets). approver1's login MFA is
	// still fresh, so no new code is needed here.
	out := q.mustAs("operator1", "runbook", "apply", "-f", "../../examples/runbooks/remove-capacity.yaml")
	id := changeID(t, out)
	approved := q.must("y\n", "--profile", "approver1", "change", "approve", id)
	for _, want := range []string{"New runbook remove-capacity:", "+ step:", `"argv"`, "+ health_check:", "+ rollback:", "+ waves:", "Approved. Change " + id + " is applied."} {
		if !strings.Contains(approved, want) {
			t.Errorf("change approve does not show %q:\n%s", want, approved)
		}
	}
	t.Logf("interlock runbook apply:\n%s\ninterlock change approve:\n%s", out, approved)
}

// changeID finds the change request a configuration command said it made.
func changeID(t *testing.T, out string) string {
	t.Helper()
	m := changeIDPattern.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "needs approval by another person: interlock change approve "+m[1]) {
		t.Fatalf("no change request in:\n%s", out)
	}
	return m[1]
}

var changeIDPattern = regexp.MustCompile(`change request (cr_[a-z2-7]+)`)

// mustChange runs a configuration command as requester that must make a
// change request, and has approver approve it (with the approver's login
// MFA still fresh); it returns the request.
func (q *quickstart) mustChange(requester, approver string, args ...string) wire.ChangeRequest {
	q.t.Helper()
	var pend wire.ChangePending
	mustJSON(q.t, q.mustAs(requester, append([]string{"--json"}, args...)...), &pend)
	if pend.ChangeRequest.ID == "" {
		q.t.Fatalf("interlock %s applied at once; want a change request", strings.Join(args, " "))
	}
	var cr wire.ChangeRequest
	mustJSON(q.t, q.mustAs(approver, "--json", "change", "approve", pend.ChangeRequest.ID, "--yes"), &cr)
	if cr.State != "applied" {
		q.t.Fatalf("change %s is %s after approval, want applied", cr.ID, cr.State)
	}
	return cr
}

// loosen runs a loosening configuration command as a second admin, admin2
// (invited by admin on first use, while admin is the only admin), and has
// approver1 approve it: not admin, who invited admin2 (a request of the
// invitee may be the inviter's own), and admin's own requests nobody here
// may approve, as everyone owes their account to admin.
func (q *quickstart) loosen(args ...string) wire.ChangeRequest {
	q.t.Helper()
	if _, err := os.Stat(filepath.Join(q.dir, "admin2.totp")); err != nil {
		var inv wire.Invitation
		mustJSON(q.t, q.mustAs("admin", "--json", "user", "invite", "admin2", "--role", "admin"), &inv)
		f := filepath.Join(q.dir, "admin2.totp")
		q.must(password+"\n", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, q.serverFlags()...)...)
		q.readSecret("admin2", f)
		q.login("admin2")
	}
	return q.mustChange("admin2", "approver1", args...)
}

// waitHealthy waits until n hosts are enrolled and healthy.
func (q *quickstart) waitHealthy(n int) {
	q.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var hosts wire.HostList
		out := q.mustAs("admin", "--json", "hosts")
		if err := json.Unmarshal([]byte(out), &hosts); err != nil {
			q.t.Fatalf("hosts --json: %v\n%s", err, out)
		}
		healthy := 0
		for _, h := range hosts.Hosts {
			if h.Live {
				healthy++
			}
		}
		if healthy == n {
			return
		}
		if time.Now().After(deadline) {
			q.t.Fatalf("%d of %d hosts healthy after 30 s:\n%s", healthy, n, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestQuickstart drives the README's quickstart end to end: the 2017 typo
// is refused before anything runs, self-approval is refused by person, and
// an approved removal of 2 hosts runs in waves to success, every step in
// the log.
func TestQuickstart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := startServer(t, tc.store(t))
			q.setUp(20)
			runQuickstart(t, q)
		})
	}
}

func runQuickstart(t *testing.T, q *quickstart) {
	// 8. The 2017 typo: count=20 instead of 2. Refused, nothing created.
	code, out, errs := q.as("operator1", "run", "remove-capacity", "--param", "service=billing", "--param", "count=20", "--reason", "INC-1")
	if code == 0 {
		t.Fatalf("removing 20 of 20 hosts was not refused:\n%s", out)
	}
	for _, want := range []string{
		"these hosts also serve index: it would keep 0 of 20 healthy hosts, below its floor of 16 (80%)",
		"billing would keep 0 of 20, below its floor of 10 (50%)",
		"at most 2 hosts (10%) of billing may change in one operation",
	} {
		if !strings.Contains(out+errs, want) {
			t.Errorf("refusal does not say %q:\n%s%s", want, out, errs)
		}
	}
	if list := q.mustAs("admin", "--json", "ops", "list"); strings.Contains(list, `"id"`) {
		t.Fatalf("a refused run created an operation:\n%s", list)
	}

	// Self-approval is refused by person: admin (who may approve) asks, then tries to approve.
	var own wire.RunResponse
	mustJSON(t, q.mustAs("admin", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "self-approval check"), &own)
	code, _, errs = q.as("admin", "approve", own.Operation.ID)
	if code == 0 || !strings.Contains(errs, "cannot approve") {
		t.Fatalf("requester approving their own operation: exit %d, %s", code, errs)
	}
	q.mustAs("admin", "deny", own.Operation.ID, "--reason", "only a check")

	// 9. count=2: a plan that passes and needs one approver; --dry-run creates nothing.
	dry := q.mustAs("operator1", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-1", "--dry-run")
	if !strings.Contains(dry, "Dry run") {
		t.Errorf("dry run output:\n%s", dry)
	}
	var run wire.RunResponse
	mustJSON(t, q.mustAs("operator1", "--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=2", "--reason", "INC-1"), &run)
	op := run.Operation
	if op.State != "pending_approval" || op.Needed != 1 {
		t.Fatalf("operation %s is %s needing %d approvals, want pending_approval needing 1", op.ID, op.State, op.Needed)
	}
	hosts := 0
	for _, w := range run.Result.Plan.Waves {
		hosts += len(w.Hosts)
	}
	if hosts != 2 || len(run.Result.Plan.Waves[0].Hosts) != 1 {
		t.Fatalf("plan waves %+v: want 2 hosts with a canary of 1", run.Result.Plan.Waves)
	}

	// 10. operator1 cannot approve; approver1 can, with fresh MFA, and it runs.
	if code, _, _ := q.as("operator1", "approve", op.ID); code == 0 {
		t.Fatal("operator1 approved their own operation")
	}
	q.mustAs("approver1", "approve", op.ID, "--otp", q.otp("approver1"))
	watch := q.mustAs("approver1", "--json", "ops", "watch", op.ID)
	if !strings.Contains(watch, `"succeeded"`) {
		t.Fatalf("ops watch did not end in success:\n%s", watch)
	}

	// 11. The log holds every step.
	entries := q.auditEntries("op.succeeded")
	checkEntryLayouts(t, entries)
	kinds := map[string]int{}
	for _, e := range entries {
		kinds[e.Kind]++
	}
	for _, k := range []string{"identity.bootstrapped", "identity.login", "authz.denied", "identity.invited", "identity.accepted",
		"host.enrolled", "service.set", "change.requested", "change.approved", "change.applied", "runbook.applied", "op.refused", "op.requested", "op.approval_refused",
		"op.approved", "op.steps_dispatched", "op.step_results", "op.succeeded"} {
		if kinds[k] == 0 {
			t.Errorf("the log has no %s entry (kinds: %v)", k, kinds)
		}
	}
	if n := len(loggedHosts(t, entries, "op.steps_dispatched", "")); n < 2 {
		t.Errorf("the log records %d dispatches, want one per host (2)", n)
	}
	// Secrets work from the first start: the server creates their key.
	q.must("s3cr3t-value", "--profile", "admin", "secret", "put", "db/password")
	if got := q.mustAs("admin", "secret", "get", "db/password", "--reason", "INC-1"); strings.TrimSpace(got) != "s3cr3t-value" {
		t.Errorf("secret get = %q, want the value put", got)
	}
	// Revoking a device takes effect on its very next request.
	var devs wire.DeviceList
	mustJSON(t, q.mustAs("admin", "--json", "device", "list", "--all"), &devs)
	revoked := false
	for _, d := range devs.Devices {
		if d.Username == "approver1" {
			q.mustAs("admin", "device", "revoke", d.ID)
			revoked = true
		}
	}
	if !revoked {
		t.Fatalf("approver1 has no device in %+v", devs)
	}
	if code, _, errs := q.as("approver1", "whoami"); code == 0 {
		t.Errorf("a revoked device still works")
	} else if !strings.Contains(errs, "revoked") {
		t.Errorf("revoked device refused without saying so: %s", errs)
	}
	// Logging in again from that profile refuses the revoked key, replaces
	// it, and the next login registers a new device. The refused login
	// rolled back, so its one-time code is still unused.
	loginArgs := append([]string{"--profile", "approver1", "login", "--user", "approver1", "--password-stdin", "--otp", q.otp("approver1")}, q.serverFlags()...)
	if code, _, errs := q.run(password+"\n", loginArgs...); code == 0 || !strings.Contains(errs, "new device key") {
		t.Errorf("login with a revoked device key: exit %d, %s", code, errs)
	}
	q.must(password+"\n", loginArgs...)
	q.mustAs("approver1", "whoami")
	// The record verifies against the log key pinned at login.
	if out := q.mustAs("admin", "log", "verify", "--full"); !strings.Contains(strings.ToLower(out), "verif") {
		t.Errorf("log verify --full said:\n%s", out)
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, s)
	}
}
