package agent_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// restorableLog is the server's audit log as agents see it; restore
// makes it serve an older, smaller checkpoint, as a server whose database
// and data directory were both restored from an old backup does.
type restorableLog struct {
	mu     sync.Mutex
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
	size   uint64
}

func newRestorableLog(t *testing.T, n int) *restorableLog {
	skey, vkey, err := note.GenerateKey(rand.Reader, "interlock/log")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	l := &restorableLog{signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("entry-%d", i)))
	}
	l.size = uint64(n)
	return l
}

func (l *restorableLog) restore(size uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.size = size
}

func (l *restorableLog) PublicKey(context.Context) (string, error) { return l.vkey, nil }

func (l *restorableLog) LatestCheckpoint(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.SignCheckpoint(l.signer, tlog.Checkpoint{Origin: "interlock/log", Size: l.size, Hash: l.tree.HashAt(l.size), Time: time.Now()})
}

func (l *restorableLog) ConsistencyProof(_ context.Context, a, b uint64) ([][]byte, error) {
	return l.tree.ConsistencyProof(a, b)
}

type recordedAlarms struct {
	mu     sync.Mutex
	alarms []wire.LogAlarm
}

func (r *recordedAlarms) RecordCosignature(context.Context, string, agenthub.VerifiedCosignature) error {
	return nil
}

func (r *recordedAlarms) RecordLogAlarm(_ context.Context, _ string, a wire.LogAlarm) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alarms = append(r.alarms, a)
	return nil
}

// heartbeatGate holds heartbeat answers back while closed: the server
// controls when (and whether) it answers a heartbeat.
type heartbeatGate struct {
	mu   sync.Mutex
	open chan struct{}
}

func (g *heartbeatGate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *heartbeatGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
}

func (g *heartbeatGate) wait(ctx context.Context) {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

// startWitnessedServer is a real hub over mTLS whose agents witness log.
func startWitnessedServer(t *testing.T, log agenthub.LogSource, alarms *recordedAlarms, gate *heartbeatGate) *testServer {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir(), testSealer{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inv := &fakeInventory{token: "ilk_join_test", uses: 1, heartbeats: map[string]int{}, unhealthy: map[string]int{}}
	pins := &fakePins{pins: map[string]agenthub.Pin{}}
	hub, err := agenthub.New(agenthub.Config{CA: ca, Enroller: inv, Heartbeats: inv, Revocations: inv, Certificates: pins,
		ConnectGrace: 5 * time.Second, PingInterval: 200 * time.Millisecond, Margin: 2 * time.Second,
		AuditLog: log, Witnesses: alarms, CheckpointTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.Handler()
	tlsCfg, err := ca.ServerTLSConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: tlsCfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/agent/heartbeat" {
			gate.wait(r.Context())
		}
		h.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return &testServer{url: "https://" + ln.Addr().String(), ca: ca, hub: hub, inv: inv, pins: pins}
}

// TestAgentRunsNoStepBeforeItHasCheckedTheLog is the attacker who
// restores the server's database and data directory from an old backup
// (so the signer signs the old tree without complaint) and has the
// restarted server send a step the moment the agent reconnects, before
// the agent's first heartbeat on the new connection is answered. The
// agent must not run it: it runs a step only after a checkpoint from
// this connection has verified, and then it sees the rollback.
func TestAgentRunsNoStepBeforeItHasCheckedTheLog(t *testing.T) {
	log := newRestorableLog(t, 10)
	alarms := &recordedAlarms{}
	gate := &heartbeatGate{}
	ts := startWitnessedServer(t, log, alarms, gate)
	dir := t.TempDir()
	stop := ts.startAgents(t, dir, 1, "ilk_join_test")
	waitFor(t, "the agent to verify the checkpoint of 10", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "log-witness.json"))
		return strings.Contains(string(b), "interlock/log\\n10\\n")
	})

	// A slow heartbeat answer on a log that is fine only delays a step.
	gate.hold()
	time.AfterFunc(300*time.Millisecond, gate.release)
	res, err := ts.hub.Dispatch(t.Context(), "host_1", wire.Step{StepID: "stp_fine", Argv: []string{"echo", "fine"}, TimeoutSeconds: 5})
	if err != nil || res.ExitCode != 0 || res.Output != "fine\n" {
		t.Fatalf("a step on a sound log = %+v, %v", res, err)
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old stream to end", func() bool { return !ts.hub.Connected("host_1") })
	log.restore(4) // the restored backup
	gate.hold()
	defer gate.release()
	ts.startAgents(t, dir, 1, "ilk_join_test")
	waitFor(t, "the agent to reconnect", func() bool { return ts.hub.Connected("host_1") })
	marker := filepath.Join(t.TempDir(), "ran")
	time.AfterFunc(500*time.Millisecond, gate.release)
	res, err = ts.hub.Dispatch(t.Context(), "host_1", wire.Step{StepID: "stp_after_restore", Argv: []string{"sh", "-c", "echo ran > " + marker}, TimeoutSeconds: 5})
	if _, serr := os.Stat(marker); serr == nil {
		t.Fatalf("the agent ran a step from a server whose log went back from 10 to 4 entries (result %+v, %v)", res, err)
	}
	if err != nil || res.ExitCode != -1 || !strings.Contains(res.Error, "log rollback detected") {
		t.Errorf("step after the restore = %+v, %v; want it refused as a log rollback", res, err)
	}
	waitFor(t, "the alarm to be recorded", func() bool {
		alarms.mu.Lock()
		defer alarms.mu.Unlock()
		return len(alarms.alarms) == 1 && alarms.alarms[0].Kind == wire.LogAlarmRollback
	})
}
