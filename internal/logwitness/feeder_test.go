package logwitness_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/logwitness"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/witness"
)

type sealer struct{}

func (sealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append([]byte(nil), aad...), p...), nil
}
func (sealer) Open(s, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(s, aad) {
		return nil, errors.New("wrong aad")
	}
	return s[len(aad):], nil
}

type runningWitness struct {
	srv  *httptest.Server
	vkey string
	dir  string
}

// startWitness runs a real witness (internal/witness) over HTTPS.
func startWitness(t *testing.T, name, logKey, dir string) *runningWitness {
	t.Helper()
	c, _, err := witness.LoadOrCreateKey(filepath.Join(dir, "witness.key"), name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Logs: []string{logKey}, StateDir: dir, Signer: c})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)
	return &runningWitness{srv: srv, vkey: c.VerifierKey(), dir: dir}
}

func (w *runningWitness) endpoint(t *testing.T) logwitness.Endpoint {
	e, err := logwitness.ParseEndpoint(w.srv.URL + "+" + w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type logHarness struct {
	t   *testing.T
	db  *store.DB
	log *audit.Log
	key string
	n   int
}

// newLog makes a log (SQLite) whose key is created, then reopens it
// accepting cosignatures from the witnesses made by mk.
func newLog(t *testing.T) *logHarness {
	t.Helper()
	db := storetest.OpenSQLite(t)
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: sealer{}, Origin: "interlock.test/log"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := l.PublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &logHarness{t: t, db: db, log: l, key: key}
}

func (h *logHarness) trust(vkeys ...string) {
	h.t.Helper()
	l, err := audit.New(audit.Config{Store: h.db.AuditStore(), Sealer: sealer{}, Origin: "interlock.test/log", Witnesses: vkeys})
	if err != nil {
		h.t.Fatal(err)
	}
	h.log = l
}

// grow appends n entries and publishes a checkpoint.
func (h *logHarness) grow(n int) {
	h.t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: "person:p1", Subject: fmt.Sprintf("thing:%d", h.n), Time: time.Unix(int64(h.n), 0)}
		h.n++
		if err := h.db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, err := h.log.Sync(ctx); err != nil {
		h.t.Fatal(err)
	}
}

func (h *logHarness) feeder(client *http.Client, es ...logwitness.Endpoint) *logwitness.Feeder {
	h.t.Helper()
	f, err := logwitness.New(logwitness.Config{Log: h.log, Store: h.db, Endpoints: es, Client: client, RoundTimeout: 5 * time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	return f
}

// cosigners returns the witnesses (of vkeys) whose cosignatures on the
// served checkpoint verify with formats/note's cosignature/v1 verifier.
func (h *logHarness) cosigners(f *logwitness.Feeder, vkeys ...string) (uint64, []string) {
	h.t.Helper()
	cp, err := f.Checkpoint(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	lv, _ := note.NewVerifier(h.key)
	var out []string
	for _, k := range vkeys {
		wv, err := fnote.NewVerifierForCosignatureV1(k)
		if err != nil {
			h.t.Fatal(err)
		}
		n, err := note.Open(cp.Note, note.VerifierList(lv, wv))
		if err != nil {
			continue
		}
		for _, s := range n.Sigs {
			if s.Hash == wv.KeyHash() && s.Name == wv.Name() {
				out = append(out, wv.Name())
			}
		}
	}
	return cp.Checkpoint.Size, out
}

func TestFeederGetsCosignaturesAndFollowsConflicts(t *testing.T) {
	ctx := context.Background()
	h := newLog(t)
	w1 := startWitness(t, "w1.test/w", h.key, t.TempDir())
	w2 := startWitness(t, "w2.test/w", h.key, t.TempDir())
	h.trust(w1.vkey, w2.vkey)
	h.grow(5)
	f := h.feeder(w1.srv.Client(), w1.endpoint(t), w2.endpoint(t))
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	size, got := h.cosigners(f, w1.vkey, w2.vkey)
	if size != 5 || len(got) != 2 {
		t.Fatalf("after the first round: size %d, cosigned by %v; want 5 by both", size, got)
	}
	// The next checkpoint goes with a consistency proof from 5.
	h.grow(40)
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if size, got := h.cosigners(f, w1.vkey, w2.vkey); size != 45 || len(got) != 2 {
		t.Fatalf("after growing: size %d, cosigned by %v; want 45 by both", size, got)
	}
	// A log server that lost its record of the witnesses (fresh feeder,
	// state rows deleted) sends old 0; the witnesses answer 409 with 45
	// and the feeder retries from there.
	if _, err := h.db.Exec(ctx, `DELETE FROM log_witness_state`); err != nil {
		t.Fatal(err)
	}
	h.grow(3)
	f2 := h.feeder(w1.srv.Client(), w1.endpoint(t), w2.endpoint(t))
	if err := f2.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if size, got := h.cosigners(f2, w1.vkey, w2.vkey); size != 48 || len(got) != 2 {
		t.Fatalf("after a 409: size %d, cosigned by %v; want 48 by both", size, got)
	}
	if st := f2.Stats(); st["w1.test/w"].Failures != 0 || st["w2.test/w"].Failures != 0 {
		t.Errorf("failures after a handled 409: %+v", st)
	}
	if size, ok, err := h.db.LogWitnessSize(ctx, w1.vkey); err != nil || !ok || size != 48 {
		t.Errorf("stored witness state: %d %v %v, want 48", size, ok, err)
	}
}

func TestFailingWitnessDoesNotBlockTheLog(t *testing.T) {
	ctx := context.Background()
	h := newLog(t)
	good := startWitness(t, "good.test/w", h.key, t.TempDir())
	dead := startWitness(t, "dead.test/w", h.key, t.TempDir())
	dead.srv.Close()
	_, otherLog, err := note.GenerateKey(rand.Reader, "other.test/log")
	if err != nil {
		t.Fatal(err)
	}
	stranger := startWitness(t, "stranger.test/w", otherLog, t.TempDir()) // witnesses another log: answers 404
	h.trust(good.vkey, dead.vkey, stranger.vkey)
	h.grow(3)
	f := h.feeder(good.srv.Client(), good.endpoint(t), dead.endpoint(t), stranger.endpoint(t))
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	size, got := h.cosigners(f, good.vkey, dead.vkey, stranger.vkey)
	if size != 3 || strings.Join(got, ",") != "good.test/w" {
		t.Fatalf("size %d cosigned by %v; want 3 by good.test/w only", size, got)
	}
	st := f.Stats()
	if st["good.test/w"].Failures != 0 || st["good.test/w"].Cosigned != 1 || st["dead.test/w"].Failures != 1 || st["stranger.test/w"].Failures != 1 {
		t.Fatalf("stats %+v: want good 1 cosigned, dead and stranger 1 failure each", st)
	}
	if got := testutil.ToFloat64(f.FailureCounter("dead.test/w")); got != 1 {
		t.Fatalf("interlock_log_witness_failures_total{witness=dead.test/w} = %v, want 1", got)
	}
	// The log goes on: the next checkpoint is still witnessed by good.
	h.grow(2)
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if size, got := h.cosigners(f, good.vkey); size != 5 || len(got) != 1 {
		t.Fatalf("next round: size %d cosigned by %v", size, got)
	}
}

// TestServedCheckpointWaitsForItsRound: while a new checkpoint's round
// runs, readers get the previous, witnessed one; once the round is done,
// the new one with its cosignatures. A stuck feeder does not freeze the
// log, and what is served never goes back.
func TestServedCheckpointWaitsForItsRound(t *testing.T) {
	ctx := context.Background()
	h := newLog(t)
	w := startWitness(t, "w1.test/w", h.key, t.TempDir())
	h.trust(w.vkey)
	h.grow(5)
	now := time.Now()
	f, err := logwitness.New(logwitness.Config{Log: h.log, Store: h.db, Endpoints: []logwitness.Endpoint{w.endpoint(t)},
		Client: w.srv.Client(), RoundTimeout: 5 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if size, got := h.cosigners(f, w.vkey); size != 5 || len(got) != 0 {
		t.Fatalf("before any round: size %d cosigned by %v; want the latest (5), bare", size, got)
	}
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	h.grow(2) // checkpoint 7, not yet sent to the witness
	if size, got := h.cosigners(f, w.vkey); size != 5 || len(got) != 1 {
		t.Fatalf("during the round of 7: size %d cosigned by %v; want 5, witnessed", size, got)
	}
	if err := f.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if size, got := h.cosigners(f, w.vkey); size != 7 || len(got) != 1 {
		t.Fatalf("after the round of 7: size %d cosigned by %v; want 7, witnessed", size, got)
	}
	// The feeder stops (no more rounds) and time passes: the latest
	// checkpoint is served bare rather than an ever older witnessed one.
	h.grow(1)
	now = now.Add(time.Hour)
	if size, _ := h.cosigners(f, w.vkey); size != 8 {
		t.Fatalf("with a stuck feeder: size %d, want the latest (8)", size)
	}
	// Once 8 was served, 7 is never served again, even within the grace.
	now = now.Add(-time.Hour)
	if size, _ := h.cosigners(f, w.vkey); size != 8 {
		t.Fatalf("after serving 8: size %d, want 8 (never back)", size)
	}
}
