//go:build unix

package exec_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// BenchmarkWave runs one step on 1,000 hosts at once (a canary, then the
// rest) against SQLite, with agents that answer at once: what the
// executor's records cost the server per host and step (dispatch record,
// result record, their audit entries, progress wake-ups), without the
// network. It reports the process's CPU time per host (µs-cpu/host: user
// and system, so fsync waits do not count) besides the wall time.
//
//	go test ./internal/ops/exec -run '^$' -bench Wave -benchtime 5x
func BenchmarkWave(b *testing.B) {
	const n = 1000
	hosts := make([]string, n)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%04d", i)
	}
	p := plan(hosts[:1], hosts[1:])
	p.Concurrency, p.HaltAfter = n, n
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		r := newRig(b, storetest.OpenSQLite(b), newFakeOps(operation(p)), newDispatcher())
		before := cpuTime(b)
		b.StartTimer()
		start(b, r)
		if got := r.finish(b); got.State != ops.OpSucceeded {
			b.Fatalf("state %s (%s)", got.State, got.Detail)
		}
		b.StopTimer()
		cpu += cpuTime(b) - before
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/host")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*n), "µs-cpu/host")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
