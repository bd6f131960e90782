package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/redact"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
)

const (
	defaultStepTimeout = wire.DefaultStepTimeoutSeconds * time.Second
	defaultOutputBytes = wire.DefaultMaxOutputBytes
	// secretSlack is how much output is kept beyond the cap so that a
	// secret straddling the cap (up to a 4096-bit RSA key in PEM) is seen
	// whole by the secret detector and redacted before the cut.
	secretSlack = 8 << 10
)

// handleStep runs a step at most once. A StepID already in flight is
// ignored (its result is on its way); one that finished recently has its
// result reported again (from memory or the ledger); one in the ledger
// without a kept result is refused with an error result — never run again.
// Every result is written to the ledger before it is reported, so a
// server that misses the report learns it at the agent's next connect.
func (a *agent) handleStep(ctx context.Context, step wire.Step) {
	// Two heartbeats: an answer that crossed a change of the log brings
	// no proof, and the next one does.
	checked := a.wit.waitChecked(ctx, 2*a.cfg.HeartbeatInterval+10*time.Second)
	a.mu.Lock()
	res, ok := a.results.get(step.StepID)
	if !ok {
		res, ok = a.ledger.result(step.StepID)
	}
	if ok {
		a.mu.Unlock()
		a.log.InfoContext(ctx, "step already ran; reporting its result again", slog.String("step", step.StepID))
		a.report(ctx, res)
		return
	}
	if a.running[step.StepID] {
		a.mu.Unlock()
		return
	}
	now := a.cfg.Now()
	why := a.wit.refusal()
	if why == "" && !checked {
		why = "agent refuses: no heartbeat answer on this connection has shown that the server's audit log extends the history this agent verified, so it runs nothing yet; the step may be sent again"
	}
	if why != "" {
		// Not in the ledger: it never ran, and may run once the operator
		// has cleared the alarm (or once the log has been checked).
		a.mu.Unlock()
		a.log.ErrorContext(ctx, "refusing a step", slog.String("step", step.StepID), slog.String("op", step.OpID), slog.String("reason", why))
		a.report(ctx, wire.StepResult{StepID: step.StepID, ExitCode: -1, StartedAt: now, FinishedAt: now, Error: why})
		return
	}
	if a.ledger.has(step.StepID) {
		a.mu.Unlock()
		a.log.WarnContext(ctx, "refusing to run a step twice", slog.String("step", step.StepID), slog.String("op", step.OpID))
		a.report(ctx, wire.StepResult{StepID: step.StepID, ExitCode: -1, StartedAt: now, FinishedAt: now,
			Error: "this agent already started this step (before a restart or reconnect) and refuses to run it twice; its outcome is unknown"})
		return
	}
	if err := validStepID(step.StepID); err != nil {
		a.mu.Unlock()
		a.report(ctx, wire.StepResult{StepID: step.StepID, ExitCode: -1, StartedAt: now, FinishedAt: now, Error: err.Error()})
		return
	}
	// Durably remember the step BEFORE it starts: a crash after this line
	// means the step is refused later, never run twice.
	if err := a.ledger.add(step.StepID); err != nil {
		a.mu.Unlock()
		a.log.ErrorContext(ctx, "cannot record step; not running it", slog.String("step", step.StepID), slog.String("error", err.Error()))
		a.report(ctx, wire.StepResult{StepID: step.StepID, ExitCode: -1, StartedAt: now, FinishedAt: now,
			Error: "the agent could not record the step in its ledger, so it did not run it"})
		return
	}
	a.running[step.StepID] = true
	a.mu.Unlock()

	a.log.InfoContext(ctx, "running step", slog.String("step", step.StepID), slog.String("op", step.OpID), slog.String("phase", step.Phase))
	if slots := a.cfg.processSlots; slots != nil {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
		}
	}
	res = runStep(ctx, step, a.cfg.MaxOutputBytes, a.cfg.Now)
	a.log.InfoContext(ctx, "step finished", slog.String("step", step.StepID), slog.Int("exit", res.ExitCode), slog.Bool("timed_out", res.TimedOut))

	if err := a.ledger.finish(res); err != nil {
		// Still reported now; only a later replay of it is lost.
		a.log.ErrorContext(ctx, "cannot record the step's result in the ledger", slog.String("step", step.StepID), slog.String("error", err.Error()))
	}
	a.mu.Lock()
	delete(a.running, step.StepID)
	a.results.put(res)
	a.mu.Unlock()
	if a.report(ctx, res) {
		a.acked(ctx, step.StepID)
		if a.cfg.OnStepReported != nil {
			a.cfg.OnStepReported(step.Phase)
		}
	}
}

// acked records that a server took a step's result.
func (a *agent) acked(ctx context.Context, stepID string) {
	if err := a.ledger.ack(stepID); err != nil {
		a.log.WarnContext(ctx, "cannot record that the server took a result; it will be sent again", slog.String("step", stepID), slog.String("error", err.Error()))
	}
}

// replayLedger reports, at each connect, the results in the ledger that no
// server has taken yet: steps that finished while the server was away,
// and steps this agent stopped during (interrupted). A server settles the
// steps it lost track of from them; one that already knows the outcome
// takes them without change.
func (a *agent) replayLedger(ctx context.Context) {
	for _, res := range a.ledger.unreported() {
		a.mu.Lock()
		running := a.running[res.StepID]
		a.mu.Unlock()
		if running || ctx.Err() != nil {
			continue
		}
		a.log.InfoContext(ctx, "reporting a result from the ledger", slog.String("step", res.StepID), slog.Int("exit", res.ExitCode))
		if a.reportOnce(ctx, res) {
			a.acked(ctx, res.StepID)
		}
	}
}

func validStepID(id string) error {
	if id == "" || len(id) > 200 || strings.ContainsAny(id, "\n\r\x00") || strings.HasPrefix(strings.TrimSpace(id), "{") {
		return fmt.Errorf("step ID %q is not valid", id)
	}
	return nil
}

// stepWaitDelay is how long a step's output may still be read after it
// exits (see runStep).
const stepWaitDelay = 15 * time.Second

// runStep runs one step: argv without a shell (or `/bin/sh -c` with the
// argv joined by spaces when Shell is set), killed with its process group
// after the timeout, combined output capped and redacted.
func runStep(ctx context.Context, step wire.Step, hardCap int, now func() time.Time) wire.StepResult {
	res := wire.StepResult{StepID: step.StepID, StartedAt: now()}
	limit := step.MaxOutputBytes
	if limit <= 0 {
		limit = defaultOutputBytes
	}
	limit = min(limit, hardCap)
	timeout := time.Duration(step.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = defaultStepTimeout
	}
	if len(step.Argv) == 0 || step.Argv[0] == "" {
		res.ExitCode, res.Error, res.FinishedAt = -1, "the step has no command to run", now()
		return res
	}
	argv := step.Argv
	if step.Shell {
		argv = []string{"/bin/sh", "-c", strings.Join(step.Argv, " ")}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	cmd.Env = stepEnv(step.Env)
	cmd.Dir = "/"
	// The step's secrets and their encodings (base64, hex, URL, reversed …).
	redactor := redact.New(step.Redact)
	out := &capWriter{keep: limit + max(secretSlack, redactor.Longest())}
	cmd.Stdout, cmd.Stderr = out, out
	// How long the output may still be read after the step exits (or its
	// timeout kills it): enough for a busy machine to drain the pipes (at
	// 2 s, a thousand steps starting at once on two cores failed with
	// "WaitDelay expired before I/O complete"), short enough that a
	// daemon the step left holding its stdout does not hold the step.
	cmd.WaitDelay = stepWaitDelay
	setProcessGroup(cmd)
	err := cmd.Run()
	res.FinishedAt = now()

	text := redactSecrets(ctx, redactor.Replace(string(out.buf)))
	if len(text) > limit {
		text = text[:limit]
		res.Truncated = true
	}
	res.Truncated = res.Truncated || out.dropped
	res.Output = text

	var ee *exec.ExitError
	switch {
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		res.TimedOut, res.ExitCode = true, -1
		res.Error = fmt.Sprintf("killed after the step's timeout of %s", timeout)
	case err == nil:
		res.ExitCode = 0
	case ctx.Err() != nil:
		// The agent is shutting down: the step's process group was killed.
		res.ExitCode, res.Error = -1, interruptedError
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 {
			res.Error = "the command was killed: " + ee.String()
		}
	default:
		res.ExitCode = -1
		res.Error = redactSecrets(ctx, redactor.Replace("could not run the command: "+err.Error()))
	}
	return res
}

// stepEnv is the agent's environment without its own INTERLOCK_*
// variables (such as the join token), plus the step's variables.
func stepEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INTERLOCK_") {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// outputDetector is the secret detector over the bundled rules, built once
// per process (the first step pays for it).
var outputDetector = secrets.BundledDetector

// withheld replaces output that could not be checked for secrets.
const withheld = "[output withheld: the agent could not check it for secrets]"

// redactSecrets replaces every secret the scanner's rules find in s with
// "[redacted:<rule-id>]". It fails closed: if the detector cannot be built
// or does not finish, the output is withheld rather than sent unchecked.
func redactSecrets(ctx context.Context, s string) string {
	d, err := outputDetector()
	if err != nil {
		return withheld
	}
	// The step's own context may have timed out; the redaction still runs.
	out, _, err := d.RedactText(context.WithoutCancel(ctx), []byte(s))
	if err != nil {
		return withheld
	}
	return string(out)
}

// capWriter keeps the first keep bytes and counts the rest as dropped. It
// keeps a little more than the output cap (the longest redacted value) so
// that a secret straddling the cap is still seen whole and redacted before
// the output is cut.
type capWriter struct {
	keep    int
	buf     []byte
	dropped bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.keep - len(w.buf)
	if room >= len(p) {
		w.buf = append(w.buf, p...)
	} else {
		if room > 0 {
			w.buf = append(w.buf, p[:room]...)
		}
		w.dropped = true
	}
	return len(p), nil
}

// resultCache keeps the last n results in memory so a replayed step gets
// its real result again.
type resultCache struct {
	n     int
	m     map[string]wire.StepResult
	order []string
}

func newResultCache(n int) *resultCache { return &resultCache{n: n, m: map[string]wire.StepResult{}} }

func (c *resultCache) get(id string) (wire.StepResult, bool) {
	r, ok := c.m[id]
	return r, ok
}

func (c *resultCache) put(r wire.StepResult) {
	if _, ok := c.m[r.StepID]; !ok {
		c.order = append(c.order, r.StepID)
	}
	c.m[r.StepID] = r
	for len(c.order) > c.n {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}
