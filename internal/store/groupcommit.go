package store

import (
	"context"
	"fmt"
	"sync"
)

// Group commit. A wave on ten thousand hosts records two small
// transactions per host and phase (the dispatch, then the result), each
// with its audit entry. One at a time, every one waits for its own
// commit — with SQLite in synchronous=FULL, an fsync — so the wave is as
// slow as the disk. InTxGrouped lets concurrent callers share one
// transaction: whoever finds no commit in progress leads, takes every
// function queued so far (up to maxGroup), runs each inside its own
// savepoint, and commits once. Each caller still gets exactly its own
// outcome: a function that fails is rolled back to its savepoint alone;
// nobody's function is reported done before the commit that holds it.
// database/sql has no group commit and neither driver offers one, hence
// this file.

// maxGroup bounds the functions sharing one transaction.
const maxGroup = 256

type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupReq
	leading bool
}

type groupReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error
}

// InTxGrouped is InTx for small transactions many goroutines make at once:
// fn may share its transaction (and commit) with other callers' functions.
// fn runs inside a savepoint, so its error undoes only its own writes; it
// MUST NOT have effects outside the transaction and MUST NOT end the
// transaction or use savepoints named ilk_group.
func (db *DB) InTxGrouped(ctx context.Context, fn func(*Tx) error) error {
	req := &groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g := &db.group
	g.mu.Lock()
	g.queue = append(g.queue, req)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		go db.leadGroups()
	}
	return <-req.done
}

// leadGroups commits queued functions, a group at a time, until none is
// left.
func (db *DB) leadGroups() {
	g := &db.group
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		db.commitGroup(batch)
	}
}

func (db *DB) commitGroup(batch []*groupReq) {
	if len(batch) == 1 {
		r := batch[0]
		r.done <- db.InTx(r.ctx, r.fn)
		return
	}
	errs := make([]error, len(batch))
	err := db.InTx(context.WithoutCancel(batch[0].ctx), func(tx *Tx) error {
		for i, r := range batch {
			errs[i] = nil
			if err := r.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if _, err := tx.Exec(r.ctx, `SAVEPOINT ilk_group`); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
			if ferr := r.fn(tx); ferr != nil {
				errs[i] = ferr
				if _, err := tx.Exec(context.WithoutCancel(r.ctx), `ROLLBACK TO SAVEPOINT ilk_group`); err != nil {
					return fmt.Errorf("roll back to savepoint: %w", err)
				}
			}
			if _, err := tx.Exec(context.WithoutCancel(r.ctx), `RELEASE SAVEPOINT ilk_group`); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		return nil
	})
	for i, r := range batch {
		switch {
		case err != nil:
			// The shared transaction failed as a whole: each function gets
			// its own transaction, so one bad neighbour fails nobody else.
			r.done <- db.InTx(r.ctx, r.fn)
		case errs[i] != nil && isTransient(errs[i]):
			r.done <- db.InTx(r.ctx, r.fn)
		default:
			r.done <- errs[i]
		}
	}
}
