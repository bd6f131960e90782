package agenthub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Agents witness the audit log (protocol version 2). Every heartbeat
// answer carries the log's latest signed checkpoint and, when the agent's
// reported size is smaller, a consistency proof from that size; agents
// check both against the log key they pinned at enrollment and refuse
// every step once the log goes backwards or forks.
//
// The proof rides in the heartbeat answer rather than on a route of its
// own because the agent already reports its size there: one request per
// heartbeat instead of two, no second Cedar decision or revocation lookup,
// and a heartbeat whose size matches costs no proof at all.

// LogSource is the audit log as witnessing agents see it. internal/app
// implements it over audit.Log.
type LogSource interface {
	// PublicKey returns the log's signed-note verifier key.
	PublicKey(ctx context.Context) (string, error)
	// LatestCheckpoint returns the newest signed checkpoint (a signed
	// note); an error wrapping [ErrNoCheckpoint] when there is none yet.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	// ConsistencyProof proves the tree of size1 is a prefix of size2's.
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
}

// ErrNoCheckpoint is wrapped by LogSource.LatestCheckpoint before the log
// has signed its first checkpoint.
var ErrNoCheckpoint = errors.New("the log has no checkpoint yet")

// WitnessRecorder keeps what witnessing agents report. internal/app
// implements it.
type WitnessRecorder interface {
	// RecordCosignature stores host's cosignature, which the hub has
	// verified, replacing the one before.
	RecordCosignature(ctx context.Context, hostID string, c VerifiedCosignature) error
	// RecordLogAlarm records an agent's log alarm as an alert audit entry
	// ("agent.log_rollback"). The same alarm reported twice MUST be
	// recorded once; recording it MUST NOT depend on the log's state (it
	// is reported while the server serves the rolled-back view).
	RecordLogAlarm(ctx context.Context, hostID string, a wire.LogAlarm) error
}

// VerifiedCosignature is an agent's cosignature whose log signature and
// cosignature/v1 signature both verified.
type VerifiedCosignature struct {
	WitnessKey string
	Checkpoint tlog.Checkpoint
	Body       []byte    // the checkpoint text that was cosigned
	Line       string    // the cosignature line, "— name base64\n"
	Time       time.Time // the time inside the cosignature
}

// checkpointCache holds the log's latest checkpoint in memory, so that a
// heartbeat reads the database only when the cache is older than its TTL
// (once a TTL for all agents together), and the proofs computed from it
// by starting size, so that agents at the same size share one.
type checkpointCache struct {
	src LogSource
	ttl time.Duration
	log *slog.Logger

	mu       sync.Mutex
	vkey     string
	verifier note.Verifier
	fetched  time.Time // when the last fetch started (monotonic)
	snap     *checkpointSnapshot
}

// checkpointSnapshot is one fetched checkpoint; it is never modified
// after it is published, except for proofs under its own lock.
type checkpointSnapshot struct {
	vkey     string
	verifier note.Verifier
	note     []byte
	cp       tlog.Checkpoint
	valid    bool // the note verified with the log key (cp is set)

	mu     sync.Mutex
	proofs map[uint64][][]byte
}

const maxCachedProofs = 64

// get returns the cached checkpoint, fetching it again when it is older
// than the TTL or was fetched before notBefore (a request that started
// after the fetch may have seen a newer one elsewhere). nil, nil means the
// log has no checkpoint yet.
func (c *checkpointCache) get(ctx context.Context, notBefore time.Time) (*checkpointSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	if c.snap != nil && start.Sub(c.fetched) < c.ttl && !c.fetched.Before(notBefore) {
		return c.snap, nil
	}
	if c.verifier == nil {
		vkey, err := c.src.PublicKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("log key: %w", err)
		}
		v, err := tlog.NewVerifier(vkey)
		if err != nil {
			return nil, fmt.Errorf("log key %q: %v", vkey, err)
		}
		c.vkey, c.verifier = vkey, v
	}
	signed, err := c.src.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	if c.snap != nil && string(c.snap.note) == string(signed) {
		c.fetched = start
		return c.snap, nil
	}
	s := &checkpointSnapshot{vkey: c.vkey, verifier: c.verifier, note: signed, proofs: map[uint64][][]byte{}}
	if cp, _, err := tlog.OpenCheckpoint(signed, c.verifier); err != nil {
		// Sent anyway: the agents are the witnesses, and they refuse a
		// checkpoint that does not verify; the server says so here.
		c.log.ErrorContext(ctx, "the log's latest checkpoint does not verify with its own key", slog.String("error", err.Error()))
	} else {
		s.cp, s.valid = cp, true
	}
	c.snap, c.fetched = s, start
	return s, nil
}

// proof returns the consistency proof from size from to the snapshot's.
func (c *checkpointCache) proof(ctx context.Context, s *checkpointSnapshot, from uint64) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.proofs[from]; ok {
		return p, nil
	}
	p, err := c.src.ConsistencyProof(ctx, from, s.cp.Size)
	if err != nil {
		return nil, err
	}
	if len(s.proofs) >= maxCachedProofs {
		clear(s.proofs)
	}
	s.proofs[from] = p
	return p, nil
}

// witnessAnswer fills the log part of a heartbeat answer and takes in the
// heartbeat's cosignature and alarm. A failure here never fails the
// heartbeat (liveness matters more): it is logged, and the agent simply
// gets no checkpoint this time.
func (h *Hub) witnessAnswer(ctx context.Context, hostID string, started time.Time, hb wire.Heartbeat) wire.HeartbeatResponse {
	var resp wire.HeartbeatResponse
	if hb.LogAlarm != nil {
		// Recorded whatever the log looks like now: the server may be
		// serving exactly the rolled-back view the agent reports.
		if err := h.cfg.Witnesses.RecordLogAlarm(ctx, hostID, *hb.LogAlarm); err != nil {
			h.log.ErrorContext(ctx, "record an agent's log alarm", slog.String("host", hostID), slog.String("error", err.Error()))
		} else {
			resp.LogAlarmRecorded = true
		}
	}
	// An agent that holds a bigger tree than the cache may have seen a
	// checkpoint another server signed since the cache was filled: look
	// again before answering, so that no stale cache looks like a rollback.
	snap, err := h.checkpoints.get(ctx, time.Time{})
	if err == nil && snap != nil && snap.valid && hb.LogSize != nil && *hb.LogSize > snap.cp.Size {
		snap, err = h.checkpoints.get(ctx, started)
	}
	if err != nil {
		h.log.ErrorContext(ctx, "load the log checkpoint for a heartbeat", slog.String("error", err.Error()))
		return resp
	}
	if snap == nil {
		return resp
	}
	resp.LogKey = snap.vkey
	if hb.Cosignature != nil {
		if err := h.takeCosignature(ctx, hostID, snap.verifier, *hb.Cosignature); err != nil {
			resp.CosignatureError = err.Error()
			h.log.WarnContext(ctx, "agent cosignature refused", slog.String("host", hostID), slog.String("error", err.Error()))
		}
	}
	resp.Checkpoint = string(snap.note)
	if snap.valid && hb.LogSize != nil && *hb.LogSize < snap.cp.Size {
		p, err := h.checkpoints.proof(ctx, snap, *hb.LogSize)
		if err != nil {
			h.log.ErrorContext(ctx, "consistency proof for a heartbeat", slog.Uint64("from", *hb.LogSize), slog.Uint64("to", snap.cp.Size), slog.String("error", err.Error()))
			return resp
		}
		from := *hb.LogSize
		resp.ConsistencyFrom, resp.Consistency = &from, p
	}
	return resp
}

// takeCosignature verifies an agent's cosigned checkpoint — the log's
// signature and the agent's cosignature/v1 signature — and stores it.
func (h *Hub) takeCosignature(ctx context.Context, hostID string, logKey note.Verifier, c wire.Cosignature) error {
	wv, err := tlog.NewVerifier(c.WitnessKey)
	if err != nil {
		return usererr.Wrap(err, usererr.Invalid, "bad_witness_key", "The witness key %q is not a signed-note verifier key: %v.", c.WitnessKey, err)
	}
	cp, n, err := tlog.OpenCheckpoint([]byte(c.Note), logKey, wv)
	if err != nil {
		return usererr.Wrap(err, usererr.Invalid, "bad_cosignature", "The cosigned checkpoint does not verify: %v.", err)
	}
	for _, s := range n.Sigs {
		if s.Name != wv.Name() || s.Hash != wv.KeyHash() {
			continue
		}
		line := "— " + s.Name + " " + s.Base64 + "\n"
		t, err := tlog.VerifyCosignature(c.WitnessKey, []byte(n.Text), line)
		if err != nil {
			return usererr.Wrap(err, usererr.Invalid, "bad_cosignature", "The cosignature does not verify: %v.", err)
		}
		return h.cfg.Witnesses.RecordCosignature(ctx, hostID, VerifiedCosignature{WitnessKey: c.WitnessKey, Checkpoint: cp, Body: []byte(n.Text), Line: line, Time: t})
	}
	return usererr.New(usererr.Invalid, "no_cosignature", "The checkpoint carries no signature by the witness key %s.", wv.Name())
}
