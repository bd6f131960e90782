//go:build unix

package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// The signals that start and stop a profile of the server.
var profileStart, profileStop os.Signal = syscall.SIGUSR1, syscall.SIGUSR2

// profileOnSignal serves `interlock bench fleet --profile-dir`: the bench
// wants the server's CPU profile of one phase (idle heartbeats, one
// dispatch), not of its whole run, which enrollment dominates. SIGUSR1
// starts a CPU profile (dir/cpu-N.prof); SIGUSR2 stops it and writes the
// heap's profile (dir/heap-N.prof). net/http/pprof on a listener would do
// the same but opens a port; a signal can only come from the same user.
func profileOnSignal(ctx context.Context, dir string, log *slog.Logger) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	n := 0
	var cpu *os.File
	stop := func() {
		if cpu == nil {
			return
		}
		pprof.StopCPUProfile()
		cpu.Close()
		cpu = nil
		runtime.GC() // the heap profile shows live memory as of the last GC
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap-%d.prof", n)))
		if err == nil {
			err = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			log.Error("write heap profile", slog.String("error", err.Error()))
		}
		// Where the resident memory is beyond the heap: stacks, unreturned
		// spans, the runtime's own.
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		stats := fmt.Sprintf("goroutines %d\nheap_inuse %d\nheap_idle %d\nheap_released %d\nstack_inuse %d\nsys %d\nnext_gc %d\n",
			runtime.NumGoroutine(), m.HeapInuse, m.HeapIdle, m.HeapReleased, m.StackInuse, m.Sys, m.NextGC)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("mem-%d.txt", n)), []byte(stats), 0o600); err != nil {
			log.Error("write memory figures", slog.String("error", err.Error()))
		}
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sigs:
			stop()
			if s != syscall.SIGUSR1 {
				continue
			}
			n++
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.prof", n)))
			if err == nil {
				if err = pprof.StartCPUProfile(f); err != nil {
					f.Close()
				}
			}
			if err != nil {
				log.Error("start CPU profile", slog.String("error", err.Error()))
				continue
			}
			cpu = f
		}
	}
}
