package audit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
)

// Group commit. A durable commit costs one fsync (≈ milliseconds); an
// INSERT costs microseconds. Committing each caller's transaction on its
// own therefore caps a server at a few hundred audited changes per second,
// whatever the hardware. An [Appender] runs the work of many concurrent
// callers inside ONE transaction and commits once:
//
//   - Appender.Do(ctx, fn) runs fn(tx) inside the shared transaction, under
//     a savepoint: fn makes its state change AND calls audit.Append with
//     the same tx, exactly as with store.InTx, so invariant 2 (a change
//     commits together with its entry) still holds. If fn fails, only its
//     savepoint is rolled back; the other callers' work commits.
//   - Appender.Append(ctx, e) records an entry that has no state change of
//     its own (a failed login, a read of a secret). Such entries are
//     inserted with multi-row INSERTs.
//
// Both return only after the shared transaction committed, so a nil error
// means durable. A non-nil error means the caller's work is not known to
// have committed (it was rolled back, or the commit's outcome is unknown
// because ctx ended first).
//
// Audit.Append in a caller's own transaction (store.InTx) stays the
// default; use the Appender on hot paths.

// Savepointer is the optional ability of a transaction to nest
// savepoints; [Appender.Do] needs it to group callers (without it, each
// Do runs in a transaction of its own).
type Savepointer interface {
	AuditSavepoint(ctx context.Context, name string) error
	AuditReleaseSavepoint(ctx context.Context, name string) error
	AuditRollbackToSavepoint(ctx context.Context, name string) error
}

// BatchInserter is the optional ability of a transaction to insert many
// records at once (multi-row INSERT). Records with an idempotency key are
// always inserted one by one.
type BatchInserter interface {
	InsertAuditRecords(ctx context.Context, rs []Record) error
}

// AppenderConfig tunes an [Appender]. The zero value is usable.
type AppenderConfig struct {
	// MaxBatch is the most callers grouped in one transaction; zero means
	// 4096.
	MaxBatch int
}

// Appender groups concurrent callers' audited changes into shared
// transactions. T is the store's transaction type (e.g. *store.Tx) and
// inTx its InTx function. Create it with [NewAppender]; Close it at
// shutdown.
type Appender[T Tx] struct {
	inTx     func(context.Context, func(T) error) error
	maxBatch int
	reqs     chan *appendReq[T]
	quit     chan struct{}
	done     chan struct{}
	closeMu  sync.RWMutex
	closed   bool
}

type appendReq[T Tx] struct {
	ctx  context.Context
	fn   func(T) error
	rec  *Record
	done chan error
}

// ErrClosed is returned by an Appender after Close.
var ErrClosed = errors.New("audit: appender is closed")

// NewAppender starts an Appender over inTx (store.DB.InTx).
func NewAppender[T Tx](inTx func(context.Context, func(T) error) error, cfg AppenderConfig) *Appender[T] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 4096
	}
	a := &Appender[T]{inTx: inTx, maxBatch: cfg.MaxBatch, reqs: make(chan *appendReq[T], cfg.MaxBatch),
		quit: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a
}

// Append durably records e (see the type's doc).
func (a *Appender[T]) Append(ctx context.Context, e Entry) error {
	r, err := NewRecord(e, rand.Reader)
	if err != nil {
		return err
	}
	return a.submit(ctx, &appendReq[T]{ctx: ctx, rec: &r})
}

// Do runs fn inside a shared transaction and returns once it committed.
// fn MUST NOT have effects outside the transaction: like store.InTx, the
// shared transaction may be retried after a transient conflict.
func (a *Appender[T]) Do(ctx context.Context, fn func(T) error) error {
	var zero T
	if _, ok := any(zero).(Savepointer); !ok {
		return a.inTx(ctx, fn)
	}
	return a.submit(ctx, &appendReq[T]{ctx: ctx, fn: fn})
}

func (a *Appender[T]) submit(ctx context.Context, r *appendReq[T]) error {
	r.done = make(chan error, 1)
	a.closeMu.RLock()
	if a.closed {
		a.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case a.reqs <- r:
		a.closeMu.RUnlock()
	case <-ctx.Done():
		a.closeMu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("audit: gave up waiting for the commit (the entry may still be recorded): %w", ctx.Err())
	}
}

// Close stops accepting work, commits what is queued, and returns.
func (a *Appender[T]) Close() {
	a.closeMu.Lock()
	if !a.closed {
		a.closed = true
		close(a.quit)
	}
	a.closeMu.Unlock()
	<-a.done
}

func (a *Appender[T]) loop() {
	defer close(a.done)
	for {
		var first *appendReq[T]
		select {
		case first = <-a.reqs:
		case <-a.quit:
			// Drain what was queued before Close.
			for {
				select {
				case r := <-a.reqs:
					a.commit([]*appendReq[T]{r})
				default:
					return
				}
			}
		}
		batch := []*appendReq[T]{first}
	fill:
		for len(batch) < a.maxBatch {
			select {
			case r := <-a.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		a.commit(batch)
	}
}

// errUseSavepoints aborts an optimistic attempt in which a caller failed.
var errUseSavepoints = errors.New("audit: a grouped caller failed; retry the batch with savepoints")

// commit runs one batch in one transaction. It first runs every caller's
// work without savepoints (two fewer statements per caller); if one
// fails, it rolls back and runs the batch again with a savepoint around
// each caller, so that only the failing callers' work is undone.
func (a *Appender[T]) commit(batch []*appendReq[T]) {
	results := make([]error, len(batch))
	optimistic := true
	attempt := func(tx T) error {
		clear(results)
		var recs []Record
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			var err error
			switch {
			case r.rec != nil && r.rec.IdempotencyKey == "":
				recs = append(recs, *r.rec)
				continue
			case r.rec != nil:
				// A duplicate key leaves the transaction usable.
				rec := *r.rec
				err = a.guard(r.ctx, tx, optimistic, func(tx T) error { return tx.InsertAuditRecord(r.ctx, rec) })
			default:
				err = a.guard(r.ctx, tx, optimistic, r.fn)
			}
			if err != nil && optimistic && !errors.Is(err, ErrDuplicate) {
				return errUseSavepoints
			}
			results[i] = err
		}
		if len(recs) == 0 {
			return nil
		}
		if bi, ok := any(tx).(BatchInserter); ok {
			if err := bi.InsertAuditRecords(context.Background(), recs); err != nil {
				return fmt.Errorf("audit: insert %d entries: %w", len(recs), err)
			}
			return nil
		}
		for _, r := range recs {
			if err := tx.InsertAuditRecord(context.Background(), r); err != nil {
				return fmt.Errorf("audit: insert %d entries: %w", len(recs), err)
			}
		}
		return nil
	}
	err := a.inTx(context.Background(), attempt)
	if errors.Is(err, errUseSavepoints) {
		optimistic = false
		err = a.inTx(context.Background(), attempt)
	}
	for i, r := range batch {
		switch {
		case err != nil:
			r.done <- err
		default:
			r.done <- results[i]
		}
	}
}

// guard runs fn directly (optimistic) or under a savepoint.
func (a *Appender[T]) guard(ctx context.Context, tx T, optimistic bool, fn func(T) error) error {
	if optimistic {
		return fn(tx)
	}
	return a.underSavepoint(ctx, tx, fn)
}

func (a *Appender[T]) underSavepoint(ctx context.Context, tx T, fn func(T) error) error {
	sp, ok := any(tx).(Savepointer)
	if !ok {
		return fn(tx)
	}
	const name = "audit_appender"
	if err := sp.AuditSavepoint(ctx, name); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if rerr := sp.AuditRollbackToSavepoint(ctx, name); rerr != nil {
			return errors.Join(err, rerr)
		}
		_ = sp.AuditReleaseSavepoint(ctx, name)
		return err
	}
	return sp.AuditReleaseSavepoint(ctx, name)
}
