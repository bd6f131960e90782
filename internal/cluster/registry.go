package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Server is one `interlock serve` process sharing the database.
type Server struct {
	ID       string
	URL      string // what agents and people use to reach it (https://…)
	Started  time.Time
	LastSeen time.Time
}

// RegistryStore keeps the live servers. internal/store implements it.
type RegistryStore interface {
	// PutServer inserts or refreshes s, setting its last-seen time to the
	// database's now.
	PutServer(ctx context.Context, s Server) error
	// Servers returns the servers seen within maxAge, oldest first.
	Servers(ctx context.Context, maxAge time.Duration) ([]Server, error)
	// DeleteServer removes a server (a clean shutdown).
	DeleteServer(ctx context.Context, id string) error
}

// NewServerID returns an ID for this process: hostname, pid and a random
// suffix, so that a restarted server is a new one (its old steps and
// leases are another's, and fenced).
func NewServerID() string {
	h, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b[:]))
}

// Registry advertises this server and answers who else is alive.
type Registry struct {
	store RegistryStore
	self  Server
	every time.Duration
	log   *slog.Logger
}

// NewRegistry returns a registry for this server (id, url); it refreshes
// its row every `every` (0 means 2 s). A server not seen for 3×every is
// taken for dead.
func NewRegistry(store RegistryStore, id, url string, every time.Duration, log *slog.Logger) *Registry {
	if every <= 0 {
		every = 2 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{store: store, self: Server{ID: id, URL: url, Started: time.Now()}, every: every, log: log}
}

// SetURL sets the URL this server advertises (call before Announce).
func (r *Registry) SetURL(url string) { r.self.URL = url }

// ID is this server's ID.
func (r *Registry) ID() string { return r.self.ID }

// MaxAge is how long a server may go unseen before it is taken for dead.
func (r *Registry) MaxAge() time.Duration { return 3 * r.every }

// Announce writes this server's row once (call before serving).
func (r *Registry) Announce(ctx context.Context) error { return r.store.PutServer(ctx, r.self) }

// Run refreshes this server's row until ctx ends. The row stays: it
// expires after MaxAge unless the server leaves (Leave) once nothing of
// its own runs any more.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.store.PutServer(ctx, r.self); err != nil && ctx.Err() == nil {
				r.log.WarnContext(ctx, "refresh this server's registration", slog.String("error", err.Error()))
			}
		}
	}
}

// Leave removes this server's row at once, so that the others take over
// its operations now rather than after MaxAge.
func (r *Registry) Leave(ctx context.Context) error { return r.store.DeleteServer(ctx, r.self.ID) }

// Live returns the servers seen recently, this one included.
func (r *Registry) Live(ctx context.Context) ([]Server, error) {
	return r.store.Servers(ctx, r.MaxAge())
}

// Alive reports whether server id was seen recently.
func (r *Registry) Alive(ctx context.Context, id string) (bool, error) {
	live, err := r.Live(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range live {
		if s.ID == id {
			return true, nil
		}
	}
	return false, nil
}
