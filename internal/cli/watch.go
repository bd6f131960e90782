package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
)

// execDoer is the one API call the execution commands make;
// *apiclient.Client implements it.
type execDoer interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// execClient returns the logged-in API client for the execution commands
// (ops watch, halt, resume, abort, mark); tests replace it.
var execClient = func(e *env) (execDoer, error) {
	c, _, err := e.client()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// watchWait is how long one long-poll may wait on the server; it stays
// under the API client's 30 s request timeout.
const watchWait = "20s"

var _ = register(func(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ops",
		Short: "List, show, watch and control operations",
	}
	cmd.AddCommand(opsQueryCommands(e)...)
	cmd.AddCommand(opsExecCommands(e)...)
	return cmd
})

// opsExecCommands are the execution subcommands of `interlock ops`.
func opsExecCommands(e *env) []*cobra.Command {
	watch := &cobra.Command{
		Use:   "watch OP",
		Short: "Show an operation's progress live, wave by wave, until it stops",
		Long: "Shows each host's result as it arrives and a progress bar on a terminal (JSON lines with --json),\n" +
			"until the operation succeeds, halts, is aborted or needs attention. Exits 0 only if it succeeded.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			return e.watch(cmd.Context(), c, args[0])
		},
	}
	var haltReason string
	halt := &cobra.Command{
		Use:   "halt OP --reason TEXT",
		Short: "Kill switch: stop dispatching for an operation within a second",
		Long:  "Steps already sent finish or time out and are recorded; nothing new is sent. No rollback runs.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.opControl(cmd.Context(), args[0], "halt", wire.OpHaltRequest{Reason: haltReason}, "halted")
		},
	}
	halt.Flags().StringVar(&haltReason, "reason", "", "why (goes into the audit log; required)")
	resume := &cobra.Command{
		Use:   "resume OP",
		Short: "Continue a halted operation, or one that needs attention, from where it stopped",
		Long:  "Hosts that already have a record are never sent the step again; unknown hosts count as failures unless marked.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.opControl(cmd.Context(), args[0], "resume", nil, "resumed")
		},
	}
	var abortReason string
	abort := &cobra.Command{
		Use:   "abort OP --reason TEXT",
		Short: "End an operation for good",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.opControl(cmd.Context(), args[0], "abort", wire.OpAbortRequest{Reason: abortReason}, "aborted")
		},
	}
	abort.Flags().StringVar(&abortReason, "reason", "", "why (goes into the audit log; required)")
	var mark wire.OpMarkRequest
	markCmd := &cobra.Command{
		Use:   "mark OP HOST --state succeeded|failed --reason TEXT",
		Short: "Record what you found on a host whose step was left unknown (a server restart, or its agent vanished)",
		Long:  "HOST is the host's name as `interlock hosts` shows it, or its ID.",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.execAPI()
			if err != nil {
				return err
			}
			id, err := resolveOpHost(cmd.Context(), c, args[0], args[1])
			if err != nil {
				return err
			}
			return e.opControl(cmd.Context(), args[0], "hosts/"+url.PathEscape(id)+"/mark", mark, "marked "+args[1]+" "+mark.State+" in")
		},
	}
	markCmd.Flags().StringVar(&mark.State, "state", "", "succeeded or failed")
	markCmd.Flags().StringVar(&mark.Phase, "phase", "run", "run, health or rollback")
	markCmd.Flags().StringVar(&mark.Reason, "reason", "", "what you checked (goes into the audit log; required)")
	return []*cobra.Command{watch, halt, resume, abort, markCmd}
}

func (e *env) execAPI() (execDoer, error) { return execClient(e) }

// opControl POSTs to /v1/ops/OP/<verb> and prints the answer.
func (e *env) opControl(ctx context.Context, op, verb string, in any, done string) error {
	c, err := e.execAPI()
	if err != nil {
		return err
	}
	var p wire.OpProgress
	if err := c.Do(ctx, "POST", "/v1/ops/"+url.PathEscape(op)+"/"+verb, in, &p); err != nil {
		return err
	}
	return e.output(p, func() error {
		e.printf("%s %s: it is now %s.\n", capitalize(done), op, p.State)
		if p.Detail != "" {
			e.printf("%s\n", p.Detail)
		}
		return nil
	})
}

// watch long-polls the progress route until the operation is terminal —
// except while it needs attention only for unknown steps, which their
// agents settle. It survives a server restart: a poll that gets no answer
// is retried with jittered backoff from the last version seen. It returns
// an error (exit 1) unless the operation succeeded.
func (e *env) watch(ctx context.Context, c execDoer, op string) error {
	r := newProgressRenderer(e)
	since := int64(-1)
	away := 0               // failed polls in a row since the server was last heard
	lastHeard := time.Now() // when the server last answered
	waiting := false        // said that it waits for agents to settle unknown steps
	var ruling time.Time    // when the last unknown step was seen settled, until the server rules
	for {
		path := "/v1/ops/" + url.PathEscape(op) + "/progress?wait=" + watchWait
		if since >= 0 {
			path += fmt.Sprintf("&since=%d", since)
		}
		var p wire.OpProgress
		if err := c.Do(ctx, "GET", path, nil, &p); err != nil {
			if !serverWentAway(ctx, err, away) || time.Since(lastHeard) > watchGiveUp {
				r.end()
				return err
			}
			if away == 0 {
				r.end()
				fmt.Fprintf(e.stderr, "server went away; reconnecting… (%v)\n", err)
			}
			if !sleepCtx(ctx, watchBackoff(away)) {
				return ctx.Err()
			}
			away++
			continue
		}
		if away > 0 {
			fmt.Fprintf(e.stderr, "reconnected; resuming from version %d\n", since)
			away = 0
		}
		lastHeard = time.Now()
		if settling(p) {
			// The server continues it by itself once the agents of its
			// unknown hosts report from their ledgers: keep watching.
			if !waiting {
				r.end()
				fmt.Fprintf(e.stderr, "Operation %s needs attention: %s\nWaiting for the agents of its unknown hosts to report from their ledgers (Ctrl-C stops watching, not the operation)…\n", op, p.Detail)
				waiting = true
			}
			if p.Version != since {
				p.Terminal = false
				if err := r.show(p); err != nil {
					return err
				}
			}
			since = p.Version
			if !sleepCtx(ctx, watchBackoff(2)) { // the server answers at once while it needs attention
				return ctx.Err()
			}
			continue
		}
		if waiting && p.State == "needs_attention" {
			// Every unknown step is settled, but the server decides to
			// continue or halt only just after it records the last
			// settlement: give it a moment before reading needs_attention
			// as final.
			if ruling.IsZero() {
				ruling = time.Now()
			}
			if time.Since(ruling) < settleRulingGrace {
				since = -1 // answer at once, not after a long poll
				if !sleepCtx(ctx, settleRulingGrace/10) {
					return ctx.Err()
				}
				continue
			}
		}
		waiting, ruling = false, time.Time{}
		if err := r.show(p); err != nil {
			return err
		}
		if p.Terminal {
			r.end()
			if p.State == "succeeded" {
				return nil
			}
			msg := fmt.Sprintf("operation %s is %s", op, p.State)
			if p.Detail != "" {
				msg += ": " + p.Detail
			}
			return &ExitError{Code: 1, Err: errors.New(msg)}
		}
		since = p.Version
	}
}

// settling reports whether p needs attention only because some host's
// step is unknown: the agent's ledger settles it when the agent returns,
// and the server then continues or halts the operation by itself.
func settling(p wire.OpProgress) bool {
	if p.State != "needs_attention" {
		return false
	}
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			if h.State == "unknown" || h.Health == "unknown" {
				return true
			}
		}
	}
	return false
}

// settleRulingGrace is how long `ops watch` waits, once every unknown step
// is settled, for the server to continue or halt the operation before it
// reports needs_attention as where the operation stopped.
const settleRulingGrace = 3 * time.Second

// watchGiveUp is how long `ops watch` keeps reconnecting to a server that
// went away before it gives up.
const watchGiveUp = 10 * time.Minute

// watchBackoff is the wait before the attempt-th reconnect (from 0):
// 250 ms doubling up to 5 s, with ±20 % jitter so that many watchers do
// not come back in step after a restart. Tests shorten it.
var watchBackoff = func(attempt int) time.Duration {
	d := min(250*time.Millisecond<<min(attempt, 8), 5*time.Second)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// serverWentAway reports whether err means the server could not be
// reached or is restarting (connection refused or reset, EOF, a proxy's
// 502/503/504), as opposed to an answer that will not change by asking
// again (4xx, except the restarted server's "dpop_before_start"). A 500 is retried a few times (away counts the failed polls
// so far): a server stopping mid-request answers one, but a 500 that
// persists is a fault to show, not to wait out.
func serverWentAway(ctx context.Context, err error, away int) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		case http.StatusInternalServerError:
			return away < 3
		}
		// A proof signed just before the server (re)started: a fresh one works.
		return ae.Problem.Code == "dpop_before_start"
	}
	return true // the request got no answer at all
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// progressRenderer prints progress: JSON lines, a line per finished host,
// and on a terminal a progress bar redrawn in place.
type progressRenderer struct {
	e     *env
	tty   bool
	width int
	seen  map[string]string // host → last printed state
	bar   bool              // a bar is on the current line
}

func newProgressRenderer(e *env) *progressRenderer {
	r := &progressRenderer{e: e, seen: map[string]string{}, width: 80}
	if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.tty = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 20 {
			r.width = w
		}
	}
	return r
}

func (r *progressRenderer) show(p wire.OpProgress) error {
	out := r.e.stdout
	if r.e.json {
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	r.clearBar()
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			line := hostLine(w.Number, h)
			if line == "" || r.seen[h.HostID] == line {
				continue
			}
			r.seen[h.HostID] = line
			fmt.Fprintln(out, line)
		}
	}
	if r.tty && !p.Terminal {
		fmt.Fprint(out, progressBar(p, r.width))
		r.bar = true
	}
	if p.Terminal {
		fmt.Fprintf(out, "Operation %s %s.\n", p.OpID, p.State)
		if p.Detail != "" {
			fmt.Fprintln(out, p.Detail)
		}
	}
	return nil
}

func (r *progressRenderer) clearBar() {
	if r.bar {
		fmt.Fprint(r.e.stdout, "\r\033[K")
		r.bar = false
	}
}

func (r *progressRenderer) end() { r.clearBar() }

// hostLine describes a host once it has something to say ("" while pending).
func hostLine(wave int, h wire.OpHostProgress) string {
	if h.State == "" || h.State == "pending" {
		return ""
	}
	s := fmt.Sprintf("wave %d  %-20s %s", wave, h.HostID, h.State)
	if h.ExitCode >= 0 && h.State != "dispatched" {
		s += fmt.Sprintf(" (exit %d)", h.ExitCode)
	}
	if h.Error != "" {
		s += ": " + h.Error
	}
	if h.Health != "" {
		s += "  health " + h.Health
	}
	if h.Rollback != "" {
		s += "  rollback " + h.Rollback
	}
	if out := lastLine(h.Output); out != "" && h.State == "failed" {
		s += "  │ " + out
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// progressBar renders "[=====>    ] 7/20 hosts · wave 2/4 · running".
func progressBar(p wire.OpProgress, width int) string {
	total, done := 0, 0
	for _, w := range p.Waves {
		for _, h := range w.Hosts {
			total++
			switch h.State {
			case "succeeded", "failed", "unknown", "skipped":
				done++
			}
		}
	}
	tail := fmt.Sprintf(" %d/%d hosts · wave %d/%d · %s", done, total, p.CurrentWave, len(p.Waves), p.State)
	n := min(max(width-len(tail)-3, 10), 50)
	filled := 0
	if total > 0 {
		filled = done * n / total
	}
	bar := strings.Repeat("=", filled)
	if filled < n {
		bar += ">" + strings.Repeat(" ", n-filled-1)
	}
	return "[" + bar + "]" + tail
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
