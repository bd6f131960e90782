package api

import (
	"context"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// PublicLogPrefix is where the log is served without a session, in the
// C2SP tlog-tiles layout: <prefix>checkpoint and <prefix>tile/<L>/<N>[.p/<W>].
// Point a stock tlog-tiles client (or a witness's monitor) at
// https://HOST:PORT/log/.
const PublicLogPrefix = "/log/"

// PublicLogReader is what the public log routes need.
type PublicLogReader interface {
	Checkpoint(ctx context.Context) (audit.SignedCheckpoint, error)
	Tile(ctx context.Context, t tlog.Tile) ([]byte, error)
}

// PublicLogRoutes serve the signed checkpoint (with its cosignatures) and
// the hash tiles to anyone: they reveal the tree's size and hashes only,
// which is what lets people who hold nothing but the log's public key
// check that the log never forks. Entry bundles carry the entries
// themselves and stay behind a session (GET /v1/log/tile/entries/…).
// Each source address may make perSecond calls (bursts of burst); zero
// means 20 and 200, enough to fetch a proof's tiles at once.
func PublicLogRoutes(l PublicLogReader, perSecond float64, burst int) []Route {
	if perSecond <= 0 {
		perSecond = 20
	}
	if burst <= 0 {
		burst = 200
	}
	lim := newSourceLimiter(perSecond, burst, 10_000)
	limited := func(next func(*Call) error) func(*Call) error {
		return func(c *Call) error {
			if !lim.allow(c.SourceIP(), time.Now()) {
				return usererr.New(usererr.RateLimited, "too_many_requests",
					"too many log reads from %s; wait a few seconds and try again", c.SourceIP())
			}
			return next(c)
		}
	}
	checkpoint := func(c *Call) error {
		cp, err := l.Checkpoint(c.Context())
		if err != nil {
			return err
		}
		c.W.Header().Set("Content-Type", "text/plain; charset=utf-8")
		c.W.Header().Set("Cache-Control", "no-cache")
		_, err = c.W.Write(cp.Note)
		return err
	}
	tile := func(c *Call) error {
		p := c.R.PathValue("path")
		if strings.HasPrefix(p, "entries/") {
			return usererr.New(usererr.Unauthenticated, "entries_need_session",
				"entry bundles hold the log's entries and are served only with a session: log in and read GET /v1/log/tile/%s", p)
		}
		t, _, err := tlog.ParseTilePath("tile/" + p)
		if err != nil {
			return usererr.New(usererr.Invalid, "bad_tile_path", "%s is not a C2SP tlog-tiles hash tile path such as %stile/0/x001/234 or %stile/1/000.p/17.", c.R.URL.Path, PublicLogPrefix, PublicLogPrefix)
		}
		data, err := l.Tile(c.Context(), t)
		if err != nil {
			return err
		}
		c.W.Header().Set("Content-Type", "application/octet-stream")
		if t.Width == tlog.TileWidth {
			c.W.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		}
		_, err = c.W.Write(data)
		return err
	}
	return []Route{
		{Pattern: "GET " + PublicLogPrefix + "checkpoint", Public: true, Handle: limited(checkpoint)},
		{Pattern: "GET " + PublicLogPrefix + "tile/{path...}", Public: true, Handle: limited(tile)},
	}
}
