package agent

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// testLog is a log the test controls: a Merkle tree over named leaves and
// the key that signs its checkpoints.
type testLog struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newTestLog(t *testing.T, leafPrefix string, n int) *testLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, "interlock/log")
	if err != nil {
		t.Fatal(err)
	}
	return newTestLogWithKey(t, skey, vkey, leafPrefix, n)
}

func newTestLogWithKey(t *testing.T, skey, vkey, leafPrefix string, n int) *testLog {
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{t: t, signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	l.grow(leafPrefix, n)
	return l
}

func (l *testLog) grow(prefix string, n int) {
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("%s-%d", prefix, l.tree.Size())))
	}
}

// checkpoint signs the tree of the given size.
func (l *testLog) checkpoint(size uint64) string {
	signed, err := tlog.SignCheckpoint(l.signer, tlog.Checkpoint{Origin: "interlock/log", Size: size, Hash: l.tree.HashAt(size), Time: time.Unix(1_800_000_000, 0)})
	if err != nil {
		l.t.Fatal(err)
	}
	return string(signed)
}

// answer is the heartbeat answer a server would give an agent at size from.
func (l *testLog) answer(from *uint64, size uint64) wire.HeartbeatResponse {
	r := wire.HeartbeatResponse{LogKey: l.vkey, Checkpoint: l.checkpoint(size)}
	if from != nil && *from < size {
		p, err := l.tree.ConsistencyProof(*from, size)
		if err != nil {
			l.t.Fatal(err)
		}
		f := *from
		r.ConsistencyFrom, r.Consistency = &f, p
	}
	return r
}

func openTestWitness(t *testing.T, dir string, acceptFork bool) *witness {
	t.Helper()
	w, err := openWitness(context.Background(), Config{DataDir: dir, Log: discardLog(), Now: time.Now, Rand: rand.Reader,
		CosignEvery: time.Nanosecond, AcceptLogFork: acceptFork}, "host_test")
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// beat runs one heartbeat round trip against answer.
func beat(w *witness, answer func(from *uint64) wire.HeartbeatResponse) wire.Heartbeat {
	var hb wire.Heartbeat
	w.heartbeat(&hb)
	w.observe(context.Background(), hb, answer(hb.LogSize))
	return hb
}

func heldSize(w *witness) uint64 {
	var hb wire.Heartbeat
	w.heartbeat(&hb)
	if hb.LogSize == nil {
		return 0
	}
	return *hb.LogSize
}

func TestWitnessFollowsAnExtendingLog(t *testing.T) {
	dir := t.TempDir()
	l := newTestLog(t, "a", 3)
	if err := pinLogKey(dir, l.vkey); err != nil {
		t.Fatal(err)
	}
	w := openTestWitness(t, dir, false)
	beat(w, func(from *uint64) wire.HeartbeatResponse {
		if from != nil {
			t.Errorf("a witness with no checkpoint reported size %d", *from)
		}
		return l.answer(from, 3)
	})
	l.grow("a", 7)
	beat(w, func(from *uint64) wire.HeartbeatResponse { return l.answer(from, 10) })
	if got := heldSize(w); got != 10 {
		t.Fatalf("after a consistent checkpoint of 10 the witness holds %d", got)
	}
	if why := w.refusal(); why != "" {
		t.Fatalf("a consistent log raised an alarm: %s", why)
	}
	// A bigger checkpoint whose proof does not start at the size held
	// (the answer crossed a change) is neither taken nor an alarm.
	l.grow("a", 2)
	w.observe(context.Background(), wire.Heartbeat{}, wire.HeartbeatResponse{Checkpoint: l.checkpoint(12)})
	if got := heldSize(w); got != 10 || w.refusal() != "" {
		t.Fatalf("a checkpoint without a proof: holds %d, refusal %q", got, w.refusal())
	}
	// The cosignature of the newest checkpoint goes out with the next
	// heartbeat, once, and verifies with the agent's witness key.
	hb := beat(w, func(from *uint64) wire.HeartbeatResponse { return l.answer(from, 12) })
	if hb.Cosignature == nil {
		t.Fatal("the heartbeat after a verified checkpoint carries no cosignature")
	}
	logKey, _ := note.NewVerifier(l.vkey)
	wv, err := tlog.NewVerifier(hb.Cosignature.WitnessKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, n, err := tlog.OpenCheckpoint([]byte(hb.Cosignature.Note), logKey, wv)
	if err != nil || cp.Size != 10 || len(n.Sigs) != 2 {
		t.Fatalf("cosigned note: size %d, %d signatures, %v", cp.Size, len(n.Sigs), err)
	}
	if !strings.HasPrefix(wv.Name(), "interlock-agent/host_test") {
		t.Errorf("witness key name %q", wv.Name())
	}
	// The checkpoint survives a restart; the witness key stays the same.
	w2 := openTestWitness(t, dir, false)
	if got := heldSize(w2); got != 12 {
		t.Errorf("after a restart the witness holds %d, want 12", got)
	}
	if w2.cosigner.VerifierKey() != w.cosigner.VerifierKey() {
		t.Error("the witness key changed across a restart")
	}
}

func TestWitnessDetectsRollbackForkAndBadSignature(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "interlock/log")
	otherKey, _, _ := note.GenerateKey(rand.Reader, "interlock/log") // same name, another key
	for _, tc := range []struct {
		name   string
		kind   string
		answer func(honest *testLog, from *uint64) wire.HeartbeatResponse
	}{
		{"a smaller tree (rollback)", wire.LogAlarmRollback, func(l *testLog, from *uint64) wire.HeartbeatResponse {
			return l.answer(nil, 5)
		}},
		{"the same size with another root (fork)", wire.LogAlarmFork, func(l *testLog, from *uint64) wire.HeartbeatResponse {
			return newTestLogWithKey(t, skey, vkey, "b", 10).answer(nil, 10)
		}},
		{"a bigger tree that does not extend it (fork)", wire.LogAlarmFork, func(l *testLog, from *uint64) wire.HeartbeatResponse {
			return newTestLogWithKey(t, skey, vkey, "b", 12).answer(from, 12)
		}},
		{"a bigger tree with a garbage proof (fork)", wire.LogAlarmFork, func(l *testLog, from *uint64) wire.HeartbeatResponse {
			l.grow("a", 2)
			r := l.answer(from, 12)
			r.Consistency[0][0] ^= 1
			return r
		}},
		{"a checkpoint signed by another key (bad signature)", wire.LogAlarmBadSignature, func(l *testLog, from *uint64) wire.HeartbeatResponse {
			l.grow("a", 2)
			return newTestLogWithKey(t, otherKey, vkey, "a", 12).answer(from, 12)
		}},
		{"a checkpoint changed after signing (bad signature)", wire.LogAlarmBadSignature, func(l *testLog, from *uint64) wire.HeartbeatResponse {
			r := l.answer(from, 10)
			r.Checkpoint = strings.Replace(r.Checkpoint, "\n10\n", "\n11\n", 1)
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			honest := newTestLogWithKey(t, skey, vkey, "a", 10)
			if err := pinLogKey(dir, vkey); err != nil {
				t.Fatal(err)
			}
			w := openTestWitness(t, dir, false)
			beat(w, func(from *uint64) wire.HeartbeatResponse { return honest.answer(from, 10) })
			if w.refusal() != "" {
				t.Fatalf("the honest log raised an alarm: %s", w.refusal())
			}
			beat(w, func(from *uint64) wire.HeartbeatResponse { return tc.answer(honest, from) })
			why := w.refusal()
			if !strings.HasPrefix(why, "agent refuses: log rollback detected") || !strings.Contains(why, tc.kind) {
				t.Fatalf("refusal = %q, want a %s alarm", why, tc.kind)
			}
			// The alarm goes with every heartbeat, with the evidence, until
			// the server says it recorded it; the kept checkpoint stays.
			hb := beat(w, func(from *uint64) wire.HeartbeatResponse { return honest.answer(from, 10) })
			if hb.LogAlarm == nil || hb.LogAlarm.Kind != tc.kind || !strings.Contains(hb.LogAlarm.Seen, "\n10\n") || hb.LogAlarm.Got == "" {
				t.Fatalf("heartbeat alarm = %+v", hb.LogAlarm)
			}
			if got := heldSize(w); got != 10 {
				t.Errorf("after the alarm the witness holds %d, want 10", got)
			}
			w.observe(context.Background(), hb, wire.HeartbeatResponse{LogAlarmRecorded: true})
			if hb := beat(w, func(from *uint64) wire.HeartbeatResponse { return honest.answer(from, 10) }); hb.LogAlarm != nil {
				t.Error("the alarm is still sent after the server recorded it")
			}
			// An honest-looking answer and a restart do not clear it.
			if w2 := openTestWitness(t, dir, false); w2.refusal() == "" {
				t.Fatal("a restart cleared the alarm")
			}
			// The operator does, with --accept-log-fork; the next checkpoint
			// is then trusted on first use.
			w3 := openTestWitness(t, dir, true)
			if w3.refusal() != "" {
				t.Fatalf("--accept-log-fork left the alarm: %s", w3.refusal())
			}
			beat(w3, func(from *uint64) wire.HeartbeatResponse { return honest.answer(from, 10) })
			if got := heldSize(w3); got != 10 || w3.refusal() != "" {
				t.Errorf("after --accept-log-fork: holds %d, refusal %q", got, w3.refusal())
			}
		})
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
