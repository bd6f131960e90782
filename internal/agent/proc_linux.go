//go:build linux

package agent

import "syscall"

// setParentDeathSignal has the kernel SIGKILL the step's process when the
// agent dies, however it dies. The signal reaches the step's own process
// (the command, or the shell of a shell step), not its descendants: those
// are killed with the group on every exit the agent lives through, and a
// descendant that outlives a kill -9 of the agent is orphaned, without the
// shell it was part of.
//
// Pdeathsig follows the OS thread that started the process; Go only ends
// threads whose goroutine exits while locked to them, which the agent
// never does, so the signal comes when the agent process dies.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
