package ops

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Heartbeats that change nothing cost no database write. A host's agent
// heartbeats every few seconds; written one transaction each, ten thousand
// hosts are two thousand transactions a second that say only "still
// here". So the Manager keeps each host's last heartbeat in memory
// (heartbeatMemo) and:
//
//   - a heartbeat that changes the host's health, or comes from a host that
//     was not live (first since this server started, or after a silence
//     longer than StaleAfter, which also writes host.recovered), is
//     recorded at once, in its own transaction, as before;
//   - any other heartbeat only updates memory, and FlushHeartbeats writes
//     the last-seen times of all such hosts in one statement per thousand
//     hosts, every HeartbeatFlushEvery (RunHeartbeatFlusher);
//   - this server's own reads of liveness (planning, guardrails, `hosts`)
//     see memory, so they are exact; other servers sharing the database
//     see last-seen times at most one flush period old, well inside the
//     staleness window.
//
// A store that cannot write in batches (tests' fakes) records every
// heartbeat as before.
type heartbeatMemo struct {
	mu    sync.Mutex
	hosts map[string]lastBeat
	// conns, when set, lists the hosts whose agents hold a connection to
	// this server while it asks them to heartbeat less often (SetConnections).
	conns func() (hostIDs []string, every time.Duration)
}

type lastBeat struct {
	healthy bool
	seen    time.Time // the last heartbeat this server took, or the last flush that found the host connected
	beat    time.Time // the last heartbeat this server took
	stored  time.Time // the last_seen this server wrote (or read) for it
}

// SetConnections makes held agent connections count as liveness
// (agenthub.Hub.ConnectedHosts). A server with a large fleet asks its
// agents to heartbeat less often than the staleness window (every, up to
// a minute) to keep their CPU cost within a budget; meanwhile each flush
// counts the hosts connected here as seen now, with the health of their
// last heartbeat (an agent sends one at once when its health changes).
// A host whose agent sent no heartbeat for 2×every+StaleAfter is not
// counted so (its agent is stuck though its connection answers), nor one
// whose connection ended: it goes stale StaleAfter after the last flush
// that found it connected. TCP keepalives close a connection whose peer
// vanished within 30 s (internal/keepalive).
func (s *Manager) SetConnections(conns func() (hostIDs []string, every time.Duration)) {
	s.beats.mu.Lock()
	defer s.beats.mu.Unlock()
	s.beats.conns = conns
}

// seeConnected counts the connected hosts as seen at now (SetConnections).
func (s *Manager) seeConnected(now time.Time) {
	s.beats.mu.Lock()
	conns := s.beats.conns
	s.beats.mu.Unlock()
	if conns == nil {
		return
	}
	ids, every := conns()
	if len(ids) == 0 {
		return
	}
	grace := 2*every + s.cfg.StaleAfter
	s.beats.mu.Lock()
	defer s.beats.mu.Unlock()
	for _, id := range ids {
		if b, ok := s.beats.hosts[id]; ok && now.Sub(b.beat) <= grace && now.Sub(b.seen) <= s.cfg.StaleAfter && b.seen.Before(now) {
			b.seen = now
			s.beats.hosts[id] = b
		}
	}
}

// heartbeatBatcher writes many hosts' last-seen times at once.
type heartbeatBatcher interface {
	// TouchHostsSeen sets last_seen = at and healthy for the hosts named
	// that are not revoked and were last seen before at.
	TouchHostsSeen(ctx context.Context, ids []string, healthy bool, at time.Time) error
}

// DefaultHeartbeatFlushEvery is how often remembered heartbeats are
// written: a fifth of the default staleness window.
const DefaultHeartbeatFlushEvery = DefaultStaleAfter / 5

// fastHeartbeat takes a heartbeat in memory when it changes nothing: the
// host was live by this server's last heartbeat of it and says the same
// health. It reports whether it did.
func (s *Manager) fastHeartbeat(hostID string, healthy bool, now time.Time) bool {
	if _, ok := s.store.(heartbeatBatcher); !ok {
		return false
	}
	s.beats.mu.Lock()
	defer s.beats.mu.Unlock()
	b, ok := s.beats.hosts[hostID]
	if !ok || b.healthy != healthy || now.Sub(b.seen) > s.cfg.StaleAfter {
		return false
	}
	b.seen, b.beat = now, now
	s.beats.hosts[hostID] = b
	return true
}

// rememberHeartbeat notes a heartbeat recorded in the store.
func (s *Manager) rememberHeartbeat(hostID string, healthy bool, at time.Time) {
	s.beats.mu.Lock()
	defer s.beats.mu.Unlock()
	if s.beats.hosts == nil {
		s.beats.hosts = map[string]lastBeat{}
	}
	s.beats.hosts[hostID] = lastBeat{healthy: healthy, seen: at, beat: at, stored: at}
}

// forgetHeartbeats drops a host from memory (it was revoked).
func (s *Manager) forgetHeartbeats(hostID string) {
	s.beats.mu.Lock()
	defer s.beats.mu.Unlock()
	delete(s.beats.hosts, hostID)
}

// overlayHeartbeats gives hosts the heartbeats this server took but has
// not written yet, and counts the hosts connected here as seen now (so a
// flush slowed by a busy database does not make them look stale).
func (s *Manager) overlayHeartbeats(hosts []Host) {
	s.seeConnected(s.clock())
	s.beats.mu.Lock()
	defer s.beats.mu.Unlock()
	if len(s.beats.hosts) == 0 {
		return
	}
	for i := range hosts {
		h := &hosts[i]
		if b, ok := s.beats.hosts[h.ID]; ok && h.RevokedAt.IsZero() && b.seen.After(h.LastSeen) {
			h.LastSeen, h.Healthy = b.seen, b.healthy
		}
	}
}

// maxTouchBatch bounds the hosts of one batched write (SQLite allows
// 32,766 parameters in a statement).
const maxTouchBatch = 1000

// FlushHeartbeats writes the heartbeats taken in memory since the last
// flush. Each batch gets the earliest heartbeat time among its hosts, so a
// stored last_seen is never later than the host's real last heartbeat,
// and at most one flush period earlier. A host seen only through its held
// connection since its last heartbeat (SetConnections) is written once its
// stored last_seen is half of StaleAfter old: other servers' view of it
// stays inside the staleness window (at most StaleAfter/2 plus a flush
// period old), and ten thousand connected hosts are not rewritten every
// flush.
func (s *Manager) FlushHeartbeats(ctx context.Context) error {
	w, ok := s.store.(heartbeatBatcher)
	if !ok {
		return nil
	}
	s.seeConnected(s.clock())
	minAge := s.cfg.StaleAfter / 2
	type group struct {
		ids      []string
		earliest time.Time
	}
	var groups [2][]group // by health: [0] unhealthy, [1] healthy
	s.beats.mu.Lock()
	for id, b := range s.beats.hosts {
		if !b.seen.After(b.stored) || b.seen.After(b.beat) && b.seen.Sub(b.stored) < minAge {
			continue
		}
		k := 0
		if b.healthy {
			k = 1
		}
		gs := groups[k]
		if len(gs) == 0 || len(gs[len(gs)-1].ids) == maxTouchBatch {
			gs = append(gs, group{earliest: b.seen})
		}
		g := &gs[len(gs)-1]
		g.ids = append(g.ids, id)
		if b.seen.Before(g.earliest) {
			g.earliest = b.seen
		}
		groups[k] = gs
	}
	s.beats.mu.Unlock()
	for k, gs := range groups {
		for _, g := range gs {
			if err := w.TouchHostsSeen(ctx, g.ids, k == 1, g.earliest); err != nil {
				return err
			}
			s.beats.mu.Lock()
			for _, id := range g.ids {
				if b, ok := s.beats.hosts[id]; ok && b.stored.Before(g.earliest) {
					b.stored = g.earliest
					s.beats.hosts[id] = b
				}
			}
			s.beats.mu.Unlock()
		}
	}
	return nil
}

// RunHeartbeatFlusher calls FlushHeartbeats every interval (0 means
// DefaultHeartbeatFlushEvery, or a fifth of StaleAfter if shorter) until
// ctx ends. The server flushes once more after it stopped answering.
func (s *Manager) RunHeartbeatFlusher(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = min(DefaultHeartbeatFlushEvery, s.cfg.StaleAfter/5)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.FlushHeartbeats(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "write remembered heartbeats", slog.String("error", err.Error()))
			}
		}
	}
}

// groupedStore is a Store whose small transactions may share a commit with
// others made at the same time (store.DB.InTxGrouped).
type groupedStore interface {
	InTxGrouped(ctx context.Context, fn func(Tx) error) error
}

// inTxGrouped runs the small transactions that thousands of agents make at
// once — enrolling, pinning their certificate, a heartbeat that changes
// something — so that they share commits; each still commits (or fails)
// on its own before its caller hears of it.
func (s *Manager) inTxGrouped(ctx context.Context, fn func(Tx) error) error {
	if g, ok := s.store.(groupedStore); ok {
		return g.InTxGrouped(ctx, fn)
	}
	return s.store.InTx(ctx, fn)
}
