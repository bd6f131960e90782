package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// serverList is the servers an agent fails over along: the ones its
// operator named (--server, repeatable), then the ones the servers
// themselves list (GET /v1/agent/servers) after each connect. A DNS name
// with several addresses needs no entry per address: the dialer tries
// each address in turn.
type serverList struct {
	mu    sync.Mutex
	urls  []string
	cur   int
	tried int // servers tried since the last connection that worked
}

func newServerList(urls []string) *serverList {
	return &serverList{urls: slices.Clone(urls)}
}

// current is the server this agent talks to now.
func (s *serverList) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urls[s.cur]
}

// next moves to the next server after a failed or ended connection and
// reports whether every server was tried since the last good connection
// (then the caller backs off; otherwise it tries the next one at once,
// with a little jitter so that a fleet does not arrive in one instant).
func (s *serverList) next() (url string, roundDone bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = (s.cur + 1) % len(s.urls)
	s.tried++
	if s.tried >= len(s.urls) {
		s.tried = 0
		return s.urls[s.cur], true
	}
	return s.urls[s.cur], false
}

// connected notes that the current server answered.
func (s *serverList) connected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tried = 0
}

// merge adds the servers a server listed; it never drops the ones the
// operator named, so a server cannot steer the agent away from all of them.
func (s *serverList) merge(urls []string) (added []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range urls {
		u = strings.TrimRight(u, "/")
		if !strings.HasPrefix(u, "https://") || slices.Contains(s.urls, u) || len(s.urls) >= maxServers {
			continue
		}
		s.urls = append(s.urls, u)
		added = append(added, u)
	}
	return added
}

// maxServers bounds the list a server can grow.
const maxServers = 64

// switchDelay is the short, jittered wait before trying the next server.
func switchDelay() time.Duration { return 100*time.Millisecond + rand.N(400*time.Millisecond) }

// refreshServers asks the current server for the live servers' URLs and
// adds them to the list. Every server is pinned to the same CA, so a URL
// learnt this way reaches only a server that holds the CA's certificate.
func (a *agent) refreshServers(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var list wire.ServerList
	if err := getJSON(rctx, a.client, a.servers.current()+"/v1/agent/servers", &list); err != nil {
		a.log.DebugContext(ctx, "refresh the server list", slog.String("error", err.Error()))
		return
	}
	if added := a.servers.merge(list.Servers); len(added) > 0 {
		a.log.InfoContext(ctx, "learnt servers to fail over to", slog.Any("servers", added))
	}
}

func parseServers(first string, more []string) ([]string, error) {
	var out []string
	for _, u := range append([]string{first}, more...) {
		for _, p := range strings.Split(u, ",") {
			p = strings.TrimRight(strings.TrimSpace(p), "/")
			if p == "" {
				continue
			}
			if !strings.HasPrefix(p, "https://") {
				return nil, fmt.Errorf("--server %q must be an https:// URL", p)
			}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--server is required")
	}
	return out, nil
}

// getJSON GETs url and decodes its JSON answer into out.
func getJSON(ctx context.Context, client *http.Client, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readProblem(resp)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(out)
}
