package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interlock-dev/interlock/internal/tlog"
	"golang.org/x/mod/sumdb/note"
)

// Sealer seals secrets at rest (internal/kms implements it; the app wires
// it). Open MUST fail if aad differs from the one given to Seal.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Config configures a [Log]. Store and Sealer are required.
type Config struct {
	Store  Store
	Sealer Sealer
	// Origin names the log in its checkpoints and is the name of its key,
	// e.g. "interlock.example.com/log". Empty means "interlock/log".
	Origin string
	// IntegrateEvery is how often pending entries are integrated; zero
	// means 1 s.
	IntegrateEvery time.Duration
	// CheckpointEvery is how often a checkpoint is signed and published,
	// even when nothing changed; zero means 10 s.
	CheckpointEvery time.Duration
	// BatchSize is the most entries integrated in one transaction; zero
	// means 4096.
	BatchSize int
	// Witnesses are the verifier keys (C2SP tlog-cosignature) of the
	// witnesses whose cosignatures the log accepts and stores.
	Witnesses []string
	// Now and Rand are injected for tests; nil means time.Now and
	// crypto/rand.
	Now  func() time.Time
	Rand io.Reader
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// TimeSkew is how far a pending entry's time may go back before the
	// newest entry's; zero means tlog.DefaultTimeSkew. The sequencer
	// refuses an entry further back.
	TimeSkew time.Duration
	// MaxFuture is how far a pending entry's time may lie after the
	// sequencer's clock; zero means tlog.DefaultMaxFuture. The sequencer
	// refuses an entry further ahead.
	MaxFuture time.Duration
	// Memory keeps the last checkpoint the signer signed, outside the
	// database (see signerstate.go). nil keeps it in the process only, for
	// tests and tools; a server MUST configure a [FileMemory].
	Memory Memory
}

// Log is the tamper-evident log: sequencer, checkpointer and reader.
type Log struct {
	cfg       Config
	store     Store
	log       *slog.Logger
	witnesses []note.Verifier

	keyMu    sync.Mutex
	signer   note.Signer
	verifier note.Verifier
	vkey     string

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}

	memory         Memory
	memMu          sync.Mutex
	memLoaded      bool
	remembered     *tlog.Checkpoint
	rememberedNote []byte
	refusal        atomic.Pointer[RefusalError]

	timeMu        sync.Mutex
	lastTime      int64 // unix nanoseconds of the newest integrated entry
	lastIndex     uint64
	lastTimeKnown bool
	// lastForkBaseline: lastTime is the time of the checkpoint a fork
	// entry (at lastIndex) names, not of an entry.
	lastForkBaseline bool

	subscribers sequencedSubscribers // OnSequenced (subscribe.go)
}

// DefaultOrigin is the origin used when Config.Origin is empty.
const DefaultOrigin = "interlock/log"

// New validates cfg and returns a Log. It does no I/O; call Start to run
// the sequencer, or Integrate and Publish directly.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("audit: log needs a store and a sealer")
	}
	if cfg.Origin == "" {
		cfg.Origin = DefaultOrigin
	}
	if cfg.IntegrateEvery <= 0 {
		cfg.IntegrateEvery = time.Second
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = 10 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TimeSkew <= 0 {
		cfg.TimeSkew = tlog.DefaultTimeSkew
	}
	if cfg.MaxFuture <= 0 {
		cfg.MaxFuture = tlog.DefaultMaxFuture
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	l := &Log{cfg: cfg, store: cfg.Store, log: cfg.Log, memory: cfg.Memory}
	if l.memory == nil {
		l.memory = &processMemory{}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	for _, w := range cfg.Witnesses {
		v, err := tlog.NewVerifier(w)
		if err != nil {
			return nil, fmt.Errorf("audit: witness key %q: %v", w, err)
		}
		l.witnesses = append(l.witnesses, v)
	}
	return l, nil
}

// Origin returns the log's origin.
func (l *Log) Origin() string { return l.cfg.Origin }

func (l *Log) keyAAD() []byte { return []byte("audit/log-key:" + l.cfg.Origin) }

// loadKey loads the sealed log key, creating it at first start.
func (l *Log) loadKey(ctx context.Context) error {
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	if l.signer != nil {
		return nil
	}
	sealed, vkey, err := l.store.LogKey(ctx)
	if errors.Is(err, ErrNotFound) {
		key, vk, gerr := tlog.GenerateLogKey(l.cfg.Rand, l.cfg.Origin)
		if gerr != nil {
			return gerr
		}
		s, serr := l.cfg.Sealer.Seal([]byte(key.Reveal()), l.keyAAD())
		if serr != nil {
			return fmt.Errorf("seal log key: %w", serr)
		}
		if err := l.store.PutLogKey(ctx, s, vk); err != nil {
			return fmt.Errorf("store log key: %w", err)
		}
		// Another replica may have won the race: read back what is stored.
		sealed, vkey, err = l.store.LogKey(ctx)
		if err == nil {
			l.log.InfoContext(ctx, "created the log signing key", slog.String("origin", l.cfg.Origin), slog.String("public_key", vkey))
		}
	}
	if err != nil {
		return fmt.Errorf("load log key: %w", err)
	}
	plain, err := l.cfg.Sealer.Open(sealed, l.keyAAD())
	if err != nil {
		return fmt.Errorf("unseal log key: %w", err)
	}
	key, err := tlog.ParsePrivateKey(string(plain))
	if err != nil {
		return err
	}
	signer, err := key.Signer()
	if err != nil {
		return err
	}
	verifier, err := tlog.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("stored log public key: %v", err)
	}
	if signer.Name() != l.cfg.Origin {
		return fmt.Errorf("the stored log key is named %q but the log's origin is %q", signer.Name(), l.cfg.Origin)
	}
	l.signer, l.verifier, l.vkey = signer, verifier, vkey
	return nil
}

// PublicKey returns the log's verifier key ("origin+hash+base64"), the
// value clients pin. It creates the key at first use.
func (l *Log) PublicKey(ctx context.Context) (string, error) {
	if err := l.loadKey(ctx); err != nil {
		return "", err
	}
	return l.vkey, nil
}

// Start loads (or creates) the log key, publishes a checkpoint, and runs
// the sequencer until ctx ends or Stop is called.
//
// A log whose database does not extend the checkpoint its signer
// remembers (or that holds a pending entry out of time order) starts
// anyway, refusing: [Log.Refusal] says why, and nothing is integrated or
// signed until the cause is fixed or an admin records a fork.
func (l *Log) Start(ctx context.Context) error {
	if err := l.loadKey(ctx); err != nil {
		return err
	}
	if err := l.start(ctx); err != nil {
		var re *RefusalError
		if !errors.As(err, &re) {
			return err
		}
	}
	l.runMu.Lock()
	defer l.runMu.Unlock()
	if l.cancel != nil {
		return errors.New("audit: log already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	l.cancel, l.done = cancel, make(chan struct{})
	go l.run(ctx, l.done)
	return nil
}

// Stop stops the sequencer, then integrates what is pending and
// publishes a last checkpoint within ctx.
func (l *Log) Stop(ctx context.Context) error {
	l.runMu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel, l.done = nil, nil
	l.runMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if l.refusal.Load() != nil {
		return nil
	}
	if _, err := l.Integrate(ctx); err != nil {
		return err
	}
	_, err := l.Publish(ctx)
	return err
}

// start loads the signer's memory, then integrates and publishes once.
func (l *Log) start(ctx context.Context) error {
	if err := l.loadMemory(ctx); err != nil {
		return err
	}
	if rem, _ := l.rememberedCheckpoint(); rem == nil {
		// No memory (first start, or a server upgraded from a version
		// without one): trust the database this once; the next signature
		// is remembered.
		if c, err := l.store.LatestCheckpoint(ctx); err == nil {
			l.log.WarnContext(ctx, "the signer remembers no checkpoint; trusting the database's latest on first use", slog.Uint64("size", c.Size))
		}
	}
	if err := l.loadLastTime(ctx); err != nil {
		return err
	}
	if _, err := l.Integrate(ctx); err != nil {
		return err
	}
	_, err := l.Publish(ctx)
	return err
}

func (l *Log) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	integ := time.NewTicker(l.cfg.IntegrateEvery)
	defer integ.Stop()
	cp := time.NewTicker(l.cfg.CheckpointEvery)
	defer cp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-integ.C:
			if l.refusal.Load() != nil {
				continue
			}
			if _, err := l.Integrate(ctx); err != nil && ctx.Err() == nil {
				l.log.ErrorContext(ctx, "integrate log entries", slog.Any("err", err))
			}
		case <-cp.C:
			if l.refusal.Load() != nil {
				continue
			}
			if _, err := l.Integrate(ctx); err != nil && ctx.Err() == nil {
				l.log.ErrorContext(ctx, "integrate log entries", slog.Any("err", err))
			}
			if _, err := l.Publish(ctx); err != nil && ctx.Err() == nil {
				l.log.ErrorContext(ctx, "publish checkpoint", slog.Any("err", err))
			}
		}
	}
}

// Sync integrates every pending entry and publishes a checkpoint that
// covers them; tests and the redact command use it.
func (l *Log) Sync(ctx context.Context) (tlog.Checkpoint, error) {
	if _, err := l.Integrate(ctx); err != nil {
		return tlog.Checkpoint{}, err
	}
	return l.Publish(ctx)
}

// Integrate adds pending entries to the tree, batch by batch, until none
// is pending. It returns how many it integrated.
func (l *Log) Integrate(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := l.integrateBatch(ctx)
		total += n
		if err != nil || n < l.cfg.BatchSize {
			return total, err
		}
	}
}

// TreeStateError reports stored tree state that does not match the
// signed history; the sequencer refuses to extend it.
type TreeStateError struct{ Reason string }

func (e *TreeStateError) Error() string { return "audit: stored tree state is corrupt: " + e.Reason }

// checkTreeState checks the stored tree against itself and the last
// signed checkpoint before a batch extends it.
func checkTreeState(ctx context.Context, tx SeqTx, st TreeState) (*tlog.Range, error) {
	frontier, err := tlog.DecodeFrontier(st.Frontier)
	if err != nil {
		return nil, &TreeStateError{err.Error()}
	}
	r, err := tlog.NewRange(st.Size, frontier)
	if err != nil {
		return nil, &TreeStateError{err.Error()}
	}
	if st.Size == 0 {
		return r, nil
	}
	hr := tlog.TileHashReader{Size: st.Size, Tiles: tx}
	root, err := tlog.RootHash(ctx, st.Size, hr)
	if err != nil {
		return nil, &TreeStateError{fmt.Sprintf("tiles of tree %d: %v", st.Size, err)}
	}
	if !bytes.Equal(root, r.Root()) || !bytes.Equal(root, st.Root) {
		return nil, &TreeStateError{fmt.Sprintf("the frontier, the root and the tiles of tree %d disagree", st.Size)}
	}
	cp, err := tx.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNotFound) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if cp.Size > st.Size {
		return nil, &TreeStateError{fmt.Sprintf("tree has %d entries but checkpoint %d already signed %d", st.Size, cp.ID, cp.Size)}
	}
	cpRoot, err := tlog.RootHash(ctx, cp.Size, tlog.TileHashReader{Size: st.Size, Tiles: tx})
	if err != nil {
		return nil, &TreeStateError{fmt.Sprintf("tiles of tree %d: %v", cp.Size, err)}
	}
	if !bytes.Equal(cpRoot, cp.Root) {
		return nil, &TreeStateError{fmt.Sprintf("tiles do not match the signed checkpoint of size %d", cp.Size)}
	}
	return r, nil
}

func (l *Log) integrateBatch(ctx context.Context) (int, error) {
	if err := l.loadKey(ctx); err != nil {
		return 0, err
	}
	if err := l.loadMemory(ctx); err != nil {
		return 0, err
	}
	l.timeMu.Lock()
	known := l.lastTimeKnown
	l.timeMu.Unlock()
	if !known {
		if err := l.loadLastTime(ctx); err != nil {
			return 0, err
		}
	}
	n := 0
	var done []StoredEntry
	err := l.store.Sequence(ctx, func(tx SeqTx) error {
		n = 0
		pending, err := tx.PendingEntries(ctx, l.cfg.BatchSize)
		if err != nil || len(pending) == 0 {
			return err
		}
		st, err := tx.TreeState(ctx)
		if err != nil {
			return err
		}
		r, err := checkTreeState(ctx, tx, st)
		if err != nil {
			return err
		}
		// Extend only a tree that extends what the signer signed: entries
		// integrated onto a cut-back tree would bury the cut.
		if err := l.checkMemory(ctx, tx, st); err != nil {
			return err
		}
		if err := l.checkTimeOrder(ctx, pending); err != nil {
			return err
		}
		if done, err = l.sequenceInto(ctx, tx, st, r, pending); err != nil {
			return err
		}
		n = len(pending)
		return nil
	})
	if err != nil {
		var re *RefusalError
		if errors.As(err, &re) {
			return 0, re
		}
		return 0, fmt.Errorf("audit: integrate: %w", err)
	}
	l.noteSequenced(done)
	l.announceSequenced(done)
	return n, nil
}

// sequenceInto integrates pending (in order) onto the tree r of state st
// inside tx: indexes, actor chains, tiles and the new tree state. It
// returns the entries as integrated.
func (l *Log) sequenceInto(ctx context.Context, tx SeqTx, st TreeState, r *tlog.Range, pending []StoredEntry) ([]StoredEntry, error) {
	var names []string
	seen := map[string]bool{}
	for _, e := range pending {
		if !seen[e.Actor] {
			seen[e.Actor] = true
			names = append(names, e.Actor)
		}
	}
	actors, err := tx.ActorStates(ctx, names)
	if err != nil {
		return nil, err
	}
	edgeTiles := tlog.EdgeTiles(st.Size)
	edgeData, err := tx.ReadTiles(ctx, edgeTiles)
	if err != nil {
		return nil, fmt.Errorf("read edge tiles: %w", err)
	}
	edge := make(map[tlog.Tile][]byte, len(edgeTiles))
	for i, t := range edgeTiles {
		edge[t] = edgeData[i]
	}
	var set tlog.TileSet
	seqd := make([]Sequenced, 0, len(pending))
	changed := map[string]ActorState{}
	for k, e := range pending {
		for _, raw := range [][]byte{e.Data, e.Commitments} {
			var c bytes.Buffer
			if err := json.Compact(&c, raw); err != nil || !bytes.Equal(c.Bytes(), raw) || len(raw) == 0 || raw[0] != '{' {
				return nil, fmt.Errorf("entry row %d: stored data is not a canonical JSON object", e.ID)
			}
		}
		as := actors[e.Actor]
		e.Index, e.ActorSeq, e.ActorPrev, e.Integrated = r.Size(), as.Seq+1, as.LastHash, true
		pending[k] = e
		leaf, err := e.Leaf()
		if err != nil {
			return nil, fmt.Errorf("entry row %d: %w", e.ID, err)
		}
		h := tlog.LeafHash(leaf)
		if err := r.Append(h, set.Visit); err != nil {
			return nil, err
		}
		seqd = append(seqd, Sequenced{ID: e.ID, Index: e.Index, ActorSeq: e.ActorSeq, ActorPrev: e.ActorPrev})
		as = ActorState{Seq: e.ActorSeq, LastHash: h}
		actors[e.Actor], changed[e.Actor] = as, as
	}
	tiles, data, err := set.Tiles(r.Size(), edge)
	if err != nil {
		return nil, err
	}
	if err := tx.IntegrateEntries(ctx, seqd); err != nil {
		return nil, err
	}
	if err := tx.PutActorStates(ctx, changed); err != nil {
		return nil, err
	}
	if err := tx.PutTiles(ctx, tiles, data); err != nil {
		return nil, err
	}
	if err := tx.PutTreeState(ctx, TreeState{Size: r.Size(), Root: r.Root(), Frontier: tlog.EncodeFrontier(r.Frontier())}); err != nil {
		return nil, err
	}
	return pending, nil
}

// Publish signs a checkpoint of the integrated tree and stores it.
//
// It signs only a tree that extends the checkpoint the signer remembers
// (see signerstate.go), and remembers what it signed before the
// checkpoint is published; otherwise it returns a *[RefusalError].
func (l *Log) Publish(ctx context.Context) (tlog.Checkpoint, error) {
	if err := l.loadKey(ctx); err != nil {
		return tlog.Checkpoint{}, err
	}
	if err := l.loadMemory(ctx); err != nil {
		return tlog.Checkpoint{}, err
	}
	var cp tlog.Checkpoint
	err := l.store.Sequence(ctx, func(tx SeqTx) error {
		st, err := tx.TreeState(ctx)
		if err != nil {
			return err
		}
		if _, err := checkTreeState(ctx, tx, st); err != nil {
			return err
		}
		if err := l.checkMemory(ctx, tx, st); err != nil {
			return err
		}
		root := st.Root
		if st.Size == 0 {
			root = tlog.EmptyRoot()
		}
		cp = tlog.Checkpoint{Origin: l.cfg.Origin, Size: st.Size, Hash: root, Time: l.cfg.Now().UTC().Truncate(time.Second)}
		if rem, _ := l.rememberedCheckpoint(); rem != nil {
			cp.Epoch, cp.EpochStart = rem.Epoch, rem.EpochStart
		} else if latest, err := tx.LatestCheckpoint(ctx); err == nil {
			// First use: continue the epoch of the database's latest checkpoint.
			if c, _, err := tlog.OpenCheckpoint(latest.Note, l.verifier); err == nil && c.Size <= cp.Size {
				cp.Epoch, cp.EpochStart = c.Epoch, c.EpochStart
			}
		}
		signed, err := tlog.SignCheckpoint(l.signer, cp)
		if err != nil {
			return err
		}
		if err := l.remember(cp, signed); err != nil {
			return err
		}
		_, err = tx.InsertCheckpoint(ctx, StoredCheckpoint{Size: cp.Size, Root: cp.Hash, Time: cp.Time, Note: signed})
		return err
	})
	if err != nil {
		var re *RefusalError
		if errors.As(err, &re) {
			return tlog.Checkpoint{}, re
		}
		return tlog.Checkpoint{}, fmt.Errorf("audit: publish checkpoint: %w", err)
	}
	return cp, nil
}

// Leaf returns the entry's canonical leaf bytes. The entry MUST be
// integrated (Index, ActorSeq and ActorPrev set).
func (e StoredEntry) Leaf() ([]byte, error) {
	if !e.Integrated {
		return nil, errors.New("entry is not integrated yet")
	}
	prev := ""
	if e.ActorPrev != nil {
		prev = hex.EncodeToString(e.ActorPrev)
	}
	return LeafV1{
		Format: LeafFormatV1, Kind: e.Kind, Version: e.Version, Actor: e.Actor,
		ActorSeq: e.ActorSeq, ActorPrev: prev, Subject: e.Subject,
		TimeUnixNano: e.Time.UnixNano(), IdempotencyKey: e.IdempotencyKey,
		Data: e.Data, Personal: e.Commitments,
	}.Marshal()
}
