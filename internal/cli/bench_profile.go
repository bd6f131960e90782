//go:build unix

package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// profileOnSignal writes a CPU profile to file from the first SIGUSR1 to
// the next SIGUSR2 (or until the returned stop is called), so that a
// bench can profile one phase of the server's life — the dispatch of an
// operation — without the enrollment that comes before it.
func profileOnSignal(ctx context.Context, file string) (stop func()) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var end func()
		defer func() {
			if end != nil {
				end()
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sig:
				switch {
				case s == syscall.SIGUSR1 && end == nil:
					end, _ = startCPUProfile(file)
				case s == syscall.SIGUSR2 && end != nil:
					end()
					end = nil
				}
			}
		}
	}()
	return func() { signal.Stop(sig); cancel(); <-done }
}

// signalProfile starts (SIGUSR1) or stops (SIGUSR2) the profile of the server
// pid started with --cpuprofile-signal; nothing when file is empty.
func signalProfile(pid int, file string, start bool) {
	if file == "" {
		return
	}
	s := syscall.SIGUSR2
	if start {
		s = syscall.SIGUSR1
	}
	_ = syscall.Kill(pid, s)
}
