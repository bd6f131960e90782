package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// Every agent is a witness of the server's audit log. It pins the log's
// public key at enrollment (logKeyFile, trusted as the CA fingerprint is),
// keeps the newest checkpoint it verified (logStateFile), and checks every
// checkpoint a heartbeat answer carries: the log's signature, then that it
// extends the one kept — the same tree, or a bigger one with a valid RFC
// 6962 consistency proof. A smaller tree (a rollback, e.g. a restored
// backup or a database cut back by an attacker), a different root for the
// same size or a failed proof (a fork), or a bad signature raise an alarm:
// the agent refuses every step from then on, says so in its log, and
// reports it to the server until the server has recorded it. The alarm is
// kept in logStateFile, so a restart does not clear it; only its operator
// does, with `interlock agent --accept-log-fork` (or by deleting that file).
//
// The agent also cosigns (C2SP tlog-cosignature/v1) checkpoints it
// verified with a witness key of its own (witnessKeyFile), sent with the
// next heartbeat. It is an Ed25519 key separate from the mTLS key because
// cosignature/v1 is Ed25519 only (the mTLS key is ECDSA P-256), the mTLS
// key is replaced at every certificate renewal while verifiers pin a
// witness key for good, and one key serving two protocols would invite
// cross-protocol signature confusion.
const (
	logKeyFile     = "log-key.txt"      // the log's verifier key, pinned at enrollment
	logStateFile   = "log-witness.json" // newest verified checkpoint, alarm, last cosignature
	witnessKeyFile = "witness-key.pem"  // the Ed25519 cosignature key (0600)
)

// witnessState is logStateFile.
type witnessState struct {
	// Checkpoint is the newest checkpoint verified, as the signed note
	// the server sent.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Alarm, once set, makes the agent refuse every step until its
	// operator clears it.
	Alarm *wire.LogAlarm `json:"alarm,omitempty"`
	// AlarmRecorded says the server has recorded the alarm.
	AlarmRecorded bool `json:"alarm_recorded,omitempty"`
	// CosignedSize and CosignedAt describe the last checkpoint cosigned.
	CosignedSize uint64    `json:"cosigned_size,omitempty"`
	CosignedAt   time.Time `json:"cosigned_at,omitzero"`
}

// witness is one agent's log witness. Its methods are safe for concurrent
// use (the heartbeat loop writes, step handlers read).
type witness struct {
	dir         string
	log         *slog.Logger
	now         func() time.Time
	cosignEvery time.Duration
	cosigner    *tlog.Cosigner

	mu       sync.Mutex
	key      note.Verifier // nil until a log key is pinned
	state    witnessState
	latest   *tlog.Checkpoint // parsed state.Checkpoint
	outgoing *wire.Cosignature
	// session counts connections; checked is closed once a heartbeat
	// answer on connection number session has been checked (see
	// waitChecked).
	session uint64
	checked chan struct{}
}

// openWitness loads the witness state from dir, creating the witness key
// at first start. acceptFork clears an alarm and the kept checkpoint (the
// next checkpoint is then trusted as on first use); the pinned log key
// stays.
func openWitness(ctx context.Context, cfg Config, hostID string) (*witness, error) {
	w := &witness{dir: cfg.DataDir, log: cfg.Log, now: cfg.Now, cosignEvery: cfg.CosignEvery}
	if b, err := os.ReadFile(filepath.Join(w.dir, logKeyFile)); err == nil {
		v, err := tlog.NewVerifier(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s does not hold a log key: %v", filepath.Join(w.dir, logKeyFile), err)
		}
		w.key = v
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the pinned log key: %w", err)
	}
	statePath := filepath.Join(w.dir, logStateFile)
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &w.state); err != nil {
			return nil, fmt.Errorf("%s is damaged (%v); an operator who has checked the server's log may delete it", statePath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", statePath, err)
	}
	if cfg.AcceptLogFork && (w.state.Alarm != nil || w.state.Checkpoint != "") {
		w.log.WarnContext(ctx, "--accept-log-fork: forgetting the log alarm and the kept checkpoint; the next checkpoint is trusted as on first use",
			slog.Any("alarm", w.state.Alarm))
		w.state = witnessState{}
		if err := w.save(); err != nil {
			return nil, err
		}
	}
	if w.state.Checkpoint != "" && w.key != nil {
		cp, _, err := tlog.OpenCheckpoint([]byte(w.state.Checkpoint), w.key)
		if err != nil {
			return nil, fmt.Errorf("the checkpoint kept in %s does not verify with the pinned log key: %v", statePath, err)
		}
		w.latest = &cp
	}
	if w.state.Alarm != nil {
		w.log.ErrorContext(ctx, "the audit log alarm raised earlier stands: refusing every step until an operator clears it with --accept-log-fork",
			slog.String("kind", w.state.Alarm.Kind), slog.String("detail", w.state.Alarm.Detail))
	}
	key, err := loadOrCreateWitnessKey(w.dir, cfg.Rand)
	if err != nil {
		return nil, err
	}
	if w.cosigner, err = tlog.NewCosigner(witnessName(hostID), key); err != nil {
		return nil, err
	}
	w.cosigner.Now = cfg.Now
	return w, nil
}

// witnessName is the agent's cosignature key name: unique per host and
// free of the characters a note key name may not hold.
func witnessName(hostID string) string {
	return "interlock-agent/" + strings.Map(func(r rune) rune {
		if r == '+' || r <= ' ' {
			return '_'
		}
		return r
	}, hostID)
}

func loadOrCreateWitnessKey(dir string, rand io.Reader) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, witnessKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		defer clear(b)
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("%s is not a PEM private key", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if ek, ok := k.(ed25519.PrivateKey); err == nil && ok {
			return ek, nil
		}
		return nil, fmt.Errorf("%s does not hold an Ed25519 key", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	_, key, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate the witness key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(pkcs8)
	if err := writeFileDurable(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		return nil, fmt.Errorf("save the witness key: %w", err)
	}
	return key, nil
}

// pinLogKey writes the log key an enrollment answer carried.
func pinLogKey(dir, vkey string) error {
	if _, err := tlog.NewVerifier(vkey); err != nil {
		return fmt.Errorf("the server sent a log key that is not a signed-note verifier key: %v", err)
	}
	return writeFileDurable(filepath.Join(dir, logKeyFile), []byte(vkey+"\n"), 0o600)
}

// save writes the state atomically and durably; w.mu is held or w is not
// shared yet.
func (w *witness) save() error {
	b, err := json.MarshalIndent(w.state, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileDurable(filepath.Join(w.dir, logStateFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the log witness state: %w", err)
	}
	return nil
}

// writeFileDurable replaces path atomically (the file is fsynced before
// the rename) and then fsyncs the directory, so the rename itself
// survives a crash.
func writeFileDurable(path string, data []byte, mode os.FileMode) error {
	if err := writeFileAtomic(path, data, mode); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// refusal is the reason every step is refused, or "" when steps may run.
func (w *witness) refusal() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state.Alarm == nil {
		return ""
	}
	return "agent refuses: log rollback detected (" + w.state.Alarm.Kind + "): " + w.state.Alarm.Detail +
		"; this agent runs nothing until its operator has checked the server and restarted it with --accept-log-fork"
}

// A checkpoint verified on an earlier connection says nothing about the
// server at the other end of this one: it may have been restarted from a
// restored backup, and it may send a step the moment the agent
// reconnects, before the first heartbeat is answered. So a step waits
// until a heartbeat answer on the current connection has been checked.

// newSession starts a connection and returns its number; heartbeat
// answers count for the step gate only when observed with it.
func (w *witness) newSession() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.session++
	w.checked = make(chan struct{})
	return w.session
}

// waitChecked waits until a heartbeat answer on the current connection
// was checked (or raised the alarm), at most d. It reports whether one
// was.
func (w *witness) waitChecked(ctx context.Context, d time.Duration) bool {
	w.mu.Lock()
	ch := w.checked
	w.mu.Unlock()
	if ch == nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// heartbeat fills the witness fields of a heartbeat.
func (w *witness) heartbeat(hb *wire.Heartbeat) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest != nil {
		size := w.latest.Size
		hb.LogSize = &size
	}
	if w.state.Alarm != nil && !w.state.AlarmRecorded {
		a := *w.state.Alarm
		hb.LogAlarm = &a
	}
	hb.Cosignature = w.outgoing
}

// observeOn is observe for a heartbeat answered on connection session:
// when the answer settled what the agent thinks of the log, steps on
// that connection may go on (to run, or to be refused by the alarm).
func (w *witness) observeOn(ctx context.Context, session uint64, sent wire.Heartbeat, resp wire.HeartbeatResponse) {
	settled := w.observe(ctx, sent, resp)
	w.mu.Lock()
	defer w.mu.Unlock()
	if settled && session == w.session && w.checked != nil {
		select {
		case <-w.checked:
		default:
			close(w.checked)
		}
	}
}

// observe checks a heartbeat answer. sent is the heartbeat it answers. It
// reports whether the answer settled the question: the log is followed
// (or the server does not publish one), or the alarm is raised.
func (w *witness) observe(ctx context.Context, sent wire.Heartbeat, resp wire.HeartbeatResponse) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if sent.Cosignature != nil && w.outgoing == sent.Cosignature {
		w.outgoing = nil // delivered (or refused: then it is logged, not resent)
		if resp.CosignatureError != "" {
			w.log.WarnContext(ctx, "the server did not store this agent's cosignature", slog.String("error", resp.CosignatureError))
		}
	}
	if w.state.Alarm != nil {
		if sent.LogAlarm != nil && resp.LogAlarmRecorded && !w.state.AlarmRecorded {
			w.state.AlarmRecorded = true
			if err := w.save(); err != nil {
				w.log.ErrorContext(ctx, "remember that the log alarm was reported", slog.String("error", err.Error()))
			}
			w.log.InfoContext(ctx, "the server recorded this agent's log alarm in its audit log")
		}
		return true // the kept checkpoint stays the last one trusted
	}
	if w.key == nil {
		if resp.LogKey == "" {
			return true // a server that does not publish a log (protocol 1)
		}
		// An agent enrolled before protocol version 2 pins the key on first
		// use, over the same CA-pinned mTLS connection enrollment used.
		if err := pinLogKey(w.dir, resp.LogKey); err != nil {
			w.log.ErrorContext(ctx, "pin the log key", slog.String("error", err.Error()))
			return false
		}
		w.key, _ = tlog.NewVerifier(resp.LogKey)
		w.log.InfoContext(ctx, "pinned the audit log's public key", slog.String("log_key", resp.LogKey))
	}
	if resp.Checkpoint == "" {
		// No checkpoint this time: fine for an agent that holds none yet;
		// one that does waits for the next answer that carries one.
		return w.latest == nil
	}
	cp, _, err := tlog.OpenCheckpoint([]byte(resp.Checkpoint), w.key)
	if err != nil {
		w.raise(ctx, wire.LogAlarmBadSignature, fmt.Sprintf("the server's checkpoint does not verify with the log key pinned at enrollment: %v", err), resp.Checkpoint)
		return true
	}
	if err := w.check(sent, cp, resp); err != nil {
		if errors.Is(err, errNoProofYet) {
			return false
		}
		var rb *tlog.RollbackError
		kind := wire.LogAlarmFork
		if errors.As(err, &rb) {
			kind = wire.LogAlarmRollback
		}
		w.raise(ctx, kind, err.Error(), resp.Checkpoint)
		return true
	}
	if w.latest != nil && tlog.SameTree(*w.latest, cp) {
		return true // nothing new: no disk write
	}
	w.state.Checkpoint, w.latest = resp.Checkpoint, &cp
	if w.cosignEvery >= 0 && (w.state.CosignedAt.IsZero() || w.now().Sub(w.state.CosignedAt) >= w.cosignEvery) {
		if cosigned, _, err := tlog.Cosign([]byte(resp.Checkpoint), w.key, w.cosigner); err != nil {
			w.log.WarnContext(ctx, "cosign the checkpoint", slog.String("error", err.Error()))
		} else {
			w.outgoing = &wire.Cosignature{WitnessKey: w.cosigner.VerifierKey(), Note: string(cosigned)}
			w.state.CosignedSize, w.state.CosignedAt = cp.Size, w.now().UTC()
		}
	}
	if err := w.save(); err != nil {
		w.log.ErrorContext(ctx, "keep the verified checkpoint", slog.String("error", err.Error()))
	}
	w.log.DebugContext(ctx, "verified a new log checkpoint", slog.Uint64("size", cp.Size))
	return true
}

// errNoProofYet: a bigger checkpoint came without a proof from the size
// the agent holds (the answer crossed a change of state); the next
// heartbeat asks again.
var errNoProofYet = errors.New("no consistency proof from the size this agent holds")

// check decides whether cp extends the kept checkpoint.
func (w *witness) check(sent wire.Heartbeat, cp tlog.Checkpoint, resp wire.HeartbeatResponse) error {
	prev := w.latest
	if prev == nil {
		return nil // trust on first use, under the pinned key
	}
	if cp.Size > prev.Size {
		if resp.ConsistencyFrom == nil || *resp.ConsistencyFrom != prev.Size || sent.LogSize == nil || *sent.LogSize != prev.Size {
			return errNoProofYet
		}
		return tlog.CheckExtension(prev, cp, resp.Consistency)
	}
	return tlog.CheckExtension(prev, cp, nil)
}

// raise sets the alarm: kept on disk, logged, reported with every
// heartbeat until the server records it.
func (w *witness) raise(ctx context.Context, kind, detail, got string) {
	w.state.Alarm = &wire.LogAlarm{Kind: kind, Detail: detail, Seen: w.state.Checkpoint, Got: got, DetectedAt: w.now().UTC()}
	w.state.AlarmRecorded = false
	w.outgoing = nil
	w.log.ErrorContext(ctx, "the server's audit log does not extend the history this agent verified: refusing every step until an operator clears it with `interlock agent --accept-log-fork`",
		slog.String("kind", kind), slog.String("detail", detail))
	if err := w.save(); err != nil {
		// The alarm holds in memory; the agent still refuses until it stops.
		w.log.ErrorContext(ctx, "keep the log alarm on disk", slog.String("error", err.Error()))
	}
}
