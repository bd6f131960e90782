package audit_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// benchEntry is a 512-byte entry: its canonical leaf is 512 bytes.
func benchEntry(i int) audit.Entry {
	e := audit.Entry{Kind: "bench.event", Version: 1, Actor: fmt.Sprintf("agent:%d", i%16), Subject: "host:web-1",
		Time: t0.Add(time.Duration(i)), Data: map[string]any{"n": i % 10}}
	e.Data["payload"] = benchPayload()
	return e
}

var benchPayload = sync.OnceValue(func() string {
	e := audit.Entry{Kind: "bench.event", Version: 1, Actor: "agent:1", Subject: "host:web-1", Time: t0, Data: map[string]any{"n": 1}}
	r, _ := audit.NewRecord(e, zeroRand{})
	leaf, _ := audit.StoredEntry{Integrated: true, ActorSeq: 1000000, ActorPrev: make([]byte, 32), Record: r}.Leaf()
	return strings.Repeat("x", max(0, 512-len(leaf)-len(`,"payload":""`)))
})

type zeroRand struct{}

func (zeroRand) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestBenchEntryIs512Bytes(t *testing.T) {
	r, _ := audit.NewRecord(benchEntry(3), zeroRand{})
	leaf, err := audit.StoredEntry{Integrated: true, ActorSeq: 1000000, ActorPrev: make([]byte, 32), Record: r}.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf) != 512 {
		t.Errorf("benchmark leaf is %d bytes, want 512", len(leaf))
	}
}

func openBenchDB(b *testing.B) *store.DB {
	b.Helper()
	db, err := store.Open(context.Background(), store.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkAppend measures durable appends per second on SQLite
// (synchronous=FULL, WAL: every commit is fsynced) with many concurrent
// writers.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []string{"own-tx", "appender", "appender-do"} {
		for _, writers := range []int{64, 512, 2048} {
			if mode == "own-tx" && writers > 64 {
				continue
			}
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				db := openBenchDB(b)
				a := audit.NewAppender(db.InTx, audit.AppenderConfig{})
				defer a.Close()
				var mu sync.Mutex
				n := 0
				b.SetParallelism((writers + 1) / 2)
				b.ResetTimer()
				start, cpu0 := time.Now(), cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						mu.Lock()
						i := n
						n++
						mu.Unlock()
						e := benchEntry(i)
						var err error
						switch mode {
						case "own-tx":
							err = db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) })
						case "appender":
							err = a.Append(ctx, e)
						case "appender-do":
							err = a.Do(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) })
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "appends/s")
				// CPU per append is independent of what else the machine runs;
				// 2 cores / cpu-µs/op bounds appends/s on an idle machine.
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			})
		}
	}
}

// BenchmarkIntegrate measures the sequencer: entries integrated per second.
func BenchmarkIntegrate(b *testing.B) {
	ctx := context.Background()
	db := openBenchDB(b)
	a := audit.NewAppender(db.InTx, audit.AppenderConfig{})
	defer a.Close()
	l, _ := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}})
	b.StopTimer()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += 64 {
				if err := a.Append(ctx, benchEntry(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StartTimer()
	start := time.Now()
	n, err := l.Integrate(ctx)
	if err != nil || n != b.N {
		b.Fatalf("Integrate = %d, %v; want %d", n, err, b.N)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "entries/s")
}

// buildTree writes the tiles and tree state of a log of size leaves
// straight into the store (proofs read only those), streaming full tiles
// out as they complete. It returns the Log.
func buildTree(b *testing.B, db *store.DB, size uint64) *audit.Log {
	b.Helper()
	ctx := context.Background()
	r, _ := tlog.NewRange(0, nil)
	type tileBuf struct {
		index uint64
		data  []byte
	}
	bufs := map[uint64]*tileBuf{}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		flush := func(level uint64, t *tileBuf) error {
			_, err := tx.Exec(ctx, `INSERT INTO audit_tiles (level, idx, hashes) VALUES ($1, $2, $3)`, int64(level), int64(t.index), t.data)
			return err
		}
		var ferr error
		visit := func(id tlog.NodeID, h []byte) {
			if id.Level%tlog.TileHeight != 0 || ferr != nil {
				return
			}
			level := uint64(id.Level) / tlog.TileHeight
			t := bufs[level]
			if t == nil {
				t = &tileBuf{}
				bufs[level] = t
			}
			t.data = append(t.data, h...)
			if len(t.data) == tlog.TileWidth*tlog.HashSize {
				ferr = flush(level, t)
				bufs[level] = &tileBuf{index: t.index + 1}
			}
		}
		var leaf [16]byte
		for i := uint64(0); i < size; i++ {
			binary.BigEndian.PutUint64(leaf[:], i)
			if err := r.Append(tlog.LeafHash(leaf[:]), visit); err != nil {
				return err
			}
			if ferr != nil {
				return ferr
			}
		}
		for level, t := range bufs {
			if len(t.data) > 0 {
				if err := flush(level, t); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO audit_tree (id, size, root, frontier) VALUES (1, $1, $2, $3)`, int64(size), r.Root(), tlog.EncodeFrontier(r.Frontier()))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	l, _ := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}})
	return l
}

// BenchmarkProofs measures inclusion and consistency proof generation
// from the SQLite tiles of a 1M-entry (and, with INTERLOCK_BENCH_10M=1,
// a 10M-entry) log.
func BenchmarkProofs(b *testing.B) {
	ctx := context.Background()
	sizes := []uint64{1_000_000}
	if os.Getenv("INTERLOCK_BENCH_10M") != "" {
		sizes = append(sizes, 10_000_000)
	}
	for _, size := range sizes {
		db := openBenchDB(b)
		l := buildTree(b, db, size)
		rng := rand.New(rand.NewPCG(1, 2))
		b.Run(fmt.Sprintf("inclusion/size=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := l.InclusionProof(ctx, rng.Uint64N(size), size); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("consistency/size=%d", size), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := l.ConsistencyProof(ctx, 1+rng.Uint64N(size-1), size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// buildLog stores size integrated 512-byte entries through the real
// sequencer (pending rows are bulk-inserted, not appended one by one).
func buildLog(b *testing.B, db *store.DB, size int) *audit.Log {
	b.Helper()
	ctx := context.Background()
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, BatchSize: 16384})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < size; start += 16384 {
		var recs []audit.Record
		for i := start; i < min(size, start+16384); i++ {
			e := benchEntry(i)
			e.Personal = map[string]string{"ip": "192.0.2.7"}
			r, err := audit.NewRecord(e, zeroRand{})
			if err != nil {
				b.Fatal(err)
			}
			recs = append(recs, r)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return tx.InsertAuditRecords(ctx, recs) }); err != nil {
			b.Fatal(err)
		}
		if _, err := l.Integrate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := l.Publish(ctx); err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkVerifyFull re-derives the whole log from the SQLite store:
// every entry re-hashed, actor chains, personal openings, tiles, root.
// The size is INTERLOCK_BENCH_VERIFY_SIZE (default 100000; the goal is
// 1M entries in under 10 s).
func BenchmarkVerifyFull(b *testing.B) {
	size := benchVerifySize(100_000)
	db := openBenchDB(b)
	start := time.Now()
	l := buildLog(b, db, size)
	b.Logf("built a %d-entry log in %v", size, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := l.Verify(context.Background(), true); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// benchVerifySize is INTERLOCK_BENCH_VERIFY_SIZE, or def when unset. CI
// sets a small size: its benchmark run checks that they work, not speed.
func benchVerifySize(def int) int {
	if s := os.Getenv("INTERLOCK_BENCH_VERIFY_SIZE"); s != "" {
		fmt.Sscan(s, &def)
	}
	return def
}

// cpuTime is this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerifyEntries is client-side full verification (what
// `interlock log verify --full` does with fetched leaves): parse, actor
// chains, re-hash and root, with 1M 512-byte leaves held in memory
// (INTERLOCK_BENCH_VERIFY_SIZE sets another count).
func BenchmarkVerifyEntries(b *testing.B) {
	size := benchVerifySize(1_000_000)
	leaves := make([][]byte, size)
	rng, _ := tlog.NewRange(0, nil)
	tails := map[string]audit.ActorState{}
	for i := range leaves {
		r, _ := audit.NewRecord(benchEntry(i), zeroRand{})
		as := tails[r.Actor]
		leaf, err := audit.StoredEntry{Integrated: true, Index: uint64(i), ActorSeq: as.Seq + 1, ActorPrev: as.LastHash, Record: r}.Leaf()
		if err != nil {
			b.Fatal(err)
		}
		h := tlog.LeafHash(leaf)
		tails[r.Actor] = audit.ActorState{Seq: as.Seq + 1, LastHash: h}
		rng.Append(h, nil)
		leaves[i] = leaf
	}
	cp := tlog.Checkpoint{Origin: "bench", Size: uint64(size), Hash: rng.Root()}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := audit.VerifyEntries(context.Background(), cp, memLeaves(leaves), audit.VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

type memLeaves [][]byte

func (m memLeaves) Leaves(_ context.Context, start, end uint64) ([][]byte, error) {
	return m[start:min(end, uint64(len(m)))], nil
}
