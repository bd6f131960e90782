package ops_test

import (
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestHeartbeatsThatChangeNothingAreNotWritten: a live host's heartbeats
// with the same health only update memory — the database's last_seen
// stays until the batched flush — while this server's own reads (hosts,
// planning) see them at once; a change of health and a host coming back
// after a silence are written at once, with host.recovered.
func TestHeartbeatsThatChangeNothingAreNotWritten(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t), 3)
			h := e.hosts[0]
			stored := func() (time.Time, bool) {
				t.Helper()
				var nanos int64
				var healthy bool
				if err := e.db.QueryRow(e.ctx, `SELECT last_seen, healthy FROM ops_hosts WHERE id = $1`, h).Scan(&nanos, &healthy); err != nil {
					t.Fatal(err)
				}
				return time.Unix(0, nanos).UTC(), healthy
			}
			listed := func() (time.Time, bool, bool) {
				t.Helper()
				hosts, err := e.m.ListHosts(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range hosts {
					if s.ID == h {
						return s.LastSeen, s.Healthy, s.Live
					}
				}
				t.Fatalf("host %s not listed", h)
				return time.Time{}, false, false
			}

			e.beatAll() // the first heartbeat since start is written
			first := e.now
			if at, _ := stored(); !at.Equal(first) {
				t.Fatalf("first heartbeat: stored last_seen %v, want %v", at, first)
			}
			for range 3 {
				e.now = e.now.Add(5 * time.Second)
				e.beatAll()
			}
			if at, _ := stored(); !at.Equal(first) {
				t.Fatalf("heartbeats that changed nothing were written: last_seen %v, want still %v", at, first)
			}
			if at, healthy, live := listed(); !at.Equal(e.now) || !healthy || !live {
				t.Fatalf("this server's hosts list shows last seen %v healthy %v live %v, want %v true true", at, healthy, live, e.now)
			}
			if err := e.m.FlushHeartbeats(e.ctx); err != nil {
				t.Fatal(err)
			}
			if at, _ := stored(); !at.Equal(e.now) {
				t.Fatalf("after the flush: stored last_seen %v, want %v", at, e.now)
			}

			// A change of health is written at once.
			e.now = e.now.Add(5 * time.Second)
			if err := e.m.RecordHeartbeat(e.ctx, h, false); err != nil {
				t.Fatal(err)
			}
			if at, healthy := stored(); healthy || !at.Equal(e.now) {
				t.Fatalf("an unhealthy heartbeat: stored healthy %v at %v, want false at %v", healthy, at, e.now)
			}
			if _, healthy, live := listed(); healthy || live {
				t.Fatalf("hosts shows an unhealthy host healthy %v live %v", healthy, live)
			}

			// Coming back after a silence longer than the staleness window
			// is written at once, with its audit entry.
			if err := e.m.RecordHeartbeat(e.ctx, h, true); err != nil {
				t.Fatal(err)
			}
			recovered := e.audits("host.recovered")
			e.now = e.now.Add(time.Minute)
			if err := e.m.RecordHeartbeat(e.ctx, h, true); err != nil {
				t.Fatal(err)
			}
			if at, _ := stored(); !at.Equal(e.now) {
				t.Fatalf("a heartbeat after a silence: stored last_seen %v, want %v", at, e.now)
			}
			if n := e.audits("host.recovered"); n != recovered+1 {
				t.Fatalf("host.recovered entries %d → %d, want one more", recovered, n)
			}
		})
	}
}

// TestFlushSkipsRevokedHosts: a host revoked after heartbeats it took in
// memory is never marked seen again by the flush, and stays not live.
func TestFlushSkipsRevokedHosts(t *testing.T) {
	e := newEnv(t, 2)
	e.beatAll()
	e.now = e.now.Add(5 * time.Second)
	e.beatAll()
	if _, err := e.m.RevokeHost(e.ctx, admin, e.hosts[0], "key copied"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.FlushHeartbeats(e.ctx); err != nil {
		t.Fatal(err)
	}
	seen := func(id string) int64 {
		var n int64
		if err := e.db.QueryRow(e.ctx, `SELECT last_seen FROM ops_hosts WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := seen(e.hosts[0]), e.now.Add(-5*time.Second).UnixNano(); got != want {
		t.Errorf("revoked host: last_seen %d, want %d (its last written heartbeat)", got, want)
	}
	if got, want := seen(e.hosts[1]), e.now.UnixNano(); got != want {
		t.Errorf("live host: last_seen %d, want %d", got, want)
	}
	hosts, err := e.m.ListHosts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.ID == e.hosts[0] && h.Live {
			t.Error("the revoked host is listed live")
		}
	}
}
