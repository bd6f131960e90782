package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agent"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/config"
)

// BenchmarkEnrollAgents measures how long `interlock agent --count N`
// (N in-process agents, one address) takes to enroll against one local
// server on SQLite: from the agents' start until the last has its
// identity on disk. N is 1000 unless INTERLOCK_BENCH_AGENTS says
// otherwise. README "Running many agents" reports the figures:
//
//	go test ./internal/cli -run '^$' -bench EnrollAgents -benchtime 1x
func BenchmarkEnrollAgents(b *testing.B) {
	n := 1000
	if s := os.Getenv("INTERLOCK_BENCH_AGENTS"); s != "" {
		fmt.Sscan(s, &n)
	}
	for range b.N {
		b.StopTimer()
		ctx, cancel := context.WithCancel(context.Background())
		dir := b.TempDir()
		a, err := app.New(ctx, config.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), CheckpointInterval: time.Second}, app.Options{})
		if err != nil {
			b.Fatal(err)
		}
		readyc := make(chan app.Ready, 1)
		served := make(chan error, 1)
		go func() { served <- a.Serve(ctx, func(r app.Ready) { readyc <- r }) }()
		ready := <-readyc
		admin := wire.Principal{Kind: "person", ID: "p_bench", Name: "bench"}
		tokens := make([]string, n)
		for i := range tokens {
			tok, err := a.Ops.CreateJoinToken(ctx, admin, []string{"bench"}, nil, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			tokens[i] = tok.Reveal()
		}
		agents := filepath.Join(dir, "agents")
		agentCtx, stopAgents := context.WithCancel(ctx)
		ran := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() {
			ran <- agent.Run(agentCtx, agent.Config{Server: ready.URL, CAFingerprint: ready.CAFingerprint, Token: strings.Join(tokens, ","),
				DataDir: agents, Count: n, Hostname: "bench", HeartbeatInterval: time.Minute, CosignEvery: -1})
		}()
		for enrolled := 0; enrolled < n; {
			select {
			case err := <-ran:
				b.Fatalf("agents stopped after %d of %d enrolled: %v", enrolled, n, err)
			case <-time.After(20 * time.Millisecond):
			}
			matches, _ := filepath.Glob(filepath.Join(agents, "agent-*", "identity.json"))
			enrolled = len(matches)
		}
		took := time.Since(start)
		b.StopTimer()
		b.StartTimer()
		b.ReportMetric(took.Seconds(), "s/fleet")
		b.ReportMetric(float64(n)/took.Seconds(), "agents/s")
		stopAgents()
		<-ran
		cancel()
		<-served
		a.Close()
	}
}
