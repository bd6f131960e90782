package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// MaxRange is the most entries one Entries call returns.
const MaxRange = 1000

// LogEntry is an integrated entry as readers see it.
type LogEntry struct {
	Index uint64
	// Leaf is the canonical leaf; its RFC 6962 leaf hash is in the tree.
	Leaf []byte
	// Personal holds the openings of personal fields not yet redacted.
	// Callers MUST only show them to readers allowed to see personal data.
	Personal []PersonalField
}

// SignedCheckpoint is the latest checkpoint: the signed note with the
// stored witness cosignatures appended, and its parsed body.
type SignedCheckpoint struct {
	Note       []byte
	Checkpoint tlog.Checkpoint
}

// Checkpoint returns the latest signed checkpoint with its cosignatures.
//
// While the log refuses because its database is behind or beside the
// signer's memory, the latest signed checkpoint is the one the signer
// remembers, not the database's: readers then see that entries are
// missing instead of a shorter log that looks whole.
func (l *Log) Checkpoint(ctx context.Context) (SignedCheckpoint, error) {
	if r := l.refusal.Load(); r != nil && r.Forkable {
		if rem, signed := l.rememberedCheckpoint(); rem != nil {
			return SignedCheckpoint{Note: signed, Checkpoint: *rem}, nil
		}
	}
	c, err := l.store.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNotFound) {
		return SignedCheckpoint{}, usererr.New(usererr.NotFound, "no_checkpoint", "The log has not published a checkpoint yet; try again in a few seconds.")
	}
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	body, err := tlog.ParseCheckpoint(noteText(c.Note))
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("audit: stored checkpoint %d: %w", c.ID, err)
	}
	lines, err := l.store.Cosignatures(ctx, c.ID)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("audit: cosignatures of checkpoint %d: %w", c.ID, err)
	}
	signed := c.Note
	for _, line := range lines {
		signed = append(append([]byte(nil), signed...), line...)
	}
	return SignedCheckpoint{Note: signed, Checkpoint: body}, nil
}

// noteText returns the text part of a signed note (through the blank line).
func noteText(n []byte) []byte {
	for i := 0; i+1 < len(n); i++ {
		if n[i] == '\n' && n[i+1] == '\n' {
			return n[:i+1]
		}
	}
	return n
}

// IntegratedSize is the number of integrated entries, which may be ahead
// of the latest checkpoint by the entries of the last few seconds.
func (l *Log) IntegratedSize(ctx context.Context) (uint64, error) { return l.size(ctx) }

func (l *Log) size(ctx context.Context) (uint64, error) {
	st, err := l.store.TreeState(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: tree state: %w", err)
	}
	return st.Size, nil
}

// Entries returns the integrated entries with start <= index < end; at
// most MaxRange of them.
func (l *Log) Entries(ctx context.Context, start, end uint64) ([]LogEntry, error) {
	size, err := l.size(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case end <= start:
		return nil, usererr.New(usererr.Invalid, "bad_range", "The range %d–%d is empty: the end must be larger than the start.", start, end)
	case end-start > MaxRange:
		return nil, usererr.New(usererr.Invalid, "range_too_large", "The range %d–%d asks for %d entries; ask for at most %d at a time.", start, end, end-start, MaxRange)
	case start >= size:
		return nil, usererr.New(usererr.NotFound, "beyond_log", "The log has %d entries, so there is no entry %d yet.", size, start)
	}
	end = min(end, size)
	es, err := l.store.Entries(ctx, start, end)
	if err != nil {
		return nil, fmt.Errorf("audit: entries %d–%d: %w", start, end, err)
	}
	out := make([]LogEntry, 0, len(es))
	for _, e := range es {
		leaf, err := e.Leaf()
		if err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", e.Index, err)
		}
		ps, err := e.Openings()
		if err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", e.Index, err)
		}
		out = append(out, LogEntry{Index: e.Index, Leaf: leaf, Personal: ps})
	}
	return out, nil
}

// InclusionProof proves that entry index is in the tree of the given size
// (size ≤ the integrated tree; use a checkpoint's size).
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	cur, err := l.size(ctx)
	if err != nil {
		return nil, err
	}
	if size > cur {
		return nil, usererr.New(usererr.Invalid, "beyond_log", "The tree has %d entries; there is no tree of size %d to prove against.", cur, size)
	}
	if index >= size {
		return nil, usererr.New(usererr.Invalid, "bad_index", "Entry %d is not in a tree of %d entries; the index must be below the size.", index, size)
	}
	return tlog.InclusionProof(ctx, index, size, tlog.TileHashReader{Size: size, Tiles: l.store})
}

// ConsistencyProof proves that the tree of size1 is a prefix of the tree
// of size2.
func (l *Log) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	cur, err := l.size(ctx)
	if err != nil {
		return nil, err
	}
	if size2 > cur {
		return nil, usererr.New(usererr.Invalid, "beyond_log", "The tree has %d entries; there is no tree of size %d to prove against.", cur, size2)
	}
	if size1 > size2 {
		return nil, usererr.New(usererr.Invalid, "bad_range", "A consistency proof goes from a smaller tree to a larger one; %d is larger than %d.", size1, size2)
	}
	return tlog.ConsistencyProof(ctx, size1, size2, tlog.TileHashReader{Size: size2, Tiles: l.store})
}

// Tile returns the data of a C2SP tlog-tiles hash tile. A partial tile is
// served only at a width that exists, a full tile only once it is full.
func (l *Log) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	size, err := l.size(ctx)
	if err != nil {
		return nil, err
	}
	if cur := tlog.TileAt(t.Level, t.Index, size); cur.Width < t.Width {
		return nil, usererr.New(usererr.NotFound, "no_tile", "Tile %s does not exist in the tree of %d entries.", t.Path(), size)
	}
	d, err := l.store.ReadTiles(ctx, []tlog.Tile{t})
	if err != nil {
		return nil, fmt.Errorf("audit: tile %s: %w", t.Path(), err)
	}
	return d[0], nil
}

// EntryBundle returns a C2SP tlog-tiles entry bundle: the leaves of tile
// (0, index) up to width, each prefixed by its big-endian 16-bit length.
func (l *Log) EntryBundle(ctx context.Context, index uint64, width int) ([]byte, error) {
	size, err := l.size(ctx)
	if err != nil {
		return nil, err
	}
	if cur := tlog.TileAt(0, index, size); cur.Width < width {
		return nil, usererr.New(usererr.NotFound, "no_tile", "Entry bundle %s does not exist in the tree of %d entries.", tlog.Tile{Index: index, Width: width}.EntriesPath(), size)
	}
	start := index * tlog.TileWidth
	es, err := l.store.Entries(ctx, start, start+uint64(width))
	if err != nil {
		return nil, fmt.Errorf("audit: entry bundle %d: %w", index, err)
	}
	if len(es) != width {
		return nil, fmt.Errorf("audit: entry bundle %d: %d of %d entries stored", index, len(es), width)
	}
	var out []byte
	for _, e := range es {
		leaf, err := e.Leaf()
		if err != nil {
			return nil, fmt.Errorf("audit: entry %d: %w", e.Index, err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(leaf)))
		out = append(out, leaf...)
	}
	return out, nil
}

// AddCosignature verifies a witness's cosignature line on the latest
// checkpoint and stores it beside the checkpoint.
func (l *Log) AddCosignature(ctx context.Context, cosigned []byte) error {
	if err := l.loadKey(ctx); err != nil {
		return err
	}
	c, err := l.store.LatestCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	if len(l.witnesses) == 0 {
		return usererr.New(usererr.Forbidden, "no_witnesses", "This log is not configured with any witness keys, so it does not store cosignatures.")
	}
	_, n, err := tlog.OpenCheckpoint(cosigned, l.verifier, l.witnesses...)
	if err != nil {
		return usererr.Wrap(err, usererr.Invalid, "bad_cosignature", "The cosigned checkpoint does not verify: %v.", err)
	}
	// The witness may have cosigned a checkpoint that was superseded while
	// it worked (one is published every few seconds): look a little back.
	recent, err := l.store.CheckpointsSince(ctx, max(0, c.ID-100), 101)
	if err != nil {
		return fmt.Errorf("audit: recent checkpoints: %w", err)
	}
	found := false
	for _, rc := range recent {
		if string(noteText(rc.Note)) == n.Text {
			c, found = rc, true
		}
	}
	if !found {
		return usererr.New(usererr.Conflict, "stale_checkpoint", "The cosigned checkpoint is not one of the log's recent checkpoints; fetch the latest checkpoint and cosign it.")
	}
	lines := sigLines(cosigned)
	stored := 0
	for _, s := range n.Sigs {
		for _, w := range l.witnesses {
			if s.Name == w.Name() && s.Hash == w.KeyHash() {
				for _, line := range lines {
					if line == "— "+s.Name+" "+s.Base64+"\n" {
						if err := l.store.AddCosignature(ctx, c.ID, s.Name, line); err != nil {
							return fmt.Errorf("audit: store cosignature: %w", err)
						}
						stored++
					}
				}
			}
		}
	}
	if stored == 0 {
		return usererr.New(usererr.Invalid, "no_cosignature", "The checkpoint carries no cosignature from a witness this log knows.")
	}
	return nil
}

func sigLines(signed []byte) []string {
	var lines []string
	s := string(signed)
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		if i < len(s) {
			i++
		}
		lines = append(lines, s[:i])
		s = s[i:]
	}
	return lines
}
