//go:build linux

package cli_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/cli"
)

// openPTY opens a pseudo-terminal: the CLI reads its answers from the
// slave, as from a person's terminal, and the test types on the master.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestAttackJSONApproveOnATerminalShowsThePlan: `approve OP --json` run by
// a person at a terminal asks "approve this plan?" — and must show that
// plan (its hosts and hash) before asking, on stderr so that stdout stays
// JSON. Before, --json suppressed the view but not the question, so an
// approver was asked to sign hosts they were never shown.
func TestAttackJSONApproveOnATerminalShowsThePlan(t *testing.T) {
	q := startServer(t, "")
	q.setUp(10)
	op := q.runOne("operator1", "INC-blind")
	master, slave := openPTY(t)
	if _, err := master.WriteString("n\n"); err != nil { // the approver declines: nothing is signed either way
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := cli.Main(q.ctx, []string{"--profile", "approver1", "--json", "approve", op.ID, "--otp", q.otp("approver1")}, slave, &out, &errb)
	if code == 0 {
		t.Fatalf("approve after answering n: exit 0\nstdout: %s\nstderr: %s", out.String(), errb.String())
	}
	stderr := errb.String()
	prompt := strings.Index(stderr, "approve this plan?")
	if prompt < 0 {
		t.Fatalf("no question asked on the terminal; stderr: %s", stderr)
	}
	shown := stderr[:prompt]
	canary := op.Plan.HostNames[op.Plan.Waves[0].Hosts[0]]
	for _, want := range []string{op.Plan.Hash, "wave 1", canary} {
		if !strings.Contains(shown, want) {
			t.Errorf("asked \"approve this plan?\" without showing %q first; before the question: %q", want, shown)
		}
	}
	if strings.Contains(out.String(), "wave 1") {
		t.Errorf("the plan view went to stdout, which --json keeps for JSON: %q", out.String())
	}
	var after wire.Operation
	mustJSON(t, q.mustAs("admin", "--json", "ops", "show", op.ID), &after)
	if len(after.Approvals) != 0 {
		t.Errorf("%d approvals after answering n", len(after.Approvals))
	}
}

// TestAttackJSONChangeApproveShowsTheDiff: `change approve CR --json`
// without --yes asks "approve this change?" and must show the change (its
// content hash and diff) before asking, on stderr; before, --json
// suppressed the diff but not the question.
func TestAttackJSONChangeApproveShowsTheDiff(t *testing.T) {
	q := startServer(t, "")
	q.setUp(10)
	rb := q.writeRunbook("blind", `name: blind
risk: low
removes_capacity: true
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1}
target: {service: service, count: count}
step: {argv: ["true"]}
waves: {size: "100%"}
`)
	cr := changeID(t, q.mustAs("operator1", "runbook", "apply", "-f", rb))
	var pending wire.ChangeRequest
	mustJSON(t, q.mustAs("admin", "--json", "change", "show", cr), &pending)
	code, out, stderr := q.run("n\n", "--profile", "approver1", "--json", "change", "approve", cr)
	if code == 0 {
		t.Fatalf("change approve after answering n: exit 0\nstdout: %s\nstderr: %s", out, stderr)
	}
	prompt := strings.Index(stderr, "approve this change?")
	if prompt < 0 {
		t.Fatalf("no question asked; stderr: %s", stderr)
	}
	if shown := stderr[:prompt]; !strings.Contains(shown, pending.Hash) || !strings.Contains(shown, "blind") {
		t.Errorf("asked \"approve this change?\" without showing the change (hash %s, runbook blind) first; before the question: %q", pending.Hash, shown)
	}
	if strings.Contains(out, pending.Hash) {
		t.Errorf("the change view went to stdout, which --json keeps for JSON: %q", out)
	}
}
