//go:build unix

package agent

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the step in its own process group and kills the
// whole group on timeout, so a shell's children die with it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
