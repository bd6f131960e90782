//go:build unix

package agent

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the step in its own process group and kills the
// whole group when the step's context ends — its timeout, or the agent
// shutting down — so a shell's children die with it. On Linux the step
// also gets a parent-death signal (proc_linux.go), so that it dies even
// when the agent is killed with no chance to clean up (kill -9).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
