package tlog

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"
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
	Tiles TileReader
	// History holds earlier checkpoints (already signature-verified), in
	// any order; a prefix whose root differs from one names the range of
	// entries that was rewritten together with the tree.
	History []Checkpoint
	// Check, if set, runs for every leaf after the built-in checks; its
	// error (a *VerifyError or not) stops verification.
	Check func(index uint64, leaf []byte, f LeafFields) error
	// Readers > 1 reads pages of 1000 concurrently. Only for readers that
	// return short pages at a gap and nowhere else (a database).
	Readers int
	// LogKey, if set, verifies the previous checkpoint that each fork
	// entry names (see epoch.go).
	LogKey note.Verifier
	// TimeSkew is how far an entry's time may go back; zero means
	// [DefaultTimeSkew].
	TimeSkew time.Duration
	// MaxFuture is how far an entry's time may lie after the signed
	// checkpoint's; zero means [DefaultMaxFuture].
	MaxFuture time.Duration
}

// VerifyResult is what a successful [VerifyEntries] learnt on the way.
type VerifyResult struct {
	// Redacted holds the indexes named by redaction entries.
	Redacted map[uint64]bool
	// Forks are the recorded forks (epoch boundaries), in index order.
	Forks []VerifiedFork
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
				leaves, err := read(ctx, start, end)
				s.ch <- leafPage{start: start, leaves: leaves, err: err}
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
const pageSize = 1000

type leafPage struct {
	start  uint64
	leaves [][]byte
	err    error
}

type pageFunc func(ctx context.Context, start, end uint64) ([][]byte, error)

// VerifyEntries re-derives the tree of cp from every leaf and checks it
// against cp's root (cp MUST already be signature-verified), and checks
// each leaf's form and its actor's chain. It returns a *[VerifyError]
// naming the first bad index.
func VerifyEntries(ctx context.Context, cp Checkpoint, r LeafReader, opt VerifyOptions) (VerifyResult, error) {
	return verifyPages(ctx, cp, func(ctx context.Context, start, end uint64) ([][]byte, error) {
		return r.Leaves(ctx, start, end)
	}, opt)
}

func verifyPages(ctx context.Context, cp Checkpoint, read pageFunc, opt VerifyOptions) (VerifyResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan leafPage, 2)
	if opt.Readers > 1 {
		go readFixedPages(ctx, cp.Size, read, opt.Readers, pages)
	} else {
		// Read ahead on another goroutine: storage and hashing overlap.
		go func() {
			defer close(pages)
			for start := uint64(0); start < cp.Size; {
				end := min(cp.Size, start+pageSize)
				leaves, err := read(ctx, start, end)
				select {
				case pages <- leafPage{start: start, leaves: leaves, err: err}:
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

	rng, _ := NewRange(0, nil)
	type tail struct {
		seq  uint64
		hash []byte
	}
	actors := map[string]tail{}
	history := append([]Checkpoint(nil), opt.History...)
	sort.Slice(history, func(i, j int) bool { return history[i].Size < history[j].Size })
	lastGood := uint64(0)
	redacted := map[uint64]bool{}
	epochs := forkState{epoch: 1}
	order := timeOrder{skew: opt.TimeSkew}
	if order.skew <= 0 {
		order.skew = DefaultTimeSkew
	}
	maxFuture := opt.MaxFuture
	if maxFuture <= 0 {
		maxFuture = DefaultMaxFuture
	}
	var tileData []byte // current level-0 tile
	tileIndex := ^uint64(0)
	for pg := range pages {
		start := pg.start
		if pg.err != nil {
			var ve *VerifyError
			if errors.As(pg.err, &ve) {
				return VerifyResult{}, ve
			}
			return VerifyResult{}, fmt.Errorf("read entries from %d: %w", start, pg.err)
		}
		if len(pg.leaves) == 0 || start != rng.Size() {
			return VerifyResult{}, &VerifyError{Index: rng.Size(), Reason: fmt.Sprintf("entry is missing: the signed checkpoint covers %d entries", cp.Size)}
		}
		for k, leaf := range pg.leaves {
			i := start + uint64(k)
			l, err := parseVerifyLeaf(leaf)
			if err != nil || l.Format != LeafFormatV1 {
				return VerifyResult{}, &VerifyError{Index: i, Reason: fmt.Sprintf("leaf is not a valid %s entry", LeafFormatV1)}
			}
			h := LeafHash(leaf)
			if opt.Tiles != nil {
				if ti := i / TileWidth; ti != tileIndex {
					t := TileAt(0, ti, cp.Size)
					d, err := opt.Tiles.ReadTiles(ctx, []Tile{t})
					if err != nil || len(d) != 1 || len(d[0]) != t.Width*HashSize {
						return VerifyResult{}, &VerifyError{Index: i, Reason: fmt.Sprintf("the stored tree has no hash for this entry (tile %s: %v)", t.Path(), err)}
					}
					tileData, tileIndex = d[0], ti
				}
				off := (i % TileWidth) * HashSize
				if !bytes.Equal(tileData[off:off+HashSize], h) {
					return VerifyResult{}, &VerifyError{Index: i, Reason: "entry does not match the hash the tree holds for it: the entry was altered, moved or replaced, or the tree state was"}
				}
			}
			prev := actors[l.Actor]
			wantPrev := ""
			if prev.hash != nil {
				wantPrev = hex.EncodeToString(prev.hash)
			}
			if l.ActorSeq != prev.seq+1 || l.ActorPrev != wantPrev {
				return VerifyResult{}, &VerifyError{Index: i, Reason: fmt.Sprintf("actor %q's chain is broken: entry has sequence %d after %d, or does not name the actor's previous entry", l.Actor, l.ActorSeq, prev.seq)}
			}
			actors[l.Actor] = tail{seq: l.ActorSeq, hash: h}
			if err := order.check(i, l.Time); err != nil {
				return VerifyResult{}, err
			}
			if !cp.Time.IsZero() && l.Time > cp.Time.UnixNano()+int64(maxFuture) {
				// An entry from after the checkpoint that covers it was not
				// appended by a server with a correct clock; sequenced, it
				// made every entry after it look out of order.
				return VerifyResult{}, &VerifyError{Index: i, Reason: fmt.Sprintf("entry is dated %s, %s after the signed checkpoint that covers it (%s; at most %s is allowed): it was put in with a wrong date",
					time.Unix(0, l.Time).UTC().Format(time.RFC3339), time.Duration(l.Time-cp.Time.UnixNano()).Round(time.Second), cp.Time.UTC().Format(time.RFC3339), maxFuture)}
			}
			if l.Kind == KindForked {
				root := EmptyRoot()
				if rng.Size() > 0 {
					root = rng.Root()
				}
				if err := epochs.check(i, l, root, opt.LogKey); err != nil {
					return VerifyResult{}, err
				}
				order.afterFork(i, epochs.forks[len(epochs.forks)-1].Fork)
			} else {
				order.advance(i, l.Time)
			}
			if l.Kind == KindRedacted {
				var d struct {
					Index *uint64 `json:"index"`
				}
				if json.Unmarshal(l.Data, &d) == nil && d.Index != nil && *d.Index < i {
					redacted[*d.Index] = true
				}
			}
			if opt.Check != nil {
				if err := opt.Check(i, leaf, l); err != nil {
					return VerifyResult{}, err
				}
			}
			if err := rng.Append(h, nil); err != nil {
				return VerifyResult{}, err
			}
			for len(history) > 0 && history[0].Size <= rng.Size() {
				hc := history[0]
				history = history[1:]
				if hc.Size == rng.Size() {
					if !bytes.Equal(rng.Root(), hc.Hash) {
						return VerifyResult{}, &VerifyError{Index: lastGood, Reason: fmt.Sprintf("entries %d to %d do not match the signed checkpoint of size %d: they were rewritten together with the tree", lastGood, hc.Size-1, hc.Size)}
					}
					lastGood = hc.Size
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return VerifyResult{}, err
	}
	if rng.Size() != cp.Size {
		return VerifyResult{}, &VerifyError{Index: rng.Size(), Reason: "entry is missing"}
	}
	if !bytes.Equal(rng.Root(), cp.Hash) {
		return VerifyResult{}, &VerifyError{Index: lastGood, Reason: fmt.Sprintf("the entries from %d on do not hash to the signed root of size %d: they were rewritten together with the tree", lastGood, cp.Size)}
	}
	if err := epochs.checkEnd(cp); err != nil {
		return VerifyResult{}, err
	}
	return VerifyResult{Redacted: redacted, Forks: epochs.forks}, nil
}
