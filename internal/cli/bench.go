package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
)

// `interlock bench fleet` measures how one server carries a fleet: it
// starts `interlock serve` as a child process (so the server's CPU and
// memory are read from /proc for that process alone, never mixed with the
// agents'), drives it through the same CLI commands a person uses, and
// runs N in-process agents (agent --count N) in its own process.

var _ = register(newBenchCmd)

func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this build: bench fleet starts one server and N agents and prints what it costs",
		Args:  cobra.NoArgs,
	}
	var cfg fleetBench
	fleet := &cobra.Command{
		Use:   "fleet",
		Short: "Start one server (a child process, SQLite in a temp dir, HTTPS on loopback) and N in-process agents; print enroll time, server RSS, idle CPU and approval-to-done latency",
		Long: `Start one server and N agents on this machine and measure the server.

The server is "interlock serve" run as a child process with its data in a
temporary directory (or --store postgres://…); the agents run in this
process, so the server's figures (read from /proc/PID of the child) do not
include the agents' own CPU or memory. The bench bootstraps an admin,
invites an operator and an approver, applies a runbook through a change
request, creates N join tokens and starts "agent --count N". It prints:

  enroll      time from the agents' start until all N are live in "hosts"
  rss         the server's resident memory with N connected agents (and per agent)
  idle cpu    the server's CPU over --window of heartbeats, as % of one core,
              and per heartbeat
  dispatch    from approval to the operation's success: one step (and its
              health check) on every host, in a canary wave of 1 then the rest,
              and the server's CPU per host for it

Linux only (it reads /proc). Everything is removed at the end unless --keep.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.e = e
			return cfg.run(cmd.Context())
		},
	}
	fleet.Flags().IntVar(&cfg.agents, "agents", 1000, "how many agents to run")
	fleet.Flags().DurationVar(&cfg.heartbeat, "heartbeat", 5*time.Second, "the agents' heartbeat interval")
	fleet.Flags().DurationVar(&cfg.window, "window", 30*time.Second, "how long to measure idle CPU")
	fleet.Flags().DurationVar(&cfg.settle, "settle", 15*time.Second, "how long to wait after enrollment before measuring (first cosignatures, connection churn)")
	fleet.Flags().StringVar(&cfg.store, "store", "", "PostgreSQL URL for the server (default: SQLite in the temp dir)")
	fleet.Flags().StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the server's Go CPU profile (its whole run) to this file, for go tool pprof")
	fleet.Flags().StringVar(&cfg.profileDir, "profile-dir", "", "write the server's CPU and heap profiles of the enrollment (cpu-1.prof, heap-1.prof, mem-1.txt), the idle window (…-2) and the dispatch (…-3) to this directory")
	fleet.Flags().BoolVar(&cfg.keep, "keep", false, "keep the temp dir (server log, data) and print its path")
	cmd.AddCommand(fleet)
	return cmd
}

type fleetBench struct {
	e          *env
	agents     int
	heartbeat  time.Duration
	window     time.Duration
	settle     time.Duration
	store      string
	keep       bool
	cpuProfile string
	profileDir string

	dir     string
	ready   struct{ URL, CAFingerprint, BootstrapCode string }
	beats   atomic.Uint64 // heartbeats the agents had answered
	phases  phaseClock    // when the agents' step results were taken, by phase
	secrets map[string]string
	otpAt   map[string]int64
}

// FleetBenchResult is what bench fleet prints with --json.
type FleetBenchResult struct {
	Agents              int     `json:"agents"`
	HeartbeatSeconds    float64 `json:"heartbeat_s"`
	EnrollSeconds       float64 `json:"enroll_s"`
	ServerRSSMiB        float64 `json:"server_rss_mib"`
	ServerPeakRSSMiB    float64 `json:"server_peak_rss_mib"`
	RSSPerAgentKiB      float64 `json:"rss_per_agent_kib"`
	ServerThreads       int     `json:"server_threads"`
	IdleCPUPercent      float64 `json:"idle_cpu_percent_of_core"`
	HeartbeatsPerSecond float64 `json:"heartbeats_per_s"`
	CPUPerHeartbeatUS   float64 `json:"cpu_per_heartbeat_us"`
	DispatchSeconds     float64 `json:"dispatch_s"`
	DispatchCPUPerHostM float64 `json:"dispatch_cpu_per_host_ms"`
	// DispatchNetCPUPerHostM leaves out the heartbeats' share (at the idle rate).
	DispatchNetCPUPerHostM float64 `json:"dispatch_net_cpu_per_host_ms"`
	// StepAnsweredSeconds and HealthAnsweredSeconds are from the approval
	// until the server had taken every host's step result, and every
	// host's health check result (both canary and the rest).
	StepAnsweredSeconds   float64 `json:"step_answered_s"`
	HealthAnsweredSeconds float64 `json:"health_answered_s"`
	// AgentsCPUSeconds is what this process (the agents) and the step
	// processes it ran used during the operation: on one machine the
	// fleet's own work competes with the server for the same cores.
	AgentsCPUSeconds float64 `json:"agents_cpu_s"`
	OpState          string  `json:"op_state"`
	Load             string  `json:"load"`
}

const benchPassword = "bench-password-correct-horse-42"

func (b *fleetBench) logf(format string, args ...any) {
	fmt.Fprintf(b.e.stderr, "bench: "+format+"\n", args...)
}

func (b *fleetBench) run(ctx context.Context) error {
	if b.agents < 1 {
		return fmt.Errorf("--agents %d: run at least one agent", b.agents)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return errors.New("bench fleet reads the server's CPU and memory from /proc, which this system does not have")
	}
	// The agents run here: a connection each, and the pipes of the step
	// processes they run at once (at most 512 in one process).
	if got, warn := raiseOpenFiles(uint64(b.agents) + 3072); warn != "" {
		return fmt.Errorf("--agents %d: %s (the limit is %d)", b.agents, warn, got)
	}
	var err error
	if b.dir, err = os.MkdirTemp("", "interlock-bench-"); err != nil {
		return err
	}
	if b.keep {
		b.logf("working in %s", b.dir)
	} else {
		defer os.RemoveAll(b.dir)
	}
	b.secrets, b.otpAt = map[string]string{}, map[string]int64{}
	if err := os.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(b.dir, "config")); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	server, err := b.startServer(ctx)
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		_ = server.Wait()
	}()
	pid := server.Process.Pid
	res := FleetBenchResult{Agents: b.agents, HeartbeatSeconds: b.heartbeat.Seconds()}

	tokens, err := b.setUp()
	if err != nil {
		return err
	}

	// The agents, in this process; their warnings go to agents.log.
	agentLog, err := os.Create(filepath.Join(b.dir, "agents.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()
	agentCtx, stopAgents := context.WithCancel(ctx)
	agentsDone := make(chan error, 1)
	start := time.Now()
	go func() {
		agentsDone <- agent.Run(agentCtx, agent.Config{Server: b.ready.URL, CAFingerprint: b.ready.CAFingerprint,
			Token: strings.Join(tokens, ","), DataDir: filepath.Join(b.dir, "agents"), Count: b.agents, Hostname: "bench",
			HeartbeatInterval: b.heartbeat, Log: slog.New(slog.NewTextHandler(agentLog, &slog.HandlerOptions{Level: slog.LevelWarn})),
			OnHeartbeat: func() { b.beats.Add(1) }, OnStepReported: b.phases.reported})
	}()
	defer func() { stopAgents(); <-agentsDone }()
	b.profile(server, profileStart)
	err = b.waitLive(ctx, agentsDone)
	b.profile(server, profileStop)
	if err != nil {
		return err
	}
	res.EnrollSeconds = time.Since(start).Seconds()
	b.logf("%d agents enrolled and live in %.1f s", b.agents, res.EnrollSeconds)

	b.logf("settling for %s, then measuring idle CPU for %s", b.settle, b.window)
	if err := benchSleep(ctx, b.settle); err != nil {
		return err
	}
	b.profile(server, profileStart)
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	t0, beats0 := time.Now(), b.beats.Load()
	if err := benchSleep(ctx, b.window); err != nil {
		return err
	}
	beats := float64(b.beats.Load() - beats0)
	b.profile(server, profileStop)
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	elapsed := time.Since(t0)
	res.IdleCPUPercent = 100 * (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	// Counted, not computed from --heartbeat: a server with a large fleet
	// asks its agents for fewer (agenthub heartbeat.go).
	res.HeartbeatsPerSecond = beats / elapsed.Seconds()
	res.CPUPerHeartbeatUS = (cpu1 - cpu0).Seconds() * 1e6 / max(beats, 1)
	mem, err := procMem(pid)
	if err != nil {
		return err
	}
	res.ServerRSSMiB, res.ServerPeakRSSMiB, res.ServerThreads = float64(mem.rss)/(1<<20), float64(mem.hwm)/(1<<20), mem.threads
	res.RSSPerAgentKiB = float64(mem.rss) / 1024 / float64(b.agents)
	b.logf("idle: %.1f%% of a core, %.0f heartbeats/s (%.0f µs of server CPU per heartbeat); RSS %.0f MiB", res.IdleCPUPercent, res.HeartbeatsPerSecond, res.CPUPerHeartbeatUS, res.ServerRSSMiB)

	// One step on every host: approval to success.
	b.profile(server, profileStart)
	err = b.dispatchAll(ctx, pid, &res)
	b.profile(server, profileStop)
	if err != nil {
		// What was measured still stands: print it, then the failure.
		res.OpState = "not measured: " + err.Error()
	}
	res.Load = loadAverage()
	if perr := b.print(res); perr != nil {
		return perr
	}
	return err
}

// startServer runs `interlock serve --json` as a child and reads its
// ready line.
func (b *fleetBench) startServer(ctx context.Context) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start the server: %w", err)
	}
	args := []string{"--json", "serve", "--data", filepath.Join(b.dir, "data"), "--listen", "127.0.0.1:0"}
	if b.store != "" {
		args = append(args, "--store", b.store)
	}
	if b.cpuProfile != "" {
		args = append(args, "--cpuprofile", b.cpuProfile)
	}
	if b.profileDir != "" {
		dir, err := filepath.Abs(b.profileDir)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("--profile-dir: %w", err)
		}
		args = append(args, "--profile-dir", dir)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	logFile, err := os.Create(filepath.Join(b.dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server: %w", err)
	}
	// serve --json prints its ready value (indented) once it listens.
	dec := json.NewDecoder(out)
	if err := dec.Decode(&b.ready); err != nil || b.ready.URL == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tail, _ := os.ReadFile(logFile.Name())
		return nil, fmt.Errorf("the server did not start (%v):\n%s", err, lastLines(string(tail), 20))
	}
	go func() { _, _ = io.Copy(io.Discard, io.MultiReader(dec.Buffered(), out)) }()
	b.logf("server pid %d on %s", cmd.Process.Pid, b.ready.URL)
	return cmd, nil
}

// profile starts (SIGUSR1) or stops (SIGUSR2) the server's profile of a
// phase when --profile-dir is set (serve_profile.go).
func (b *fleetBench) profile(server *exec.Cmd, sig os.Signal) {
	if b.profileDir == "" || sig == nil {
		return
	}
	if err := server.Process.Signal(sig); err != nil {
		b.logf("profile: %v", err)
	}
	if sig == profileStop {
		time.Sleep(2 * time.Second) // the heap profile runs a GC first
	}
}

// cli runs one command of this CLI in-process, as user's profile when
// user is not "".
func (b *fleetBench) cli(stdin, user string, args ...string) (string, error) {
	if user != "" {
		args = append([]string{"--profile", user}, args...)
	}
	var out, errb bytes.Buffer
	if code := Main(b.e.ctx, args, strings.NewReader(stdin), &out, &errb); code != 0 {
		return "", fmt.Errorf("interlock %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (b *fleetBench) serverFlags() []string {
	return []string{"--server", b.ready.URL, "--ca-fingerprint", b.ready.CAFingerprint}
}

// otp returns a TOTP code for user that was not used before.
func (b *fleetBench) otp(user string) (string, error) {
	for {
		now := time.Now().Unix() / 30
		step := max(now, b.otpAt[user]+1)
		if step <= now+1 {
			b.otpAt[user] = step
			return totp.GenerateCode(b.secrets[user], time.Unix(step*30, 0))
		}
		time.Sleep(time.Until(time.Unix((now+1)*30, 0)))
	}
}

func (b *fleetBench) readSecret(user, file string) error {
	s, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read the TOTP secret of %s: %w", user, err)
	}
	b.secrets[user] = strings.TrimSpace(string(s))
	return nil
}

func (b *fleetBench) login(user string) error {
	code, err := b.otp(user)
	if err != nil {
		return err
	}
	_, err = b.cli(benchPassword+"\n", user, append([]string{"login", "--user", user, "--password-stdin", "--otp", code}, b.serverFlags()...)...)
	return err
}

// benchRunbook runs `true` on every targeted host: a canary of one, then
// the rest in one wave, with a health check (a runbook that keeps hosts in
// service needs one, or a bake of the staleness window between waves).
const benchRunbook = `name: bench-step
description: "One harmless step on every host (interlock bench fleet)."
risk: medium
parameters:
  - name: service
    type: service
  - name: count
    type: int
    min: 1
    max: 1000000
target:
  service: service
  count: count
step:
  argv: ["true"]
  timeout_s: 60
health_check:
  argv: ["true"]
  timeout_s: 60
waves:
  canary: 1
  size: 100%
`

// setUp walks the quickstart: admin, operator, approver, join tokens,
// runbook. It returns the join tokens.
func (b *fleetBench) setUp() ([]string, error) {
	sf := filepath.Join(b.dir, "admin.totp")
	if _, err := b.cli(benchPassword+"\n", "", append([]string{"bootstrap", "--code", b.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", sf}, b.serverFlags()...)...); err != nil {
		return nil, err
	}
	if err := b.readSecret("admin", sf); err != nil {
		return nil, err
	}
	if err := b.login("admin"); err != nil {
		return nil, err
	}
	var tokens []string
	for len(tokens) < b.agents {
		n := min(1000, b.agents-len(tokens))
		out, err := b.cli("", "admin", "join-token", "create", "--services", "bench", "--ttl", "2h", "--count", strconv.Itoa(n))
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, strings.Split(strings.TrimSpace(out), ",")...)
	}
	for _, p := range []struct{ user, role string }{{"operator1", "operator"}, {"approver1", "approver"}} {
		var inv wire.Invitation
		out, err := b.cli("", "admin", "--json", "user", "invite", p.user, "--role", p.role)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(out), &inv); err != nil {
			return nil, fmt.Errorf("invite %s: %w", p.user, err)
		}
		f := filepath.Join(b.dir, p.user+".totp")
		if _, err := b.cli(benchPassword+"\n", "", append([]string{"user", "accept", "--code", inv.Code, "--password-stdin", "--totp-secret-out", f}, b.serverFlags()...)...); err != nil {
			return nil, err
		}
		if err := b.readSecret(p.user, f); err != nil {
			return nil, err
		}
		if err := b.login(p.user); err != nil {
			return nil, err
		}
	}
	rbFile := filepath.Join(b.dir, "bench-step.yaml")
	if err := os.WriteFile(rbFile, []byte(benchRunbook), 0o600); err != nil {
		return nil, err
	}
	var pend wire.ChangePending
	out, err := b.cli("", "operator1", "--json", "runbook", "apply", "-f", rbFile)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(out), &pend); err != nil || pend.ChangeRequest.ID == "" {
		return nil, fmt.Errorf("runbook apply made no change request: %s", out)
	}
	if _, err := b.cli("", "approver1", "change", "approve", pend.ChangeRequest.ID, "--yes"); err != nil {
		return nil, err
	}
	return tokens, nil
}

// waitLive waits until every agent is live in `hosts`.
func (b *fleetBench) waitLive(ctx context.Context, agentsDone <-chan error) error {
	last := -1
	// Each poll lists every host, on the server being measured: poll
	// less often as the fleet grows (every 5 s at 10,000).
	every := max(time.Second, time.Duration(b.agents)*time.Second/2000)
	for {
		select {
		case err := <-agentsDone:
			return fmt.Errorf("the agents stopped: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
		out, err := b.cli("", "admin", "--json", "hosts")
		if err != nil {
			// A server busy enrolling thousands may answer late: ask again.
			b.logf("hosts: %v (asking again)", err)
			continue
		}
		var hosts wire.HostList
		if err := json.Unmarshal([]byte(out), &hosts); err != nil {
			return fmt.Errorf("hosts --json: %w", err)
		}
		live := 0
		for _, h := range hosts.Hosts {
			if h.Live {
				live++
			}
		}
		if live != last {
			b.logf("%d of %d agents live", live, b.agents)
			last = live
		}
		if live == b.agents {
			return nil
		}
	}
}

// dispatchAll runs the bench runbook on every host and measures approval
// to success, and the server's CPU meanwhile.
func (b *fleetBench) dispatchAll(ctx context.Context, pid int, res *FleetBenchResult) error {
	var run wire.RunResponse
	out, err := b.cli("", "operator1", "--json", "run", "bench-step", "--param", "service=bench", "--param", "count="+strconv.Itoa(b.agents), "--reason", "bench fleet")
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), &run); err != nil {
		return fmt.Errorf("run --json: %w", err)
	}
	id := run.Operation.ID
	if run.Started || run.Operation.Needed == 0 {
		return fmt.Errorf("operation %s needed no approval; the bench measures from an approval", id)
	}
	code, err := b.otp("approver1")
	if err != nil {
		return err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	self0, err := procCPUWithChildren(os.Getpid())
	if err != nil {
		return err
	}
	if b.profileDir != "" {
		stop, err := startCPUProfile(filepath.Join(b.profileDir, "agents-cpu-3.prof"))
		if err != nil {
			return err
		}
		defer stop()
	}
	start := time.Now()
	b.phases.reset()
	if _, err := b.cli("", "approver1", "approve", id, "--otp", code); err != nil {
		return err
	}
	for {
		// Polled slowly (the answer carries the whole plan, and its cost
		// lands on the server being measured): the operation's own
		// updated_at, the server's clock on this machine, dates the end.
		if err := benchSleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
		var op wire.Operation
		out, err := b.cli("", "approver1", "--json", "ops", "show", id)
		if err != nil {
			b.logf("ops show: %v (asking again)", err)
			continue
		}
		if err := json.Unmarshal([]byte(out), &op); err != nil {
			return fmt.Errorf("ops show --json: %w", err)
		}
		if op.State == "running" || op.State == "ready" {
			continue
		}
		cpu1, err := procCPU(pid)
		if err != nil {
			return err
		}
		observed := time.Since(start)
		res.DispatchSeconds = observed.Seconds()
		if op.UpdatedAt.After(start) && op.UpdatedAt.Before(start.Add(observed)) {
			res.DispatchSeconds = op.UpdatedAt.Sub(start).Seconds()
		}
		res.OpState = op.State
		if self1, err := procCPUWithChildren(os.Getpid()); err == nil {
			res.AgentsCPUSeconds = (self1 - self0).Seconds()
		}
		res.StepAnsweredSeconds = b.phases.allAnswered("run", b.agents, start)
		res.HealthAnsweredSeconds = b.phases.allAnswered("health", b.agents, start)
		cpu := (cpu1 - cpu0).Seconds()
		res.DispatchCPUPerHostM = cpu * 1000 / float64(b.agents)
		// What the heartbeats cost meanwhile, at the idle rate, is not the step's.
		net := cpu - res.IdleCPUPercent/100*observed.Seconds()
		res.DispatchNetCPUPerHostM = max(net, 0) * 1000 / float64(b.agents)
		b.logf("operation %s %s after %.2f s (%.2f ms of server CPU per host, %.2f ms above idle)", id, op.State, res.DispatchSeconds, res.DispatchCPUPerHostM, res.DispatchNetCPUPerHostM)
		if op.State != "succeeded" {
			return fmt.Errorf("the operation ended %s, not succeeded: %s (run with --keep and read server.log, or interlock ops watch %s)", op.State, op.Detail, id)
		}
		return nil
	}
}

func (b *fleetBench) print(r FleetBenchResult) error {
	if b.e.json {
		return b.e.printJSON(r)
	}
	w := b.e.stdout
	fmt.Fprintf(w, "agents               %d (heartbeat every %s)\n", r.Agents, b.heartbeat)
	fmt.Fprintf(w, "enroll               %.1f s (%.0f agents/s)\n", r.EnrollSeconds, float64(r.Agents)/r.EnrollSeconds)
	fmt.Fprintf(w, "server rss           %.0f MiB (peak %.0f MiB), %.1f KiB per agent, %d threads\n", r.ServerRSSMiB, r.ServerPeakRSSMiB, r.RSSPerAgentKiB, r.ServerThreads)
	fmt.Fprintf(w, "server idle cpu      %.1f%% of one core over %s, %.0f heartbeats/s (%.0f µs per heartbeat, all idle CPU counted)\n", r.IdleCPUPercent, b.window, r.HeartbeatsPerSecond, r.CPUPerHeartbeatUS)
	fmt.Fprintf(w, "approval to done     %.2f s for step + health check on %d hosts (canary 1, then %d) — %s\n", r.DispatchSeconds, r.Agents, r.Agents-1, r.OpState)
	fmt.Fprintf(w, "  every step answered  %.2f s after the approval; every health check %.2f s\n", r.StepAnsweredSeconds, r.HealthAnsweredSeconds)
	fmt.Fprintf(w, "server cpu per host  %.2f ms during the operation, %.2f ms above idle\n", r.DispatchCPUPerHostM, r.DispatchNetCPUPerHostM)
	fmt.Fprintf(w, "agents' cpu          %.1f s during the operation (the agents and their %d step processes, on the same cores)\n", r.AgentsCPUSeconds, 2*r.Agents)
	fmt.Fprintf(w, "load average         %s\n", r.Load)
	return nil
}

// procCPU is the user+system CPU time of process pid so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the server's CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has %d fields after the name", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(utime+stime) * (time.Second / 100), nil
}

// procCPUWithChildren is procCPU plus the CPU time of the process's
// children that it waited for (the step processes the agents ran).
func procCPUWithChildren(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of process %d: %w", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat has %d fields after the name", pid, len(fields))
	}
	var total int64
	for _, f := range fields[11:15] { // utime, stime, cutime, cstime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		total += n
	}
	return time.Duration(total) * (time.Second / 100), nil
}

// phaseClock counts the step results the server took, by phase, and
// when the count of each last grew.
type phaseClock struct {
	mu    sync.Mutex
	count map[string]int
	last  map[string]time.Time
}

func (c *phaseClock) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count, c.last = map[string]int{}, map[string]time.Time{}
}

func (c *phaseClock) reported(phase string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count == nil {
		return // before the operation the bench measures
	}
	c.count[phase]++
	c.last[phase] = time.Now()
}

// allAnswered is the seconds from start until n results of phase were
// taken, or 0 if fewer were.
func (c *phaseClock) allAnswered(phase string, n int, start time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count[phase] < n {
		return 0
	}
	return c.last[phase].Sub(start).Seconds()
}

type procMemory struct {
	rss, hwm int64 // bytes
	threads  int
}

func procMem(pid int) (procMemory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, fmt.Errorf("read the server's memory: %w", err)
	}
	var m procMemory
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n << 10
		case "VmHWM":
			m.hwm = n << 10
		case "Threads":
			m.threads = int(n)
		}
	}
	return m, nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// benchSleep waits d, or until ctx ends (its error).
func benchSleep(ctx context.Context, d time.Duration) error {
	if !sleepCtx(ctx, d) {
		return ctx.Err()
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startCPUProfile writes a CPU profile to file until stop is called.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
