package exec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
)

// Batched step records. A wave on ten thousand hosts records every host
// twice per phase: its dispatch (before the step leaves) and its result.
// Written one host at a time, each record was a transaction with a version
// bump and its own audit entry — four statements, a log leaf to hash and
// sequence, and a wake-up of every progress watcher — and that, not the
// network, was most of what a step cost the server per host. Records made
// at the same time are written together instead: one transaction for the
// batch, one version bump and one wake-up per operation, and one audit
// entry per operation, phase and wave that names every host's record:
//
//	op.steps_dispatched v1 (2026-12-03): {"phase", "wave", "count",
//	  "steps": [{"host", "step_id"}]} — each recorded before it was sent.
//	op.step_results v1 (2026-12-03): {"phase", "wave", "count", "results":
//	  [{"host", "step_id", "state", "exit_code", "error", "output_sha256"}]}
//	  — output_sha256 is the SHA-256 of the output stored with the step.
//
// They replace op.step_dispatched and op.step_result (one entry per host).
// Each host's record is still in the log (a batch entry is split to stay
// well under the entry limit), so every host's result can be checked
// against the log, its stored output by its digest. A record still commits
// before its step is sent, or before its result counts: the caller waits
// for the batch's commit.

// maxBatch bounds the records one transaction writes.
const maxBatch = 512

// maxEntryData is the size (bytes of Data) at which a batch entry is
// split: well under audit.MaxLeafSize.
const maxEntryData = 40 << 10

// stepWrite is one step record waiting to be written.
type stepWrite struct {
	rec StepRecord
	// from is the state an existing record must be in (compare-and-set);
	// "" inserts a new record.
	from ops.StepState
	done chan error
}

// dispatched reports whether w records a step as sent (not a result).
func (w *stepWrite) dispatched() bool { return w.rec.State == ops.StepDispatched }

type stepWriter struct {
	mu      sync.Mutex
	queue   []*stepWrite
	leading bool
}

// writeStep records rec (inserted when from is "", else moved from state
// from) with its audit entry, batched with the records other goroutines
// write at the same time, and returns once the batch has committed (or
// failed: then the record was not written). It returns an error wrapping
// ErrStepExists or ErrStepState like Tx.InsertExecStep and
// Tx.UpdateExecStep.
func (e *Engine) writeStep(ctx context.Context, rec StepRecord, from ops.StepState) error {
	w := &stepWrite{rec: rec, from: from, done: make(chan error, 1)}
	sw := &e.writer
	sw.mu.Lock()
	sw.queue = append(sw.queue, w)
	lead := !sw.leading
	sw.leading = true
	sw.mu.Unlock()
	if lead {
		go e.leadWrites(context.WithoutCancel(ctx))
	}
	return <-w.done
}

// DefaultRecordLinger is the server's Config.RecordLinger.
const DefaultRecordLinger = 5 * time.Millisecond

// leadWrites writes queued records, a batch at a time, until none is left.
// A batch smaller than a quarter of maxBatch first waits RecordLinger for
// more.
func (e *Engine) leadWrites(ctx context.Context) {
	sw := &e.writer
	for {
		sw.mu.Lock()
		if e.cfg.RecordLinger > 0 && len(sw.queue) < maxBatch/4 {
			sw.mu.Unlock()
			time.Sleep(e.cfg.RecordLinger)
			sw.mu.Lock()
		}
		n := min(len(sw.queue), maxBatch)
		if n == 0 {
			sw.leading = false
			sw.mu.Unlock()
			return
		}
		batch := sw.queue[:n:n]
		sw.queue = sw.queue[n:]
		sw.mu.Unlock()
		e.writeBatch(ctx, batch)
	}
}

// writeBatch writes batch in one transaction. If that fails (a record
// already there, a conflict with another server), each record is written
// again in a transaction of its own, so one bad record fails nobody else.
func (e *Engine) writeBatch(ctx context.Context, batch []*stepWrite) {
	batch = e.dropStopped(ctx, batch)
	if len(batch) == 0 {
		return
	}
	err := e.cfg.Store.InTx(ctx, func(tx Tx) error { return e.recordBatch(ctx, tx, batch) })
	if err == nil || len(batch) == 1 {
		e.announceBatch(batch, err)
		e.answer(ctx, batch, err)
		return
	}
	for _, w := range batch {
		one := []*stepWrite{w}
		err := e.cfg.Store.InTx(ctx, func(tx Tx) error { return e.recordBatch(ctx, tx, one) })
		e.announceBatch(one, err)
		e.answer(ctx, one, err)
	}
}

// errStoppedAfterRecord answers a dispatch whose record committed while,
// or after, its operation stopped: the step must not leave, and its record
// goes back to pending (dispatchOne).
var errStoppedAfterRecord = errors.New("the operation stopped before the dispatch record committed")

// answer tells batch's writers how their write ended (err). The state
// dropStopped read was read before the batch's transaction began, and a
// halt or abort can commit while a batch of hundreds of records is
// written (on another server, or here before the kill switch cancels the
// run): so once the dispatch records have committed the state is read
// again, once per operation, and a dispatch is answered nil (send it) only
// if its operation was still running after its record committed. A halt
// committed before that read is therefore never followed by a step.
func (e *Engine) answer(ctx context.Context, batch []*stepWrite, err error) {
	sr, ok := e.cfg.Ops.(opStateReader)
	if err != nil || !ok {
		for _, w := range batch {
			w.done <- err
		}
		return
	}
	verdict := map[string]error{}
	for _, w := range batch {
		if !w.dispatched() {
			w.done <- nil
			continue
		}
		v, done := verdict[w.rec.OpID]
		if !done {
			st, rerr := sr.State(ctx, w.rec.OpID)
			switch {
			case rerr != nil:
				v = fmt.Errorf("%w (its state could not be read again: %v)", errStoppedAfterRecord, rerr)
			case st != ops.OpRunning:
				v = errStoppedAfterRecord
			}
			verdict[w.rec.OpID] = v
		}
		w.done <- v
	}
}

// dropStopped re-reads, once per operation, the state of every operation
// batch would record a dispatch for (invariant 3: nothing is sent unless
// its operation is running, read again just before its record commits),
// answers errStopped to the dispatches of an operation no longer running
// and returns the rest. One read per batch replaces one per host.
func (e *Engine) dropStopped(ctx context.Context, batch []*stepWrite) []*stepWrite {
	sr, ok := e.cfg.Ops.(opStateReader)
	if !ok {
		return batch // dispatchOne re-read the whole operation itself
	}
	verdict := map[string]error{}
	for _, w := range batch {
		if !w.dispatched() {
			continue
		}
		if _, done := verdict[w.rec.OpID]; done {
			continue
		}
		st, err := sr.State(ctx, w.rec.OpID)
		switch {
		case err != nil:
			verdict[w.rec.OpID] = fmt.Errorf("load op %s: %w", w.rec.OpID, err)
		case st != ops.OpRunning:
			verdict[w.rec.OpID] = errStopped
		default:
			verdict[w.rec.OpID] = nil
		}
	}
	keep := batch[:0:0]
	for _, w := range batch {
		if err := verdict[w.rec.OpID]; err != nil && w.dispatched() {
			w.done <- err
			continue
		}
		keep = append(keep, w)
	}
	return keep
}

// announceBatch wakes the watchers of every operation batch changed.
func (e *Engine) announceBatch(batch []*stepWrite, err error) {
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, w := range batch {
		if !seen[w.rec.OpID] {
			seen[w.rec.OpID] = true
			e.notify(w.rec.OpID)
		}
	}
}

// entryGroup is the records of one audit entry: one operation, phase,
// wave, and kind.
type entryGroup struct {
	op, phase string
	wave      int
	results   bool
}

// recordBatch writes batch's records, bumps each operation's version once
// and appends the batch entries, in tx.
func (e *Engine) recordBatch(ctx context.Context, tx Tx, batch []*stepWrite) error {
	var order []entryGroup
	groups := map[entryGroup][]map[string]any{}
	sizes := map[entryGroup]int{}
	var bumped []string
	flush := func(g entryGroup) error {
		items := groups[g]
		if len(items) == 0 {
			return nil
		}
		kind, list := "op.steps_dispatched", "steps"
		if g.results {
			kind, list = "op.step_results", "results"
		}
		groups[g], sizes[g] = nil, 0
		return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: SystemActor, Subject: "op:" + g.op, Time: e.cfg.Now(),
			Data: map[string]any{"phase": g.phase, "wave": g.wave, "count": len(items), list: items}})
	}
	for _, w := range batch {
		r := w.rec
		if w.from == "" {
			if err := tx.InsertExecStep(ctx, r); err != nil {
				return err
			}
		} else if err := tx.UpdateExecStep(ctx, r, w.from); err != nil {
			return err
		}
		if !slices.Contains(bumped, r.OpID) {
			bumped = append(bumped, r.OpID)
		}
		g := entryGroup{op: r.OpID, phase: r.Phase, wave: r.Wave, results: !w.dispatched()}
		item := map[string]any{"host": r.HostID, "step_id": r.StepID}
		size := len(r.HostID) + len(r.StepID) + 32
		if g.results {
			sum := sha256.Sum256([]byte(r.Output))
			item["state"], item["exit_code"], item["error"], item["output_sha256"] = string(r.State), r.ExitCode, r.Error, hex.EncodeToString(sum[:])
			size += len(r.Error)*6 + 160 // escaped, a byte of an error may take six
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		if sizes[g]+size > maxEntryData {
			if err := flush(g); err != nil {
				return err
			}
		}
		groups[g] = append(groups[g], item)
		sizes[g] += size
	}
	for _, op := range bumped {
		if _, err := tx.BumpExecVersion(ctx, op); err != nil {
			return err
		}
	}
	for _, g := range order {
		if err := flush(g); err != nil {
			return err
		}
	}
	return nil
}

// LoggedStep is one host's step record as a log entry states it.
type LoggedStep struct {
	Host   string `json:"host"`
	Phase  string `json:"phase"`
	Wave   int    `json:"wave"`
	StepID string `json:"step_id"`
	// Result is false for a dispatch (the step was recorded as sent).
	Result       bool   `json:"-"`
	State        string `json:"state"`
	ExitCode     int    `json:"exit_code"`
	Error        string `json:"error"`
	OutputSHA256 string `json:"output_sha256"`
}

// LoggedSteps returns the host records an entry of kind states, from
// its Data: every host of a batch entry (op.steps_dispatched,
// op.step_results), the one host of a per-host entry (op.step_dispatched,
// op.step_result as written before batches), and nothing for other kinds.
func LoggedSteps(kind string, data []byte) ([]LoggedStep, error) {
	switch kind {
	case "op.step_dispatched", "op.step_result":
		var s LoggedStep
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kind, err)
		}
		s.Result = kind == "op.step_result"
		return []LoggedStep{s}, nil
	case "op.steps_dispatched", "op.step_results":
		var b struct {
			Phase   string       `json:"phase"`
			Wave    int          `json:"wave"`
			Steps   []LoggedStep `json:"steps"`
			Results []LoggedStep `json:"results"`
		}
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kind, err)
		}
		out := b.Steps
		if kind == "op.step_results" {
			out = b.Results
		}
		for i := range out {
			out[i].Phase, out[i].Wave, out[i].Result = b.Phase, b.Wave, kind == "op.step_results"
		}
		return out, nil
	}
	return nil, nil
}
