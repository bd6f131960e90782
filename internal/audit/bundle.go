package audit

import (
	"context"
	"fmt"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// MaxExport is the most entries one bundle holds.
const MaxExport = 100_000

// cachedTiles memoises tile reads during one export.
type cachedTiles struct {
	r     tlog.TileReader
	cache map[tlog.Tile][]byte
}

func (c *cachedTiles) ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	var miss []tlog.Tile
	for _, t := range tiles {
		if _, ok := c.cache[t]; !ok {
			miss = append(miss, t)
		}
	}
	if len(miss) > 0 {
		d, err := c.r.ReadTiles(ctx, miss)
		if err != nil {
			return nil, err
		}
		for i, t := range miss {
			c.cache[t] = d[i]
		}
	}
	for i, t := range tiles {
		out[i] = c.cache[t]
	}
	return out, nil
}

// Export returns the entries from <= index < to with inclusion proofs to
// the latest checkpoint.
func (l *Log) Export(ctx context.Context, from, to uint64) (*Bundle, error) {
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	size := cp.Checkpoint.Size
	switch {
	case to <= from:
		return nil, usererr.New(usererr.Invalid, "bad_range", "The range %d–%d is empty: --to must be larger than --from.", from, to)
	case to > size:
		return nil, usererr.New(usererr.Invalid, "beyond_log", "The latest checkpoint covers %d entries; --to may be at most %d.", size, size)
	case to-from > MaxExport:
		return nil, usererr.New(usererr.Invalid, "range_too_large", "A bundle holds at most %d entries; split the range %d–%d.", MaxExport, from, to)
	}
	b := &Bundle{Format: BundleFormat, Checkpoint: string(cp.Note)}
	hr := tlog.TileHashReader{Size: size, Tiles: &cachedTiles{r: l.store, cache: map[tlog.Tile][]byte{}}}
	for start := from; start < to; start += MaxRange {
		es, err := l.Entries(ctx, start, min(to, start+MaxRange))
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			p, err := tlog.InclusionProof(ctx, e.Index, size, hr)
			if err != nil {
				return nil, fmt.Errorf("audit: export: %w", err)
			}
			b.Entries = append(b.Entries, BundleEntry{Index: e.Index, Leaf: e.Leaf, Proof: p})
		}
	}
	return b, nil
}
