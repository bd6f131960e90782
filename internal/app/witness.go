package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/agenthub"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// The fleet as witnesses of the audit log: the hub serves the log's
// checkpoints to agents (hubLog) and keeps what they send back
// (fleetWitness): their cosignatures, one row per host, and their alarms,
// as "agent.log_rollback" alert entries counted by
// interlock_agent_log_rollbacks_total.

// hubLog serves the audit log to the agent hub.
type hubLog struct{ log *audit.Log }

func (l hubLog) PublicKey(ctx context.Context) (string, error) { return l.log.PublicKey(ctx) }

func (l hubLog) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	sc, err := l.log.Checkpoint(ctx)
	if ue, ok := usererr.As(err); ok && ue.Kind == usererr.NotFound {
		return nil, fmt.Errorf("%w: %v", agenthub.ErrNoCheckpoint, err)
	}
	if err != nil {
		return nil, err
	}
	return sc.Note, nil
}

func (l hubLog) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	return l.log.ConsistencyProof(ctx, size1, size2)
}

// fleetWitness records what witnessing agents report.
type fleetWitness struct {
	db        *store.DB
	audit     *audit.Log
	now       func() time.Time
	rollbacks prometheus.Counter

	mu     sync.Mutex
	alarms map[string][]time.Time // per host: alarms recorded in the last hour
}

// maxAlarmsPerHour bounds the alarm entries one host can add: an honest
// agent reports one alarm until it is recorded, and a new one only after
// its operator cleared the last; a stolen agent key must not be able to
// flood the log.
const maxAlarmsPerHour = 10

func newFleetWitness(db *store.DB, l *audit.Log, now func() time.Time) *fleetWitness {
	return &fleetWitness{db: db, audit: l, now: now, alarms: map[string][]time.Time{},
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "interlock_agent_log_rollbacks_total",
			Help: "Log alarms (rollback, fork, bad signature) reported by agents; each is an agent.log_rollback audit entry and should page someone."})}
}

// RecordCosignature stores the host's newest cosignature. A witness key
// the host had not used before is a state change and is audited with it.
func (f *fleetWitness) RecordCosignature(ctx context.Context, hostID string, c agenthub.VerifiedCosignature) error {
	now := f.now()
	// Grouped: a fleet's agents cosign at about the same time.
	return f.db.InTxGrouped(ctx, func(tx *store.Tx) error {
		prev, err := tx.AgentCosignature(ctx, hostID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if prev.WitnessKey != c.WitnessKey {
			if err := audit.Append(ctx, tx, audit.Entry{Kind: "agent.witness_key", Version: 1, Actor: "agent:" + hostID, Subject: "host:" + hostID, Time: now,
				Data: map[string]any{"witness_key": c.WitnessKey, "previous_key": prev.WitnessKey}}); err != nil {
				return err
			}
		}
		return tx.PutAgentCosignature(ctx, store.AgentCosignature{HostID: hostID, WitnessKey: c.WitnessKey, Checkpoint: c.Body,
			Size: c.Checkpoint.Size, Signature: c.Line, CosignedAt: c.Time, ReceivedAt: now})
	})
}

// RecordLogAlarm appends the agent's alarm as an alert entry, once per
// alarm (the idempotency key hashes what the agent saw and got), whatever
// the log looks like now. The notes the agent sent are kept as evidence;
// seen_verified says whether the checkpoint it had verified carries a
// valid signature by this log's key — if so, the log itself once signed
// the history it no longer shows.
func (f *fleetWitness) RecordLogAlarm(ctx context.Context, hostID string, a wire.LogAlarm) error {
	switch a.Kind {
	case wire.LogAlarmRollback, wire.LogAlarmFork, wire.LogAlarmBadSignature:
	default:
		return usererr.New(usererr.Invalid, "bad_log_alarm", "The log alarm kind %q is not one of rollback, fork, bad_signature.", a.Kind)
	}
	const maxNote = 4096
	if len(a.Seen) > maxNote || len(a.Got) > maxNote || len(a.Detail) > maxNote {
		return usererr.New(usererr.TooLarge, "log_alarm_too_large", "A log alarm's notes and detail are limited to %d bytes each.", maxNote)
	}
	data := map[string]any{"alert": true, "kind": a.Kind, "detail": a.Detail, "detected_at": a.DetectedAt.UTC().Format(time.RFC3339Nano),
		"seen": a.Seen, "got": a.Got, "seen_size": nil, "got_size": nil, "seen_verified": false}
	for name, n := range map[string]string{"seen": a.Seen, "got": a.Got} {
		if cp, err := tlog.ParseCheckpoint(noteText([]byte(n))); err == nil {
			data[name+"_size"] = cp.Size
		}
	}
	if vkey, err := f.audit.PublicKey(ctx); err == nil {
		if v, err := tlog.NewVerifier(vkey); err == nil {
			if _, _, err := tlog.OpenCheckpoint([]byte(a.Seen), v); err == nil {
				data["seen_verified"] = true
			}
		}
	}
	if !f.allowAlarm(hostID) {
		return usererr.New(usererr.RateLimited, "too_many_log_alarms", "This host reported %d log alarms within the hour; later ones are not recorded until the hour has passed.", maxAlarmsPerHour)
	}
	sum := sha256.Sum256([]byte(a.Kind + "\x00" + a.Seen + "\x00" + a.Got))
	err := f.db.InTx(ctx, func(tx *store.Tx) error {
		return audit.Append(ctx, tx, audit.Entry{Kind: "agent.log_rollback", Version: 1, Actor: "agent:" + hostID, Subject: "host:" + hostID,
			Time: f.now(), Data: data, IdempotencyKey: "agent.log_rollback:" + hostID + ":" + hex.EncodeToString(sum[:16])})
	})
	if errors.Is(err, audit.ErrDuplicate) {
		return nil // recorded before: the agent had not heard back
	}
	if err != nil {
		return err
	}
	f.rollbacks.Inc()
	f.mu.Lock()
	f.alarms[hostID] = append(f.alarms[hostID], f.now())
	f.mu.Unlock()
	return nil
}

func (f *fleetWitness) allowAlarm(hostID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	cut := f.now().Add(-time.Hour)
	recent := f.alarms[hostID][:0]
	for _, t := range f.alarms[hostID] {
		if t.After(cut) {
			recent = append(recent, t)
		}
	}
	f.alarms[hostID] = recent
	return len(recent) < maxAlarmsPerHour
}

// noteText is the text of a signed note (through its blank line).
func noteText(n []byte) []byte {
	for i := 0; i+1 < len(n); i++ {
		if n[i] == '\n' && n[i+1] == '\n' {
			return n[:i+1]
		}
	}
	return n
}

// AgentCosignature is one agent's newest stored cosignature, checked.
type AgentCosignature struct {
	HostID     string
	WitnessKey string
	Size       uint64
	CosignedAt time.Time
	// Err is nil when the cosignature verifies with the agent's witness
	// key and the cosigned checkpoint is a prefix of the log's latest.
	Err error
}

// AgentCosignatures checks every stored agent cosignature: its
// cosignature/v1 signature with the agent's witness key, and that the
// checkpoint it cosigned is consistent with the log's latest checkpoint.
func (a *App) AgentCosignatures(ctx context.Context) ([]AgentCosignature, error) {
	rows, err := a.db.AgentCosignatures(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := a.Audit.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AgentCosignature, 0, len(rows))
	for _, r := range rows {
		c := AgentCosignature{HostID: r.HostID, WitnessKey: r.WitnessKey, Size: r.Size}
		c.CosignedAt, c.Err = tlog.VerifyCosignature(r.WitnessKey, r.Checkpoint, r.Signature)
		if c.Err == nil {
			c.Err = a.inLatestTree(ctx, r.Checkpoint, latest.Checkpoint)
		}
		out = append(out, c)
	}
	return out, nil
}

// inLatestTree checks that the checkpoint body describes a prefix of the
// latest tree.
func (a *App) inLatestTree(ctx context.Context, body []byte, latest tlog.Checkpoint) error {
	cp, err := tlog.ParseCheckpoint(body)
	if err != nil {
		return err
	}
	if cp.Size > latest.Size {
		return fmt.Errorf("cosigned a tree of %d entries; the log's latest has %d", cp.Size, latest.Size)
	}
	p, err := a.Audit.ConsistencyProof(ctx, cp.Size, latest.Size)
	if err != nil {
		return err
	}
	return tlog.CheckExtension(&cp, latest, p)
}
