package audit

import "sync"

// sequencedSubscribers holds the functions [Log.OnSequenced] registered.
type sequencedSubscribers struct {
	mu  sync.RWMutex
	fns []func([]StoredEntry)
}

// OnSequenced registers fn to receive every batch of entries the
// sequencer has just integrated, in log order, after the batch committed.
//
// This is the hook for side effects that must follow the record and never
// precede it (notifications): an entry reaches fn only once its change and
// the entry itself are durable and part of the tree, so nothing is
// announced for a transaction that rolled back. fn runs on the sequencer's
// goroutine and MUST NOT block (hand the entries to a queue); it must not
// modify them. Delivery is at most once per process: entries integrated
// while no subscriber is registered, or by another process, are not
// replayed.
func (l *Log) OnSequenced(fn func([]StoredEntry)) {
	l.subscribers.mu.Lock()
	defer l.subscribers.mu.Unlock()
	l.subscribers.fns = append(l.subscribers.fns, fn)
}

// announceSequenced hands es to every subscriber.
func (l *Log) announceSequenced(es []StoredEntry) {
	if len(es) == 0 {
		return
	}
	l.subscribers.mu.RLock()
	defer l.subscribers.mu.RUnlock()
	for _, fn := range l.subscribers.fns {
		fn(es)
	}
}
