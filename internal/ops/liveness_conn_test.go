package ops_test

import (
	"sync"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestHeldConnectionsKeepHostsLive: while the hub asks agents to
// heartbeat less often than the staleness window, a host whose agent
// holds its connection stays live — in this server's reads and, through
// the flush, in the database other servers read — and one without a
// connection goes stale as before; so does a connected host whose agent
// stopped heartbeating altogether, and one whose connection ended.
func TestHeldConnectionsKeepHostsLive(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t), 2)
			held, other := e.hosts[0], e.hosts[1]
			var mu sync.Mutex
			connected := []string{held}
			e.m.SetConnections(func() ([]string, time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), connected...), 50 * time.Second
			})
			live := func(id string) bool {
				t.Helper()
				hosts, err := e.m.ListHosts(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, h := range hosts {
					if h.ID == id {
						return h.Live
					}
				}
				t.Fatalf("host %s not listed", id)
				return false
			}
			stored := func(id string) time.Time {
				t.Helper()
				var nanos int64
				if err := e.db.QueryRow(e.ctx, `SELECT last_seen FROM ops_hosts WHERE id = $1`, id).Scan(&nanos); err != nil {
					t.Fatal(err)
				}
				return time.Unix(0, nanos).UTC()
			}
			flushFor := func(d time.Duration) {
				t.Helper()
				for end := e.now.Add(d); e.now.Before(end); {
					e.now = e.now.Add(3 * time.Second)
					if err := e.m.FlushHeartbeats(e.ctx); err != nil {
						t.Fatal(err)
					}
				}
			}

			e.beatAll()
			flushFor(45 * time.Second) // no heartbeat: the agents were asked to wait 50 s
			if !live(held) {
				t.Fatal("a host whose agent holds its connection went stale between stretched heartbeats")
			}
			if age := e.now.Sub(stored(held)); age > ops15s {
				t.Fatalf("the database's last_seen of the connected host is %s old; other servers would see it stale", age)
			}
			if live(other) {
				t.Fatal("a host with no connection and no heartbeat for 45 s is still live")
			}

			// An agent that stops heartbeating (stuck) is not kept live by
			// its connection beyond 2×interval + the staleness window.
			flushFor(2*time.Minute + 15*time.Second)
			if live(held) {
				t.Fatal("a connected host whose agent sent no heartbeat for over two minutes is still live")
			}

			// Heartbeating again, then the connection ends: stale after the window.
			if err := e.m.RecordHeartbeat(e.ctx, held, true); err != nil {
				t.Fatal(err)
			}
			flushFor(9 * time.Second)
			if !live(held) {
				t.Fatal("a connected host that heartbeats is not live")
			}
			mu.Lock()
			connected = nil
			mu.Unlock()
			flushFor(18 * time.Second)
			if live(held) {
				t.Fatal("a host whose connection ended 18 s ago, with no heartbeat since, is still live")
			}
		})
	}
}

const ops15s = 15 * time.Second

// TestHeldConnectionDoesNotKeepARevokedHostLive: an attacker holding a
// revoked host's connection open (its stream ends only at the next ping)
// cannot keep the host live or targetable through it.
func TestHeldConnectionDoesNotKeepARevokedHostLive(t *testing.T) {
	e := newEnv(t, 1)
	h := e.hosts[0]
	e.m.SetConnections(func() ([]string, time.Duration) { return []string{h}, time.Minute })
	e.beatAll()
	if _, err := e.m.RevokeHost(e.ctx, admin, h, "key copied"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.now = e.now.Add(3 * time.Second)
		if err := e.m.FlushHeartbeats(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	hosts, err := e.m.ListHosts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range hosts {
		if x.ID == h && x.Live {
			t.Fatal("a revoked host whose connection is still held is live")
		}
	}
	var nanos int64
	if err := e.db.QueryRow(e.ctx, `SELECT last_seen FROM ops_hosts WHERE id = $1`, h).Scan(&nanos); err != nil {
		t.Fatal(err)
	}
	if seen := time.Unix(0, nanos).UTC(); seen.After(e.now.Add(-9 * time.Second)) {
		t.Fatalf("the revoked host's last_seen moved to %v after its revocation", seen)
	}
}
