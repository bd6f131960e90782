package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// The signer's own memory.
//
// Everything else the log keeps — entries, tree state, tiles, the signed
// checkpoints — lives in the database, so whoever can write the database
// (or restore an old copy of it) could cut the log back to a consistent
// shorter state, and a signer that trusted the database would sign it.
// The signer therefore keeps the last checkpoint it signed outside the
// database ([Memory]; a file beside the root key in the data dir) and,
// before it signs, proves with a consistency proof computed from the
// store's hashes that the tree extends that checkpoint. When it does not,
// the log refuses: it signs nothing, integrates nothing, and reports a
// [RefusalError] until an admin records a fork ([Log.Fork]).

// Memory keeps the last checkpoint the signer signed, outside the database.
type Memory interface {
	// Load returns the remembered signed checkpoint, or nil if there is none.
	Load() ([]byte, error)
	// Save MUST replace the remembered checkpoint atomically and durably
	// before it returns: the checkpoint is published after it.
	Save(signed []byte) error
}

// FileMemory is a [Memory] in one file, replaced atomically (temp file,
// fsync, rename, fsync of the directory).
type FileMemory struct{ Path string }

// Load implements [Memory].
func (m FileMemory) Load() ([]byte, error) {
	b, err := os.ReadFile(m.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read signer state %s: %w", m.Path, err)
	}
	return b, nil
}

// Save implements [Memory].
func (m FileMemory) Save(signed []byte) error {
	dir := filepath.Dir(m.Path)
	f, err := os.CreateTemp(dir, filepath.Base(m.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write signer state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	if _, err := f.Write(signed); err != nil {
		f.Close()
		return fmt.Errorf("write signer state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync signer state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write signer state: %w", err)
	}
	if err := os.Rename(tmp, m.Path); err != nil {
		return fmt.Errorf("replace signer state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync signer state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync signer state directory: %w", err)
	}
	return nil
}

// processMemory is the Memory of a Log configured without one: it lasts
// as long as the process (tests, tools).
type processMemory struct {
	mu sync.Mutex
	b  []byte
}

func (m *processMemory) Load() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b, nil
}

func (m *processMemory) Save(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b = append([]byte(nil), b...)
	return nil
}

// RefusalError is why the log refuses to sign: a sentence for the
// operator, and whether a fork can resolve it.
type RefusalError struct {
	Sentence string
	// Forkable is true when the database is behind or beside the signer's
	// memory (a fork starts a new epoch), false for a pending entry out of
	// time order (a fork would not help).
	Forkable bool
}

func (e *RefusalError) Error() string { return e.Sentence }

// Refusal returns why the log refuses to sign, or "" when it signs.
func (l *Log) Refusal() string {
	if r := l.refusal.Load(); r != nil {
		return r.Sentence
	}
	return ""
}

func (l *Log) refuse(ctx context.Context, r *RefusalError) error {
	if l.refusal.Swap(r) == nil {
		l.log.ErrorContext(ctx, "the log refuses to sign", slog.String("reason", r.Sentence))
	}
	return r
}

// loadMemory reads the remembered checkpoint once and checks its
// signature with the log key.
func (l *Log) loadMemory(ctx context.Context) error {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	if l.memLoaded {
		return nil
	}
	b, err := l.memory.Load()
	if err != nil {
		return err
	}
	if b != nil {
		c, _, err := tlog.OpenCheckpoint(b, l.verifier)
		if err != nil {
			// The signer's own file does not verify with the key in the
			// database: the key or the file was replaced.
			return l.refuse(ctx, &RefusalError{Sentence: fmt.Sprintf(
				"the checkpoint this server remembers signing does not verify with the log key in the database (%v): the database's log key was replaced or the signer state file was damaged; restore them", err)})
		}
		l.remembered, l.rememberedNote = &c, b
	}
	l.memLoaded = true
	return nil
}

func (l *Log) rememberedCheckpoint() (*tlog.Checkpoint, []byte) {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	return l.remembered, l.rememberedNote
}

func (l *Log) remember(c tlog.Checkpoint, signed []byte) error {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	if err := l.memory.Save(signed); err != nil {
		return err
	}
	l.remembered, l.rememberedNote = &c, signed
	return nil
}

// checkMemory proves that the stored tree st extends the checkpoint the
// signer remembers; otherwise it makes the log refuse.
func (l *Log) checkMemory(ctx context.Context, tx SeqTx, st TreeState) error {
	if r := l.refusal.Load(); r != nil {
		return r
	}
	rem, _ := l.rememberedCheckpoint()
	if rem == nil {
		return nil
	}
	root := st.Root
	if st.Size == 0 {
		root = tlog.EmptyRoot()
	}
	// Another replica may have recorded a fork: a newer epoch's checkpoint,
	// signed with this log's key, that the stored tree reproduces,
	// supersedes what this replica remembers.
	if latest, err := tx.LatestCheckpoint(ctx); err == nil {
		if c, _, err := tlog.OpenCheckpoint(latest.Note, l.verifier); err == nil && tlog.EpochOf(c) > tlog.EpochOf(*rem) && c.Size <= st.Size {
			if h, err := tlog.RootHash(ctx, c.Size, tlog.TileHashReader{Size: st.Size, Tiles: tx}); err == nil && bytes.Equal(h, c.Hash) {
				// Only a fork of what this server signed: a fork made
				// elsewhere with the same key (a staging copy of an older
				// backup) must not drop entries this server signed.
				if err := l.checkForeignFork(ctx, tx, st, *rem, c); err != nil {
					return l.refuse(ctx, &RefusalError{Forkable: true, Sentence: fmt.Sprintf(
						"the database holds a checkpoint of epoch %d, signed with this log's key, that does not account for the checkpoint of %d entries this server signed at %s (%v); restore the newer database, or run `interlock log fork --reason …` to record the break",
						tlog.EpochOf(c), rem.Size, rem.Time.Local().Format(time.RFC1123), err)})
				}
				l.log.InfoContext(ctx, "adopting a newer log epoch recorded by another server", slog.Int("epoch", int(tlog.EpochOf(c))))
				if err := l.remember(c, latest.Note); err != nil {
					return err
				}
				rem = &c
			}
		}
	}
	when := rem.Time.Local().Format(time.RFC1123)
	fix := "restore the newer database, or run `interlock log fork --reason …` to start a new log epoch"
	switch {
	case st.Size < rem.Size:
		return l.refuse(ctx, &RefusalError{Forkable: true, Sentence: fmt.Sprintf(
			"the database holds %d entries but this server signed a checkpoint of %d at %s; %s", st.Size, rem.Size, when, fix)})
	case st.Size == rem.Size:
		if !bytes.Equal(root, rem.Hash) {
			return l.refuse(ctx, &RefusalError{Forkable: true, Sentence: fmt.Sprintf(
				"the database holds %d entries with root %x, but this server signed a different root (%x) for %d entries at %s: the database's history was rewritten; %s",
				st.Size, root, rem.Hash, rem.Size, when, fix)})
		}
		return nil
	}
	proof, err := tlog.ConsistencyProof(ctx, rem.Size, st.Size, tlog.TileHashReader{Size: st.Size, Tiles: tx})
	if err == nil {
		err = tlog.VerifyConsistency(rem.Size, st.Size, proof, rem.Hash, root)
	}
	if err != nil {
		return l.refuse(ctx, &RefusalError{Forkable: true, Sentence: fmt.Sprintf(
			"the database holds %d entries that do not extend the checkpoint of %d entries this server signed at %s (%v): the database's history was rewritten; %s",
			st.Size, rem.Size, when, err, fix)})
	}
	return nil
}

// checkForeignFork checks the fork entry that began c's epoch (at
// c.EpochStart in the stored tree st) against rem, the checkpoint this
// server remembers: c's epoch must follow rem's, and its fork must name a
// checkpoint that holds at least what rem holds.
func (l *Log) checkForeignFork(ctx context.Context, tx SeqTx, st TreeState, rem, c tlog.Checkpoint) error {
	if tlog.EpochOf(c) != tlog.EpochOf(rem)+1 {
		return fmt.Errorf("epoch %d does not follow this server's epoch %d", tlog.EpochOf(c), tlog.EpochOf(rem))
	}
	idx := c.EpochStart
	if idx >= c.Size {
		return fmt.Errorf("its fork entry %d is beyond it", idx)
	}
	es, err := l.store.Entries(ctx, idx, idx+1)
	if err != nil || len(es) != 1 {
		return fmt.Errorf("read its fork entry %d: %v", idx, err)
	}
	leaf, err := es[0].Leaf()
	if err != nil {
		return err
	}
	t := tlog.TileAt(0, idx/tlog.TileWidth, st.Size)
	d, err := tx.ReadTiles(ctx, []tlog.Tile{t})
	if off := (idx % tlog.TileWidth) * tlog.HashSize; err != nil || len(d) != 1 || uint64(len(d[0])) < off+tlog.HashSize || !bytes.Equal(d[0][off:off+tlog.HashSize], tlog.LeafHash(leaf)) {
		return fmt.Errorf("its fork entry %d is not the one the tree holds", idx)
	}
	if _, err := tlog.CheckForkEntry(rem, c, leaf, l.verifier); err != nil {
		return err
	}
	return nil
}

// treeEpoch is the epoch of the stored tree st: that of the newest
// stored checkpoint it reproduces (whose fork entries it therefore holds),
// or 1.
func (l *Log) treeEpoch(ctx context.Context, tx SeqTx, st TreeState) uint64 {
	latest, err := tx.LatestCheckpoint(ctx)
	if err != nil {
		return 1
	}
	c, _, err := tlog.OpenCheckpoint(latest.Note, l.verifier)
	if err != nil || c.Size > st.Size {
		return 1
	}
	if h, err := tlog.RootHash(ctx, c.Size, tlog.TileHashReader{Size: st.Size, Tiles: tx}); err != nil || !bytes.Equal(h, c.Hash) {
		return 1
	}
	return tlog.EpochOf(c)
}

// checkTimeOrder refuses a pending entry dated more than the allowed
// skew before the newest entry already in the log or earlier in the batch,
// or more than MaxFuture after the sequencer's own clock.
func (l *Log) checkTimeOrder(ctx context.Context, pending []StoredEntry) error {
	l.timeMu.Lock()
	defer l.timeMu.Unlock()
	latest, at, known := l.lastTime, fmt.Sprintf("entry %d", l.lastIndex), l.lastTimeKnown
	now := l.cfg.Now()
	if l.lastForkBaseline {
		at = fmt.Sprintf("the checkpoint the fork entry %d names", l.lastIndex)
	}
	for _, e := range pending {
		if e.Kind == tlog.KindForked {
			// Only Fork writes fork entries, integrating them at once; one
			// waiting in the table was put there by someone else.
			return l.refuse(ctx, &RefusalError{Sentence: fmt.Sprintf(
				"pending entry row %d is a %s entry that this log's signer did not write (forks are recorded only by `interlock log fork`); inspect it, delete it, and restart the server", e.ID, e.Kind)})
		}
		t := e.Time.UnixNano()
		if ahead := time.Duration(t - now.UnixNano()); ahead > l.cfg.MaxFuture {
			// Sequenced, it would make every genuine entry after it look
			// out of order until its date came: the log would refuse for
			// as long, and no fork could help. So it waits outside the log.
			return l.refuse(ctx, &RefusalError{Sentence: fmt.Sprintf(
				"pending entry row %d (%s by %s) is dated %s, %s in the future of this server's clock (%s; at most %s is allowed): it was not appended by a server with a plausible clock — it may have been put into the database by hand; inspect it, delete it if it is not genuine (or fix the clock of the server that wrote it), and restart the server",
				e.ID, e.Kind, e.Actor, e.Time.UTC().Format(time.RFC3339), ahead.Round(time.Second), now.UTC().Format(time.RFC3339), l.cfg.MaxFuture)})
		}
		if known && t < latest-int64(l.cfg.TimeSkew) && latest > now.UnixNano()+int64(l.cfg.TimeSkew) {
			// Not an old row: the log already holds an entry dated ahead of
			// this clock, so the clock was ahead then or is behind now.
			return l.refuse(ctx, &RefusalError{Sentence: fmt.Sprintf(
				"%s is dated %s, %s ahead of this server's clock (%s): the clock of the server that wrote it was ahead, or this server's clock went back; entries must be in time order (allowed skew %s), so pending entry row %d (%s by %s, dated %s) cannot follow it. Check the servers' clocks (NTP); entries dated before %s cannot be recorded after it, and a fork does not change that",
				at, time.Unix(0, latest).UTC().Format(time.RFC3339), time.Duration(latest-now.UnixNano()).Round(time.Second), now.UTC().Format(time.RFC3339),
				l.cfg.TimeSkew, e.ID, e.Kind, e.Actor, e.Time.UTC().Format(time.RFC3339), time.Unix(0, latest).Add(-l.cfg.TimeSkew).UTC().Format(time.RFC3339))})
		}
		if known && t < latest-int64(l.cfg.TimeSkew) {
			return l.refuse(ctx, &RefusalError{Sentence: fmt.Sprintf(
				"pending entry row %d (%s by %s) is dated %s, %s before %s (%s): entries are sequenced in time order (allowed skew %s), so this row was not appended in order — it may be an old entry copied back into the database; inspect it, delete it if it is not genuine, and restart the server",
				e.ID, e.Kind, e.Actor, e.Time.Format(time.RFC3339), time.Duration(latest-t).Round(time.Second), at,
				time.Unix(0, latest).UTC().Format(time.RFC3339), l.cfg.TimeSkew)})
		}
		if !known || t > latest {
			latest, at, known = t, fmt.Sprintf("pending entry row %d", e.ID), true
		}
	}
	return nil
}

// noteSequenced records the newest entry time after a batch commits.
func (l *Log) noteSequenced(es []StoredEntry) {
	l.timeMu.Lock()
	defer l.timeMu.Unlock()
	for _, e := range es {
		if e.Kind == tlog.KindForked {
			// Entries sequenced after a fork must not be older than the
			// checkpoint the signer had signed; the fork entry's own time
			// does not count, as entries committed while the log refused
			// are older than it (see tlog's timeOrder.afterFork).
			if f, err := tlog.ParseFork(e.Data); err == nil {
				if c, err := tlog.ParseCheckpoint(noteText([]byte(f.PreviousCheckpoint))); err == nil && !c.Time.IsZero() {
					if t := c.Time.UnixNano(); !l.lastTimeKnown || t > l.lastTime {
						l.lastTime, l.lastIndex, l.lastTimeKnown, l.lastForkBaseline = t, e.Index, true, true
					}
				}
			}
			continue
		}
		if t := e.Time.UnixNano(); !l.lastTimeKnown || t > l.lastTime {
			l.lastTime, l.lastIndex, l.lastTimeKnown, l.lastForkBaseline = t, e.Index, true, false
		}
	}
}

// loadLastTime reads the newest integrated entry's time at start.
func (l *Log) loadLastTime(ctx context.Context) error {
	st, err := l.store.TreeState(ctx)
	if err != nil || st.Size == 0 {
		return err
	}
	es, err := l.store.Entries(ctx, st.Size-1, st.Size)
	if err != nil {
		return fmt.Errorf("read the newest log entry: %w", err)
	}
	l.noteSequenced(es)
	return nil
}

// ForkResult is what [Log.Fork] recorded.
type ForkResult struct {
	Index      uint64 // of the fork entry
	Fork       tlog.Fork
	Checkpoint tlog.Checkpoint
	Signed     []byte // the signed note of Checkpoint
}

// Fork starts a new epoch when the log refuses because its database is
// behind or beside the signer's memory: it appends a [tlog.KindForked]
// entry that records the remembered checkpoint and the tree it continues,
// signs the first checkpoint of the new epoch and remembers it. actor
// and reason are recorded in the entry.
func (l *Log) Fork(ctx context.Context, actor, reason string) (ForkResult, error) {
	return l.fork(ctx, nil, actor, reason)
}

func (l *Log) fork(ctx context.Context, expect *ForkBasis, actor, reason string) (ForkResult, error) {
	if err := l.loadKey(ctx); err != nil {
		return ForkResult{}, err
	}
	r := l.refusal.Load()
	if r == nil {
		return ForkResult{}, usererr.New(usererr.Conflict, "log_not_refusing",
			"The log is not refusing to sign: its database extends the checkpoint this server signed last, so there is nothing to fork.")
	}
	if !r.Forkable {
		return ForkResult{}, usererr.New(usererr.Conflict, "fork_would_not_help", "A fork would not help: %s", r.Sentence)
	}
	rem, remNote := l.rememberedCheckpoint()
	if rem == nil {
		return ForkResult{}, errors.New("audit: fork: the signer remembers no checkpoint")
	}
	var res ForkResult
	var forkEntry []StoredEntry
	err := l.store.Sequence(ctx, func(tx SeqTx) error {
		ftx, ok := tx.(ForkTx)
		if !ok {
			return errors.New("this store cannot record a fork")
		}
		st, err := tx.TreeState(ctx)
		if err != nil {
			return err
		}
		rng, err := checkTreeState(ctx, tx, st)
		if err != nil {
			return err
		}
		base := tlog.EmptyRoot()
		if st.Size > 0 {
			base = rng.Root()
		}
		if expect != nil && (expect.DatabaseSize != st.Size || !bytes.Equal(expect.DatabaseRoot, base) || !bytes.Equal(expect.RememberedNote, remNote)) {
			return errForkBasisChanged
		}
		// The new epoch follows both what this signer remembers and the
		// epoch the stored tree is in (another server's fork it holds).
		f := tlog.Fork{Epoch: max(tlog.EpochOf(*rem), l.treeEpoch(ctx, tx, st)) + 1, BaseSize: st.Size, BaseRoot: hex.EncodeToString(base),
			PreviousCheckpoint: string(remNote), PreviousSize: rem.Size, PreviousRoot: hex.EncodeToString(rem.Hash)}
		rec, err := NewRecord(Entry{Kind: tlog.KindForked, Version: 1, Actor: actor, Subject: "log", Time: l.cfg.Now(),
			Data: f.Data(), Personal: map[string]string{"reason": reason}}, l.cfg.Rand)
		if err != nil {
			return err
		}
		e, err := ftx.InsertSequencerEntry(ctx, rec)
		if err != nil {
			return err
		}
		if forkEntry, err = l.sequenceInto(ctx, tx, st, rng, []StoredEntry{e}); err != nil {
			return err
		}
		cp := tlog.Checkpoint{Origin: l.cfg.Origin, Size: rng.Size(), Hash: rng.Root(), Time: l.cfg.Now().UTC().Truncate(time.Second),
			Epoch: f.Epoch, EpochStart: st.Size}
		signed, err := tlog.SignCheckpoint(l.signer, cp)
		if err != nil {
			return err
		}
		if err := l.remember(cp, signed); err != nil {
			return err
		}
		if _, err := tx.InsertCheckpoint(ctx, StoredCheckpoint{Size: cp.Size, Root: cp.Hash, Time: cp.Time, Note: signed}); err != nil {
			return err
		}
		res = ForkResult{Index: st.Size, Fork: f, Checkpoint: cp, Signed: signed}
		return nil
	})
	if err != nil {
		// The new checkpoint may have been remembered before the
		// transaction failed: remember the old one again.
		if rerr := l.remember(*rem, remNote); rerr != nil {
			l.log.ErrorContext(ctx, "restore the signer state after a failed fork", slog.String("error", rerr.Error()))
		}
		if _, ok := usererr.As(err); ok {
			return ForkResult{}, err
		}
		return ForkResult{}, fmt.Errorf("audit: fork: %w", err)
	}
	l.noteSequenced(forkEntry)
	l.refusal.Store(nil)
	l.log.WarnContext(ctx, "the log was forked: a new epoch begins", slog.Int("epoch", int(res.Fork.Epoch)),
		slog.Int("index", int(res.Index)), slog.String("actor", actor))
	return res, nil
}

// ForkTx is the optional ability of a sequencer transaction that [Log.Fork]
// needs: insert an entry and return its row, to integrate it at once.
type ForkTx interface {
	InsertSequencerEntry(ctx context.Context, r Record) (StoredEntry, error)
}
