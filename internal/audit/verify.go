package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// VerifyError names the first entry at which verification failed.
type VerifyError struct {
	Index  uint64
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("log entry %d: %s", e.Index, e.Reason) }

// LeafReader reads canonical leaves by index. Leaves MAY return fewer
// than end-start leaves (a short page); it returns none past the end of
// what it has.
type LeafReader interface {
	Leaves(ctx context.Context, start, end uint64) ([][]byte, error)
}

// VerifyOptions refine [VerifyEntries].
type VerifyOptions struct {
	// Tiles, if set, are the log's stored hash tiles. They are not trusted
	// (the signed root is), but comparing each leaf hash with them names
	// the exact entry that was changed, removed or moved.
	Tiles tlog.TileReader
	// History holds earlier checkpoints (already signature-verified), in
	// any order; a prefix whose root differs from one names the range of
	// entries that was rewritten together with the tree.
	History []tlog.Checkpoint
	// Openings, if set, returns the personal openings stored for a page of
	// entries (keyed by index); each is checked against its commitment,
	// and missing ones must have been redacted by a later entry.
	Openings func(ctx context.Context, start, end uint64) (map[uint64][]PersonalField, error)

	// readers > 1 reads fixed pages concurrently (store-backed readers,
	// which never return short pages except at a gap).
	readers int
}

// readFixedPages reads pages [k·pageSize, (k+1)·pageSize) with n workers
// and delivers them in order. A page shorter than asked ends the stream
// (the consumer reports the missing index).
func readFixedPages(ctx context.Context, size uint64, read pageFunc, n int, out chan<- leafPage) {
	defer close(out)
	type slot struct{ ch chan leafPage }
	slots := make(chan slot, n)
	go func() {
		defer close(slots)
		for start := uint64(0); start < size; start += pageSize {
			s := slot{ch: make(chan leafPage, 1)}
			select {
			case slots <- s:
			case <-ctx.Done():
				return
			}
			go func(start uint64) {
				end := min(size, start+pageSize)
				leaves, openings, err := read(ctx, start, end)
				s.ch <- leafPage{start: start, leaves: leaves, openings: openings, err: err}
			}(start)
		}
	}()
	for s := range slots {
		var pg leafPage
		select {
		case pg = <-s.ch:
		case <-ctx.Done():
			return
		}
		select {
		case out <- pg:
		case <-ctx.Done():
			return
		}
		if pg.err != nil || uint64(len(pg.leaves)) < min(size, pg.start+pageSize)-pg.start {
			return
		}
	}
}

// pageSize is how many leaves VerifyEntries asks for at a time.
const pageSize = MaxRange

type leafPage struct {
	start    uint64
	leaves   [][]byte
	openings map[uint64][]PersonalField
	err      error
}

type pageFunc func(ctx context.Context, start, end uint64) ([][]byte, map[uint64][]PersonalField, error)

// verifyLeaf is the part of a leaf verification looks at.
type verifyLeaf struct {
	Format    string          `json:"format"`
	Kind      string          `json:"kind"`
	Actor     string          `json:"actor"`
	ActorSeq  uint64          `json:"actor_seq"`
	ActorPrev string          `json:"actor_prev"`
	Data      json.RawMessage `json:"data"`
	Personal  json.RawMessage `json:"personal"`
}

// VerifyEntries re-derives the tree of cp from every leaf and checks it
// against cp's root (cp MUST already be signature-verified), and checks
// each leaf's form and its actor's chain. It returns a *[VerifyError]
// naming the first bad index.
func VerifyEntries(ctx context.Context, cp tlog.Checkpoint, r LeafReader, opt VerifyOptions) error {
	return verifyPages(ctx, cp, func(ctx context.Context, start, end uint64) ([][]byte, map[uint64][]PersonalField, error) {
		leaves, err := r.Leaves(ctx, start, end)
		if err != nil || opt.Openings == nil || len(leaves) == 0 {
			return leaves, nil, err
		}
		op, err := opt.Openings(ctx, start, start+uint64(len(leaves)))
		return leaves, op, err
	}, opt)
}

func verifyPages(ctx context.Context, cp tlog.Checkpoint, read pageFunc, opt VerifyOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan leafPage, 2)
	if opt.readers > 1 {
		go readFixedPages(ctx, cp.Size, read, opt.readers, pages)
	} else {
		// Read ahead on another goroutine: storage and hashing overlap.
		go func() {
			defer close(pages)
			for start := uint64(0); start < cp.Size; {
				end := min(cp.Size, start+pageSize)
				leaves, openings, err := read(ctx, start, end)
				select {
				case pages <- leafPage{start: start, leaves: leaves, openings: openings, err: err}:
				case <-ctx.Done():
					return
				}
				if err != nil || len(leaves) == 0 {
					return
				}
				start += uint64(len(leaves))
			}
		}()
	}

	rng, _ := tlog.NewRange(0, nil)
	type tail struct {
		seq  uint64
		hash []byte
	}
	actors := map[string]tail{}
	history := append([]tlog.Checkpoint(nil), opt.History...)
	sort.Slice(history, func(i, j int) bool { return history[i].Size < history[j].Size })
	lastGood := uint64(0)
	missingOpenings := map[uint64]bool{}
	redacted := map[uint64]bool{}
	var tileData []byte // current level-0 tile
	tileIndex := ^uint64(0)
	checkOpenings := opt.Openings != nil
	for pg := range pages {
		start := pg.start
		if pg.err != nil {
			var ve *VerifyError
			if errors.As(pg.err, &ve) {
				return ve
			}
			return fmt.Errorf("read entries from %d: %w", start, pg.err)
		}
		if len(pg.leaves) == 0 || start != rng.Size() {
			return &VerifyError{Index: rng.Size(), Reason: fmt.Sprintf("entry is missing: the signed checkpoint covers %d entries", cp.Size)}
		}
		if pg.openings != nil {
			checkOpenings = true
		}
		for k, leaf := range pg.leaves {
			i := start + uint64(k)
			l, err := parseVerifyLeaf(leaf)
			if err != nil || l.Format != LeafFormatV1 {
				return &VerifyError{Index: i, Reason: fmt.Sprintf("leaf is not a valid %s entry", LeafFormatV1)}
			}
			h := tlog.LeafHash(leaf)
			if opt.Tiles != nil {
				if ti := i / tlog.TileWidth; ti != tileIndex {
					t := tlog.TileAt(0, ti, cp.Size)
					d, err := opt.Tiles.ReadTiles(ctx, []tlog.Tile{t})
					if err != nil || len(d) != 1 || len(d[0]) != t.Width*tlog.HashSize {
						return &VerifyError{Index: i, Reason: fmt.Sprintf("the stored tree has no hash for this entry (tile %s: %v)", t.Path(), err)}
					}
					tileData, tileIndex = d[0], ti
				}
				off := (i % tlog.TileWidth) * tlog.HashSize
				if !bytes.Equal(tileData[off:off+tlog.HashSize], h) {
					return &VerifyError{Index: i, Reason: "entry does not match the hash the tree holds for it: the entry was altered, moved or replaced, or the tree state was"}
				}
			}
			prev := actors[l.Actor]
			wantPrev := ""
			if prev.hash != nil {
				wantPrev = hex.EncodeToString(prev.hash)
			}
			if l.ActorSeq != prev.seq+1 || l.ActorPrev != wantPrev {
				return &VerifyError{Index: i, Reason: fmt.Sprintf("actor %q's chain is broken: entry has sequence %d after %d, or does not name the actor's previous entry", l.Actor, l.ActorSeq, prev.seq)}
			}
			actors[l.Actor] = tail{seq: l.ActorSeq, hash: h}
			if l.Kind == KindRedacted {
				var d struct {
					Index *uint64 `json:"index"`
				}
				if json.Unmarshal(l.Data, &d) == nil && d.Index != nil && *d.Index < i {
					redacted[*d.Index] = true
				}
			}
			if checkOpenings {
				got := pg.openings[i]
				if len(got) == 0 && !bytes.Equal(l.Personal, []byte("{}")) {
					missingOpenings[i] = true
				}
				if len(got) > 0 {
					var commits map[string]string
					if err := json.Unmarshal(l.Personal, &commits); err != nil {
						return &VerifyError{Index: i, Reason: "leaf personal commitments are not a JSON object"}
					}
					for _, f := range got {
						c, ok := commits[f.Name]
						if !ok || c != hex.EncodeToString(Commitment(f)) {
							return &VerifyError{Index: i, Reason: fmt.Sprintf("personal field %q does not match its commitment in the entry", f.Name)}
						}
					}
					if len(got) != len(commits) {
						return &VerifyError{Index: i, Reason: "some personal fields are missing although the entry was not redacted"}
					}
				}
			}
			if err := rng.Append(h, nil); err != nil {
				return err
			}
			for len(history) > 0 && history[0].Size <= rng.Size() {
				hc := history[0]
				history = history[1:]
				if hc.Size == rng.Size() {
					if !bytes.Equal(rng.Root(), hc.Hash) {
						return &VerifyError{Index: lastGood, Reason: fmt.Sprintf("entries %d to %d do not match the signed checkpoint of size %d: they were rewritten together with the tree", lastGood, hc.Size-1, hc.Size)}
					}
					lastGood = hc.Size
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if rng.Size() != cp.Size {
		return &VerifyError{Index: rng.Size(), Reason: "entry is missing"}
	}
	if !bytes.Equal(rng.Root(), cp.Hash) {
		return &VerifyError{Index: lastGood, Reason: fmt.Sprintf("the entries from %d on do not hash to the signed root of size %d: they were rewritten together with the tree", lastGood, cp.Size)}
	}
	var bad []uint64
	for i := range missingOpenings {
		if !redacted[i] {
			bad = append(bad, i)
		}
	}
	if len(bad) > 0 {
		sort.Slice(bad, func(a, b int) bool { return bad[a] < bad[b] })
		return &VerifyError{Index: bad[0], Reason: "personal data was deleted without a redaction entry"}
	}
	return nil
}

// Report is the outcome of a successful [Log.Verify].
type Report struct {
	Checkpoint  tlog.Checkpoint
	Checkpoints int  // stored checkpoints checked
	Full        bool // every entry was re-hashed
}

// Verify checks the stored log against its own key: every stored
// checkpoint's signature, that checkpoints never shrink or fork, that the
// stored tiles reproduce each checkpoint's root, and with full every
// entry (form, actor chains, personal openings, root). A *[VerifyError]
// names the first bad index.
func (l *Log) Verify(ctx context.Context, full bool) (Report, error) {
	if err := l.loadKey(ctx); err != nil {
		return Report{}, err
	}
	st, err := l.store.TreeState(ctx)
	if err != nil {
		return Report{}, err
	}
	var history []tlog.Checkpoint
	var last *tlog.Checkpoint
	tiles := tlog.TileHashReader{Size: st.Size, Tiles: l.store}
	for after := int64(0); ; {
		cps, err := l.store.CheckpointsSince(ctx, after, 1000)
		if err != nil {
			return Report{}, err
		}
		if len(cps) == 0 {
			break
		}
		for _, sc := range cps {
			after = sc.ID
			c, _, err := tlog.OpenCheckpoint(sc.Note, l.verifier)
			if err != nil {
				return Report{}, fmt.Errorf("stored checkpoint %d: %w", sc.ID, err)
			}
			if last != nil {
				if err := tlog.CheckExtension(last, c, nil); err != nil && c.Size <= last.Size {
					return Report{}, fmt.Errorf("stored checkpoint %d: %w", sc.ID, err)
				}
			}
			if c.Size > st.Size {
				return Report{}, &VerifyError{Index: st.Size, Reason: fmt.Sprintf("entry is missing: checkpoint %d signed %d entries but the tree holds %d", sc.ID, c.Size, st.Size)}
			}
			if !full {
				root, err := tlog.RootHash(ctx, c.Size, tlog.TileHashReader{Size: c.Size, Tiles: l.store})
				if err != nil || !bytes.Equal(root, c.Hash) {
					return Report{}, fmt.Errorf("the stored tree does not reproduce the signed root of size %d (checkpoint %d): %v", c.Size, sc.ID, err)
				}
			}
			cc := c
			last = &cc
			history = append(history, c)
		}
	}
	_ = tiles
	if last == nil {
		return Report{}, errors.New("the log has no checkpoint yet")
	}
	rep := Report{Checkpoint: *last, Checkpoints: len(history), Full: full}
	if !full {
		return rep, nil
	}
	err = verifyPages(ctx, *last, storePages(l.store), VerifyOptions{Tiles: l.store, History: history, readers: 2})
	return rep, err
}

// storePages reads leaves and openings in one query per page. A gap in
// the indexes ends the page, so the next page reports the missing index.
func storePages(s Store) pageFunc {
	return func(ctx context.Context, start, end uint64) ([][]byte, map[uint64][]PersonalField, error) {
		es, err := s.Entries(ctx, start, end)
		if err != nil {
			return nil, nil, err
		}
		leaves := make([][]byte, 0, len(es))
		openings := map[uint64][]PersonalField{}
		for k, e := range es {
			if e.Index != start+uint64(k) {
				break
			}
			leaf, err := e.Leaf()
			if err != nil {
				return nil, nil, &VerifyError{Index: e.Index, Reason: err.Error()}
			}
			leaves = append(leaves, leaf)
			if e.PersonalJSON != nil || e.SaltsJSON != nil {
				ps, err := e.Openings()
				if err != nil {
					return nil, nil, &VerifyError{Index: e.Index, Reason: err.Error()}
				}
				openings[e.Index] = ps
			}
		}
		return leaves, openings, nil
	}
}
