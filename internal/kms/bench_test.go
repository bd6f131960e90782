package kms_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// The service benchmarks include everything but HTTP: key cache, envelope
// encryption, and the audit entry plus usage counter committed (group
// commit, SQLite with synchronous=FULL) before the call returns.

func benchService(b *testing.B) (*kms.Service, kms.Caller) {
	db := storetest.OpenSQLite(b)
	svc, _ := storetest.NewKMS(b, db, nil)
	c := kms.Caller{Kind: "person", ID: "p-bench"}
	if _, err := svc.CreateKey(context.Background(), c, "bench", kms.KeyOptions{}); err != nil {
		b.Fatal(err)
	}
	return svc, c
}

func BenchmarkServiceEncrypt1KiB(b *testing.B) {
	svc, c := benchService(b)
	pt := make([]byte, 1024)
	ctx := context.Background()
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := svc.Encrypt(ctx, c, "bench", pt, kms.Context{"tenant": "acme"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServiceDecrypt1KiB(b *testing.B) {
	svc, c := benchService(b)
	ctx := context.Background()
	r, err := svc.Encrypt(ctx, c, "bench", make([]byte, 1024), kms.Context{"tenant": "acme"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := svc.Decrypt(ctx, c, r.Ciphertext, "", kms.Context{"tenant": "acme"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServiceEncrypt1KiBParallel is the throughput figure: 64
// concurrent callers per CPU share audit transactions.
func BenchmarkServiceEncrypt1KiBParallel(b *testing.B) {
	svc, c := benchService(b)
	pt := make([]byte, 1024)
	ctx := context.Background()
	b.SetBytes(1024)
	b.SetParallelism(benchParallelism)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Encrypt(ctx, c, "bench", pt, kms.Context{"tenant": "acme"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkServiceDecrypt1KiBParallel(b *testing.B) {
	svc, c := benchService(b)
	ctx := context.Background()
	r, err := svc.Encrypt(ctx, c, "bench", make([]byte, 1024), kms.Context{"tenant": "acme"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.SetParallelism(benchParallelism)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Decrypt(ctx, c, r.Ciphertext, "", kms.Context{"tenant": "acme"}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchParallelism is callers per CPU in the parallel benchmarks: with
// group commit, throughput is about callers / commit latency.
const benchParallelism = 256

// reportCPU reports calls per CPU-second of this process, which stays
// meaningful on a shared machine where wall-clock rates do not.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0 := cpu()
	return func() {
		if d := cpu() - c0; d > 0 {
			b.ReportMetric(float64(b.N)/d.Seconds(), "ops/cpu-s")
		}
	}
}
