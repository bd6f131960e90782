package agenthub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// auditSource is internal/app's hubLog: the real audit log, here on SQLite.
type auditSource struct{ l *audit.Log }

func (s auditSource) PublicKey(ctx context.Context) (string, error) { return s.l.PublicKey(ctx) }
func (s auditSource) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	c, err := s.l.Checkpoint(ctx)
	if ue, ok := usererr.As(err); ok && ue.Kind == usererr.NotFound {
		return nil, agenthub.ErrNoCheckpoint
	}
	return c.Note, err
}
func (s auditSource) ConsistencyProof(ctx context.Context, a, b uint64) ([][]byte, error) {
	return s.l.ConsistencyProof(ctx, a, b)
}

// BenchmarkHeartbeatAnswer measures the heartbeat handler (decode, the
// mTLS identity check, the witness answer, encode) with the real audit
// log on SQLite behind it; the heartbeat's own database write is faked
// out, so the numbers are what witnessing adds to it. Cases:
//
//	no-log:        agents do not witness (the 204 of protocol version 1)
//	same-size:     the agent holds the latest checkpoint: no proof
//	proof-cached:  the agent is behind, at a size other agents share
//	proof-fresh:   the agent is behind at a size no one asked for yet:
//	               the proof is read from the stored tiles
func BenchmarkHeartbeatAnswer(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: testSealer{}})
	if err != nil {
		b.Fatal(err)
	}
	const entries = 5000
	for i := 0; i < entries; i += 500 {
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			for j := i; j < i+500; j++ {
				if err := audit.Append(ctx, tx, audit.Entry{Kind: "bench.event", Version: 1, Actor: "system", Subject: "host:web-1",
					Time: time.Unix(int64(j), 0), Data: map[string]any{"n": j}}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := l.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		noLog  bool
		sizeAt func(i int) *uint64
	}{
		{"no-log", true, func(int) *uint64 { return nil }},
		{"same-size", false, func(int) *uint64 { return size(entries) }},
		{"proof-cached", false, func(int) *uint64 { return size(entries - 100) }},
		{"proof-fresh", false, func(i int) *uint64 { return size(uint64(1 + i%(entries-1))) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var src agenthub.LogSource = auditSource{l}
			if tc.noLog {
				src = nil
			}
			h := newWitnessHub(b, src, &fakeWitnesses{}, time.Hour)
			if tc.noLog {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					h.beatNoContent(b)
				}
				return
			}
			h.beat(b, wire.Heartbeat{}) // fill the cache
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp := h.beat(b, wire.Heartbeat{LogSize: tc.sizeAt(i)})
				if resp.Checkpoint == "" {
					b.Fatal("no checkpoint")
				}
			}
		})
	}
}

// beatNoContent is beat for a hub whose agents do not witness the log.
func (h *witnessHub) beatNoContent(t testing.TB) {
	body, _ := json.Marshal(wire.Heartbeat{Healthy: true})
	r := httptest.NewRequest(http.MethodPost, "/v1/agent/heartbeat", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.TLS = h.leaf
	w := httptest.NewRecorder()
	h.hub.HeartbeatHandler().ServeHTTP(w, r)
	if w.Code != http.StatusNoContent {
		t.Fatalf("heartbeat: %d %s", w.Code, w.Body)
	}
}
