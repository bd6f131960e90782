package agenthub

// ConnectedCount is how many hosts hold a live stream on this server, for
// /metrics (interlock_agents_connected).
func (h *Hub) ConnectedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}
