package audit

import (
	"bytes"
	"context"
	"errors"

	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ForkBasis is what a fork would continue from: the checkpoint the signer
// remembers and the tree the database holds. A fork that a second person
// approves (internal/change's log.fork) is bound to it, so that what they
// approved is what happens.
type ForkBasis struct {
	Refusal         string // why the log refuses
	RememberedNote  []byte // the signed note of the remembered checkpoint
	Remembered      tlog.Checkpoint
	RememberedEpoch uint64 // tlog.EpochOf(Remembered)
	DatabaseSize    uint64
	DatabaseRoot    []byte
}

var errForkBasisChanged = usererr.New(usererr.Conflict, "fork_basis_changed",
	"The signer's memory or the database's tree changed since the fork was requested, so it is not the fork that was approved; nothing was forked.")

// ForkBasis returns what a fork would continue from now, or the same
// sentence [Log.Fork] would refuse with when the log is not refusing or a
// fork would not help.
func (l *Log) ForkBasis(ctx context.Context) (ForkBasis, error) {
	if err := l.loadKey(ctx); err != nil {
		return ForkBasis{}, err
	}
	r := l.refusal.Load()
	if r == nil {
		return ForkBasis{}, usererr.New(usererr.Conflict, "log_not_refusing",
			"The log is not refusing to sign: its database extends the checkpoint this server signed last, so there is nothing to fork.")
	}
	if !r.Forkable {
		return ForkBasis{}, usererr.New(usererr.Conflict, "fork_would_not_help", "A fork would not help: %s", r.Sentence)
	}
	rem, remNote := l.rememberedCheckpoint()
	if rem == nil {
		return ForkBasis{}, errors.New("audit: fork basis: the signer remembers no checkpoint")
	}
	b := ForkBasis{Refusal: r.Sentence, RememberedNote: bytes.Clone(remNote), Remembered: *rem, RememberedEpoch: tlog.EpochOf(*rem)}
	// Read the tree under the sequencer lock, checked as a fork checks it.
	err := l.store.Sequence(ctx, func(tx SeqTx) error {
		st, err := tx.TreeState(ctx)
		if err != nil {
			return err
		}
		rng, err := checkTreeState(ctx, tx, st)
		if err != nil {
			return err
		}
		b.DatabaseSize, b.DatabaseRoot = st.Size, tlog.EmptyRoot()
		if st.Size > 0 {
			b.DatabaseRoot = rng.Root()
		}
		return nil
	})
	if err != nil {
		return ForkBasis{}, err
	}
	return b, nil
}

// ForkIf forks like [Log.Fork] only while the basis is still expect: the
// same remembered checkpoint and the same database tree. Otherwise it
// refuses with a Conflict and forks nothing.
func (l *Log) ForkIf(ctx context.Context, expect ForkBasis, actor, reason string) (ForkResult, error) {
	return l.fork(ctx, &expect, actor, reason)
}
