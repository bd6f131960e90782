package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// Report is the outcome of a successful [Log.Verify].
type Report struct {
	Checkpoint  tlog.Checkpoint
	Checkpoints int  // stored checkpoints checked
	Full        bool // every entry was re-hashed
	// Forks are the recorded epoch boundaries found (full only).
	Forks []tlog.VerifiedFork
}

// Verify checks the stored log against its own key: stored checkpoints'
// signatures (the newest 1000 unless full), that checkpoints never shrink or fork, that the
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
	// A quick check looks at the newest 1000 checkpoints (about three hours
	// at the default cadence); a full one at all of them.
	after := int64(0)
	if !full {
		latest, err := l.store.LatestCheckpoint(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Report{}, err
		}
		after = max(0, latest.ID-1000)
	}
	for {
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
	if last == nil {
		return Report{}, errors.New("the log has no checkpoint yet")
	}
	rep := Report{Checkpoint: *last, Checkpoints: len(history), Full: full}
	if !full {
		return rep, nil
	}
	// One query per page serves both the leaves and the openings; the
	// openings wait in a map until the leaf's turn comes.
	var mu sync.Mutex
	openings := map[uint64][]PersonalField{}
	missing := map[uint64]bool{}
	reader := leafReaderFunc(func(ctx context.Context, start, end uint64) ([][]byte, error) {
		es, err := l.store.Entries(ctx, start, end)
		if err != nil {
			return nil, err
		}
		leaves := make([][]byte, 0, len(es))
		page := map[uint64][]PersonalField{}
		for k, e := range es {
			if e.Index != start+uint64(k) {
				break // a gap: the verifier reports the missing index
			}
			leaf, err := e.Leaf()
			if err != nil {
				return nil, &VerifyError{Index: e.Index, Reason: err.Error()}
			}
			leaves = append(leaves, leaf)
			ps, err := e.Openings()
			if err != nil {
				return nil, &VerifyError{Index: e.Index, Reason: err.Error()}
			}
			page[e.Index] = ps
		}
		mu.Lock()
		maps.Copy(openings, page)
		mu.Unlock()
		return leaves, nil
	})
	check := func(i uint64, _ []byte, f tlog.LeafFields) error {
		mu.Lock()
		got := openings[i]
		delete(openings, i)
		mu.Unlock()
		if len(got) == 0 {
			if !bytes.Equal(f.Personal, []byte("{}")) {
				missing[i] = true
			}
			return nil
		}
		var commits map[string]string
		if err := json.Unmarshal(f.Personal, &commits); err != nil {
			return &VerifyError{Index: i, Reason: "leaf personal commitments are not a JSON object"}
		}
		for _, p := range got {
			c, ok := commits[p.Name]
			if !ok || c != hex.EncodeToString(Commitment(p)) {
				return &VerifyError{Index: i, Reason: fmt.Sprintf("personal field %q does not match its commitment in the entry", p.Name)}
			}
		}
		if len(got) != len(commits) {
			return &VerifyError{Index: i, Reason: "some personal fields are missing although the entry was not redacted"}
		}
		return nil
	}
	res, err := tlog.VerifyEntries(ctx, *last, reader, VerifyOptions{Tiles: l.store, History: history, Readers: 2, Check: check, LogKey: l.verifier})
	if err != nil {
		return rep, err
	}
	rep.Forks = res.Forks
	var bad []uint64
	for i := range missing {
		if !res.Redacted[i] {
			bad = append(bad, i)
		}
	}
	if len(bad) > 0 {
		sort.Slice(bad, func(a, b int) bool { return bad[a] < bad[b] })
		return rep, &VerifyError{Index: bad[0], Reason: "personal data was deleted without a redaction entry"}
	}
	return rep, nil
}

type leafReaderFunc func(ctx context.Context, start, end uint64) ([][]byte, error)

func (f leafReaderFunc) Leaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	return f(ctx, start, end)
}
