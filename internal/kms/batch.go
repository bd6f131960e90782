package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/interlock-dev/interlock/internal/audit"
)

// The batcher is Interlock's group commit for data-plane calls. Encrypt,
// decrypt, data-key, rewrap and secret reads each need an audit entry and a
// counter update that commit before the caller sees a result; one
// transaction per call would cap throughput at the disk's fsync rate. The
// batcher's single goroutine takes every call waiting, writes their usage
// counters and audit entries in one transaction, and only then answers
// each call. A call whose key was disabled, destroyed or raised above its
// version by the time of commit is refused (errStale) and writes nothing.

type usage struct {
	key      string
	version  int
	enc, dec int64
}

type job struct {
	entry  audit.Entry
	usages []usage
	done   chan error
}

// errStale means a concurrent change (possibly on another server) forbade
// the call at commit; the caller reloads the key and tries again.
var errStale = errors.New("kms: key state changed during the call")

var errClosed = errors.New("kms: service is closed")

type batcher struct {
	store Store
	max   int
	in    chan *job
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newBatcher(st Store, max int) *batcher {
	b := &batcher{store: st, max: max, in: make(chan *job, max), quit: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

func (b *batcher) close() {
	b.once.Do(func() { close(b.quit) })
	b.wg.Wait()
}

// do commits j's usages and audit entry, returning when they are durable.
func (b *batcher) do(ctx context.Context, j *job) error {
	j.done = make(chan error, 1)
	select {
	case b.in <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.quit:
		return errClosed
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *batcher) loop() {
	defer b.wg.Done()
	jobs := make([]*job, 0, b.max)
	for {
		var first *job
		select {
		case first = <-b.in:
		case <-b.quit:
			for {
				select {
				case j := <-b.in:
					j.done <- errClosed
				default:
					return
				}
			}
		}
		jobs = append(jobs[:0], first)
		// No lingering: while one commit waits for its fsync, the next
		// callers queue up, so batches grow with load by themselves (a
		// timer here measured 2-3x slower on a busy machine).
	drain:
		for len(jobs) < b.max {
			select {
			case j := <-b.in:
				jobs = append(jobs, j)
			default:
				break drain
			}
		}
		b.commit(jobs)
	}
}

type kv struct {
	key     string
	version int
}

func (b *batcher) commit(jobs []*job) {
	ctx := context.Background()
	sums := map[kv]*usage{}
	var order []kv
	for _, j := range jobs {
		for _, u := range j.usages {
			k := kv{u.key, u.version}
			if s := sums[k]; s != nil {
				s.enc += u.enc
				s.dec += u.dec
			} else {
				uu := u
				sums[k] = &uu
				order = append(order, k)
			}
		}
	}
	// Build the audit records (canonical data, salts, commitments) before
	// the transaction, so that the database lock is held for inserts only.
	records := make([]audit.Record, len(jobs))
	recErrs := make([]error, len(jobs))
	for i, j := range jobs {
		records[i], recErrs[i] = audit.NewRecord(j.entry, rand.Reader)
	}
	var refused map[kv]bool
	err := b.store.InTx(ctx, func(tx Tx) error {
		refused = map[kv]bool{}
		for _, k := range order {
			s := sums[k]
			ok, err := tx.AddKMSKeyUsage(ctx, s.key, s.version, s.enc, s.dec)
			if err != nil {
				return err
			}
			if !ok {
				refused[k] = true
			}
		}
		recs := make([]audit.Record, 0, len(jobs))
		for i, j := range jobs {
			if stale(j, refused) {
				continue
			}
			if _, ok := any(tx).(audit.BatchInserter); !ok {
				if err := audit.Append(ctx, tx, j.entry); err != nil {
					return err
				}
				continue
			}
			if recErrs[i] != nil {
				return recErrs[i]
			}
			recs = append(recs, records[i])
		}
		if bi, ok := any(tx).(audit.BatchInserter); ok && len(recs) > 0 {
			if err := bi.InsertAuditRecords(ctx, recs); err != nil {
				return fmt.Errorf("insert %d audit entries: %w", len(recs), err)
			}
		}
		return nil
	})
	for _, j := range jobs {
		switch {
		case err != nil:
			j.done <- err
		case stale(j, refused):
			j.done <- errStale
		default:
			j.done <- nil
		}
	}
}

func stale(j *job, refused map[kv]bool) bool {
	for _, u := range j.usages {
		if refused[kv{u.key, u.version}] {
			return true
		}
	}
	return false
}
