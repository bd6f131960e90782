package agenthub_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/pki"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// fakeLog is a LogSource over an in-memory tree, counting its reads.
type fakeLog struct {
	mu     sync.Mutex
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
	size   uint64 // the published checkpoint's size
	reads  int    // LatestCheckpoint calls
	proofs int    // ConsistencyProof calls
}

func newFakeLog(t testing.TB, n int) *fakeLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, "interlock/log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	l := &fakeLog{signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	l.grow(n)
	return l
}

func (l *fakeLog) grow(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("leaf-%d", l.tree.Size())))
	}
	l.size = l.tree.Size()
}

func (l *fakeLog) PublicKey(context.Context) (string, error) { return l.vkey, nil }

func (l *fakeLog) LatestCheckpoint(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.size == 0 {
		return nil, agenthub.ErrNoCheckpoint
	}
	return tlog.SignCheckpoint(l.signer, tlog.Checkpoint{Origin: "interlock/log", Size: l.size, Hash: l.tree.HashAt(l.size)})
}

func (l *fakeLog) ConsistencyProof(_ context.Context, a, b uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proofs++
	return l.tree.ConsistencyProof(a, b)
}

func (l *fakeLog) counts() (reads, proofs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads, l.proofs
}

// fakeWitnesses records what the hub hands over.
type fakeWitnesses struct {
	mu     sync.Mutex
	cosigs map[string]agenthub.VerifiedCosignature
	alarms []wire.LogAlarm
	fail   error
}

func (f *fakeWitnesses) RecordCosignature(_ context.Context, host string, c agenthub.VerifiedCosignature) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cosigs == nil {
		f.cosigs = map[string]agenthub.VerifiedCosignature{}
	}
	f.cosigs[host] = c
	return nil
}

func (f *fakeWitnesses) RecordLogAlarm(_ context.Context, _ string, a wire.LogAlarm) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.alarms = append(f.alarms, a)
	return nil
}

// witnessHub is a hub whose heartbeat handler is called directly, with
// the TLS state a real mTLS connection from host_1 would have.
type witnessHub struct {
	hub  *agenthub.Hub
	leaf *tls.ConnectionState
}

func newWitnessHub(t testing.TB, src agenthub.LogSource, w agenthub.WitnessRecorder, ttl time.Duration) *witnessHub {
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: inv, Heartbeats: inv, Revocations: inv, AuditLog: src, Witnesses: w, CheckpointTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	_, csr, _ := pki.NewAgentKey(nil, "host_1")
	certPEM, err := ca.SignAgentCSR(csr, "host_1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := pki.ParseCertificatePEM(certPEM)
	return &witnessHub{hub: hub, leaf: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}}
}

func (h *witnessHub) beat(t testing.TB, hb wire.Heartbeat) wire.HeartbeatResponse {
	t.Helper()
	body, _ := json.Marshal(hb)
	r := httptest.NewRequest(http.MethodPost, "/v1/agent/heartbeat", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.TLS = h.leaf
	w := httptest.NewRecorder()
	h.hub.HeartbeatHandler().ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("heartbeat: %d %s", w.Code, w.Body)
	}
	var resp wire.HeartbeatResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func size(n uint64) *uint64 { return &n }

func TestHeartbeatAnswerCarriesCheckpointAndProof(t *testing.T) {
	l := newFakeLog(t, 10)
	h := newWitnessHub(t, l, &fakeWitnesses{}, time.Hour)
	logKey, _ := note.NewVerifier(l.vkey)

	first := h.beat(t, wire.Heartbeat{})
	cp, _, err := tlog.OpenCheckpoint([]byte(first.Checkpoint), logKey)
	if err != nil || cp.Size != 10 || first.LogKey != l.vkey || first.Consistency != nil {
		t.Fatalf("first answer: checkpoint %d (%v), key %q, proof %v", cp.Size, err, first.LogKey, first.Consistency)
	}
	// Twenty agents at size 3: each gets a proof that verifies, and the
	// log is asked for one proof and one checkpoint in all.
	for i := 0; i < 20; i++ {
		resp := h.beat(t, wire.Heartbeat{LogSize: size(3)})
		if resp.ConsistencyFrom == nil || *resp.ConsistencyFrom != 3 {
			t.Fatalf("answer to size 3 proves from %v", resp.ConsistencyFrom)
		}
		if err := tlog.VerifyConsistency(3, 10, resp.Consistency, l.tree.HashAt(3), cp.Hash); err != nil {
			t.Fatalf("proof 3→10: %v", err)
		}
	}
	// An agent at the current size gets the checkpoint and no proof.
	if resp := h.beat(t, wire.Heartbeat{LogSize: size(10)}); resp.Consistency != nil || resp.ConsistencyFrom != nil || resp.Checkpoint != first.Checkpoint {
		t.Errorf("answer at the current size: from %v, proof %v", resp.ConsistencyFrom, resp.Consistency)
	}
	if reads, proofs := l.counts(); reads != 1 || proofs != 1 {
		t.Errorf("22 heartbeats read the checkpoint %d times and computed %d proofs; want 1 and 1 (cached)", reads, proofs)
	}
	// Another server signed 12 since the cache was filled and the agent saw
	// it there: the hub reads again rather than answer with 10, which the
	// agent would take for a rollback.
	l.grow(2)
	resp := h.beat(t, wire.Heartbeat{LogSize: size(12)})
	if cp, _, _ := tlog.OpenCheckpoint([]byte(resp.Checkpoint), logKey); cp.Size != 12 {
		t.Errorf("an agent ahead of the cache got a checkpoint of %d, want 12", cp.Size)
	}
}

func TestHeartbeatTakesCosignatures(t *testing.T) {
	l := newFakeLog(t, 10)
	w := &fakeWitnesses{}
	h := newWitnessHub(t, l, w, time.Hour)
	logKey, _ := note.NewVerifier(l.vkey)
	signed := []byte(h.beat(t, wire.Heartbeat{}).Checkpoint)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	cosigner, _ := tlog.NewCosigner("interlock-agent/host_1", priv)
	cosigned, _, err := tlog.Cosign(signed, logKey, cosigner)
	if err != nil {
		t.Fatal(err)
	}
	// A cosignature of another checkpoint body, spliced onto this one.
	other, _ := tlog.SignCheckpoint(l.signer, tlog.Checkpoint{Origin: "interlock/log", Size: 3, Hash: l.tree.HashAt(3)})
	_, otherLine, _ := tlog.Cosign(other, logKey, cosigner)
	spliced := string(signed) + otherLine
	// A checkpoint the log never signed, cosigned.
	fakeSkey, _, _ := note.GenerateKey(rand.Reader, "interlock/log")
	fakeSigner, _ := note.NewSigner(fakeSkey)
	forged, _ := tlog.SignCheckpoint(fakeSigner, tlog.Checkpoint{Origin: "interlock/log", Size: 99, Hash: make([]byte, 32)})
	forgedCosigned, _ := note.Sign(&note.Note{Text: string(noteText(forged))}, fakeSigner, cosigner)
	// A plain Ed25519 note key instead of a cosignature/v1 key.
	plainSkey, plainVkey, _ := note.GenerateKey(rand.Reader, "interlock-agent/host_1")
	plainSigner, _ := note.NewSigner(plainSkey)
	plainCosigned, _ := note.Sign(&note.Note{Text: string(noteText(signed))}, l.signer, plainSigner)

	for _, bad := range []struct {
		name string
		c    wire.Cosignature
	}{
		{"a cosignature of another checkpoint", wire.Cosignature{WitnessKey: cosigner.VerifierKey(), Note: spliced}},
		{"a checkpoint the log did not sign", wire.Cosignature{WitnessKey: cosigner.VerifierKey(), Note: string(forgedCosigned)}},
		{"a plain Ed25519 key", wire.Cosignature{WitnessKey: plainVkey, Note: string(plainCosigned)}},
		{"no key", wire.Cosignature{Note: string(cosigned)}},
	} {
		if resp := h.beat(t, wire.Heartbeat{Cosignature: &bad.c}); resp.CosignatureError == "" || resp.Checkpoint == "" {
			t.Errorf("%s: cosignature error %q, checkpoint sent: %v", bad.name, resp.CosignatureError, resp.Checkpoint != "")
		}
	}
	if len(w.cosigs) != 0 {
		t.Fatalf("bad cosignatures were stored: %+v", w.cosigs)
	}
	resp := h.beat(t, wire.Heartbeat{Cosignature: &wire.Cosignature{WitnessKey: cosigner.VerifierKey(), Note: string(cosigned)}})
	got, ok := w.cosigs["host_1"]
	if resp.CosignatureError != "" || !ok {
		t.Fatalf("a good cosignature was not stored: %q", resp.CosignatureError)
	}
	if _, err := tlog.VerifyCosignature(got.WitnessKey, got.Body, got.Line); err != nil || got.Checkpoint.Size != 10 {
		t.Errorf("stored cosignature: size %d, verifies: %v", got.Checkpoint.Size, err)
	}
}

func TestHeartbeatRecordsLogAlarms(t *testing.T) {
	l := newFakeLog(t, 5)
	w := &fakeWitnesses{}
	h := newWitnessHub(t, l, w, time.Hour)
	alarm := wire.LogAlarm{Kind: wire.LogAlarmRollback, Detail: "log rollback: got a checkpoint of size 5 after one of size 10", DetectedAt: time.Now()}
	// The rolled-back server records it while it serves the smaller tree.
	if resp := h.beat(t, wire.Heartbeat{LogSize: size(10), LogAlarm: &alarm}); !resp.LogAlarmRecorded || resp.Checkpoint == "" {
		t.Fatalf("alarm recorded %v, checkpoint sent %v", resp.LogAlarmRecorded, resp.Checkpoint != "")
	}
	if len(w.alarms) != 1 || w.alarms[0].Kind != wire.LogAlarmRollback {
		t.Fatalf("recorded alarms: %+v", w.alarms)
	}
	w.fail = errors.New("database is down")
	if resp := h.beat(t, wire.Heartbeat{LogAlarm: &alarm}); resp.LogAlarmRecorded {
		t.Error("an alarm that failed to record was acknowledged")
	}
}

// noteText is the text of a signed note (through its blank line).
func noteText(n []byte) []byte {
	i := strings.Index(string(n), "\n\n")
	return n[:i+1]
}
