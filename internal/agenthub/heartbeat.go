package agenthub

import (
	"time"
)

// A fleet's heartbeats cost the server CPU in proportion to their rate:
// each is a TLS record, an HTTP/2 stream, a Cedar decision and a JSON
// answer, about a quarter of a millisecond of CPU. Ten thousand agents
// heartbeating every 5 s are 2,000 a second, half a core, only to say
// "still here". So the hub keeps the fleet's heartbeats within a budget
// (Config.HeartbeatBudget, per second): every heartbeat answer names the
// least time until the agent's next one (wire.HeartbeatResponse
// NextHeartbeatSeconds), the number of agents connected here divided by
// the budget, capped at Config.MaxHeartbeatInterval. Up to budget ×
// 5 s agents (500 by default) nothing changes; 10,000 agents heartbeat
// every 100 s.
//
// An agent told to wait still probes its health at its own interval and
// sends a heartbeat at once when its health changes, or when it has a log
// alarm to deliver; a cosignature rides the next heartbeat the budget
// allows; only "nothing changed" waits.
// Meanwhile the host's liveness comes from its held connection
// ([Hub.ConnectedHosts]): while the stream is attached, ops counts the
// host as seen (internal/ops liveness.go), and a connection whose peer
// vanished is closed by the kernel's TCP keepalives within 30 s
// (internal/keepalive), which ends the stream.

// DefaultHeartbeatBudget is the heartbeats per second a server takes from
// its agents before it asks them to slow down: 500 agents at 5 s. Nomad
// does the same with its max_heartbeats_per_second (50 by default).
const DefaultHeartbeatBudget = 100

// DefaultMaxHeartbeatInterval caps the interval a server asks for.
const DefaultMaxHeartbeatInterval = 2 * time.Minute

// stretchedPingEvery is the interval between a stream's ping lines while
// the hub stretches heartbeats (never shorter than Config.PingInterval):
// ten thousand streams at 15 s are 667 TLS writes a second for lines that
// say nothing. Each line names the interval (wire.AgentMessage
// NextSeconds), so the agent waits for the next one that long, plus a
// margin, before it takes the stream for broken.
const stretchedPingEvery = time.Minute

// streamPingEvery is the interval between a stream's ping lines: the
// configured one, or stretchedPingEvery while heartbeats are stretched.
// A peer that vanished is noticed by TCP keepalives meanwhile (internal/app).
func (h *Hub) streamPingEvery() time.Duration {
	if h.heartbeatEvery() == 0 {
		return h.cfg.PingInterval
	}
	return max(h.cfg.PingInterval, stretchedPingEvery)
}

// stretchFloor is the interval below which the hub asks for nothing: the
// agents' own default (agent.Config.HeartbeatInterval).
const stretchFloor = 5 * time.Second

// heartbeatEvery is the least interval between one agent's heartbeats
// that keeps the agents connected here within the budget; 0 while no
// stretching is needed.
func (h *Hub) heartbeatEvery() time.Duration {
	if h.cfg.HeartbeatBudget < 0 {
		return 0
	}
	h.mu.Lock()
	n := len(h.streams)
	h.mu.Unlock()
	d := time.Duration(float64(n) / h.cfg.HeartbeatBudget * float64(time.Second)).Round(time.Second)
	if d <= stretchFloor {
		return 0
	}
	return min(d, h.cfg.MaxHeartbeatInterval)
}

// ConnectedHosts lists the hosts whose agents hold a stream to this server
// while the hub asks agents to heartbeat less often than their default,
// with the interval it asks for; nil, 0 otherwise (heartbeats alone then
// keep hosts live, as they always did). internal/app gives it to
// ops.Manager.SetConnections, which counts these hosts as seen.
func (h *Hub) ConnectedHosts() (hostIDs []string, every time.Duration) {
	every = h.heartbeatEvery()
	if every == 0 {
		return nil, 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	hostIDs = make([]string, 0, len(h.streams))
	for id := range h.streams {
		hostIDs = append(hostIDs, id)
	}
	return hostIDs, every
}
