package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// BundleFormat names the export bundle layout.
const BundleFormat = "interlock.log-bundle/v1"

// MaxExport is the most entries one bundle holds.
const MaxExport = 100_000

// Bundle is an offline-verifiable slice of the log: entries, each with an
// inclusion proof, and the signed checkpoint the proofs lead to.
type Bundle struct {
	Format string `json:"format"`
	// Checkpoint is the signed note (with any witness cosignatures).
	Checkpoint string        `json:"checkpoint"`
	Entries    []BundleEntry `json:"entries"`
}

// BundleEntry is one entry of a bundle. Personal openings are never
// exported; the leaf carries only their commitments.
type BundleEntry struct {
	Index uint64   `json:"index"`
	Leaf  []byte   `json:"leaf"`
	Proof [][]byte `json:"inclusion_proof"`
}

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

// BundleReport says what a verified bundle proved.
type BundleReport struct {
	Checkpoint tlog.Checkpoint
	Entries    int
}

// VerifyBundle checks a bundle offline with only the log's public key:
// the checkpoint's signature, then every entry's form and inclusion proof.
// A *[VerifyError] names the first bad entry.
func VerifyBundle(data []byte, vkey string) (BundleReport, error) {
	v, err := tlog.NewVerifier(vkey)
	if err != nil {
		return BundleReport{}, fmt.Errorf("log key: %v", err)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return BundleReport{}, fmt.Errorf("bundle is not valid JSON: %v", err)
	}
	if b.Format != BundleFormat {
		return BundleReport{}, fmt.Errorf("bundle format %q is not %q", b.Format, BundleFormat)
	}
	cp, _, err := tlog.OpenCheckpoint([]byte(b.Checkpoint), v)
	if err != nil {
		return BundleReport{}, err
	}
	for k, e := range b.Entries {
		if k > 0 && e.Index <= b.Entries[k-1].Index {
			return BundleReport{}, &VerifyError{Index: e.Index, Reason: "entries are not in increasing index order"}
		}
		if _, err := ParseLeaf(e.Leaf); err != nil {
			return BundleReport{}, &VerifyError{Index: e.Index, Reason: err.Error()}
		}
		if err := tlog.VerifyInclusion(e.Index, cp.Size, tlog.LeafHash(e.Leaf), e.Proof, cp.Hash); err != nil {
			return BundleReport{}, &VerifyError{Index: e.Index, Reason: "inclusion proof does not lead to the signed checkpoint: " + err.Error()}
		}
	}
	return BundleReport{Checkpoint: cp, Entries: len(b.Entries)}, nil
}
