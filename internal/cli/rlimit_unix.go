//go:build unix

package cli

import (
	"fmt"
	"syscall"
)

// raiseOpenFiles raises this process's limit on open files to at least
// want where it can. One server holds a connection per agent, and
// `agent --count N` (and bench fleet) holds one per agent plus each
// agent's step ledger: ten thousand agents need more descriptors than the
// usual soft limit of 1,024, or even the hard limit some systems set. Go
// already lifts the soft limit to the hard one at start; this also lifts
// the hard limit when the process may (root, CAP_SYS_RESOURCE). It
// returns the limit in force and, when that is below want, a sentence
// saying so (not an error: a smaller fleet still works).
func raiseOpenFiles(want uint64) (uint64, string) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Sprintf("could not read the limit on open files: %v", err)
	}
	if lim.Cur >= want {
		return lim.Cur, ""
	}
	raised := syscall.Rlimit{Cur: want, Max: max(lim.Max, want)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
		return want, ""
	}
	if lim.Cur < lim.Max {
		up := syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up); err == nil {
			lim.Cur = lim.Max
		}
	}
	return lim.Cur, fmt.Sprintf("this process may open only %d files (ulimit -n) and could not raise that to %d; each agent connection needs one, so raise the limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) for a fleet this large", lim.Cur, want)
}
