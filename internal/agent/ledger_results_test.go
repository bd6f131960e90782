package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// TestLedgerKeepsResultsAcrossRestarts: a result recorded before a
// restart is known after it, replayed until a server takes it, and a step
// that started but never ended is recorded as interrupted at the next open.
func TestLedgerKeepsResultsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return at }
	l, err := openLedgerAt(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	done := wire.StepResult{StepID: "stp_done", ExitCode: 0, Output: "ok\n", StartedAt: at, FinishedAt: at}
	taken := wire.StepResult{StepID: "stp_taken", ExitCode: 3, Output: "no\n", StartedAt: at, FinishedAt: at}
	for _, id := range []string{"stp_done", "stp_taken", "stp_cut"} {
		if err := l.add(id); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []wire.StepResult{done, taken} {
		if err := l.finish(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.ack("stp_taken"); err != nil {
		t.Fatal(err)
	}
	// the agent stops while stp_cut runs (the ledger holds no open file)

	l2, err := openLedgerAt(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	cut := wire.StepResult{StepID: "stp_cut", ExitCode: -1, StartedAt: at, FinishedAt: at, Error: interruptedError}
	if diff := cmp.Diff([]wire.StepResult{done, cut}, l2.unreported()); diff != "" {
		t.Errorf("results to replay after a restart (-want +got):\n%s", diff)
	}
	if got, ok := l2.result("stp_taken"); !ok || got.ExitCode != 3 {
		t.Errorf("a taken result is forgotten after a restart: %+v %v", got, ok)
	}
	for _, id := range []string{"stp_done", "stp_taken", "stp_cut"} {
		if !l2.has(id) {
			t.Errorf("after a restart the ledger does not know %s was started", id)
		}
	}
}

// TestLegacyLedgerIsNotInterrupted: IDs written by an agent that kept no
// results are not reported as interrupted steps after an upgrade.
func TestLegacyLedgerIsNotInterrupted(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ledgerFile), []byte("stp_old1\nstp_old2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.unreported(); len(got) != 0 {
		t.Errorf("an upgraded ledger reports %d interrupted steps, want none", len(got))
	}
	if !l.has("stp_old1") {
		t.Error("an upgraded ledger forgot a step it had started")
	}
}

// TestStepDiesWithItsAgent kills an agent process with SIGKILL while a
// step runs: the step's process must die too (Linux parent-death signal),
// not keep running as an orphan. The agent is this test binary run again
// as a child, running one step.
func TestStepDiesWithItsAgent(t *testing.T) {
	if dir := os.Getenv("INTERLOCK_TEST_STEP_CHILD"); dir != "" {
		// The child: run a step that writes its PID, then ticks forever.
		script := fmt.Sprintf("echo $$ > %s/pid; while :; do echo tick >> %s/marker; sleep 0.05; done", dir, dir)
		runStep(context.Background(), wire.Step{StepID: "stp_forever", Argv: []string{"/bin/sh", "-c", script}, TimeoutSeconds: 600}, 1<<10, time.Now)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux only")
	}
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestStepDiesWithItsAgent$")
	child.Env = append(os.Environ(), "INTERLOCK_TEST_STEP_CHILD="+dir)
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	deadline := time.Now().Add(20 * time.Second)
	for pid == 0 {
		if time.Now().After(deadline) {
			child.Process.Kill()
			t.Fatal("the step never started")
		}
		b, _ := os.ReadFile(filepath.Join(dir, "pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(20 * time.Millisecond)
	}
	if !alive(pid) {
		t.Fatalf("step process %d is not running before the agent is killed", pid)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			t.Fatalf("step process %d still runs 5 s after its agent was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And nothing of the step writes any more.
	before, _ := os.ReadFile(filepath.Join(dir, "marker"))
	time.Sleep(300 * time.Millisecond)
	after, _ := os.ReadFile(filepath.Join(dir, "marker"))
	if len(after) != len(before) {
		t.Errorf("the step's marker still grows after its agent was killed (%d → %d bytes)", len(before), len(after))
	}
}

// alive reports whether pid runs (a zombie, dead but not yet reaped by
// whoever adopted it, counts as dead).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}
