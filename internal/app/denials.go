package app

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
)

// Kinds the denial log writes (their layouts are pinned in
// internal/cli/testdata/audit_kinds.golden):
//
//   - authz.denied v1 (2026-11-29): the first refusal of an action to a
//     person in a minute, written at once; Data: action, resource_type,
//     resource_id; Personal: source_ip.
//   - authz.denied_repeats v1 (2026-12-03): the further refusals of that
//     action to that person in that minute, written once the minute has
//     closed (or at shutdown); Data: action, count, window_start,
//     window_end, resources (up to maxDeniedResources "Type:ID", sorted),
//     resources_omitted; Personal: source_ips (comma-separated, up to
//     maxDeniedSources).
//
// Every refusal is in one of them: the authz.denied entries plus the sum
// of the repeats' counts is the number of refusals.
const (
	kindDenied        = "authz.denied"
	kindDeniedRepeats = "authz.denied_repeats"
)

const (
	maxDeniedResources = 20
	maxDeniedSources   = 20
	// denialFlushEvery is how often closed minutes are written.
	denialFlushEvery = 10 * time.Second
)

// denialLog records refused authorizations in the audit log without
// letting a refusal loop fill it: one entry per person, action and minute
// at once, and one entry with the count of the rest. A refusal changes
// nothing else, so each write is its own transaction.
type denialLog struct {
	db    *store.DB
	now   func() time.Time
	log   *slog.Logger
	count prometheus.Counter // every refusal, aggregated or not

	mu      sync.Mutex
	windows map[denialKey]*denialWindow
}

type denialKey struct {
	actor, action string
	minute        int64 // Unix seconds of the minute's start
}

// denialWindow is one person, action and minute.
type denialWindow struct {
	repeats   int // refusals after the first, not yet written
	resources map[string]bool
	sources   map[string]bool
}

func newDenialLog(db *store.DB, now func() time.Time, count prometheus.Counter, log *slog.Logger) *denialLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &denialLog{db: db, now: now, count: count, log: log, windows: map[denialKey]*denialWindow{}}
}

// RecordDenial implements api.DenialRecorder.
func (d *denialLog) RecordDenial(ctx context.Context, p wire.Principal, action string, res api.Resource, sourceIP string) error {
	d.count.Inc()
	now := d.now()
	key := denialKey{actor: p.Actor(), action: action, minute: now.Truncate(time.Minute).Unix()}
	d.mu.Lock()
	if w := d.windows[key]; w != nil {
		w.add(res, sourceIP)
		d.mu.Unlock()
		return nil
	}
	d.windows[key] = &denialWindow{resources: map[string]bool{}, sources: map[string]bool{}}
	closed := d.takeClosed(now, func(k denialKey) bool { return k.actor == key.actor && k.action == key.action })
	d.mu.Unlock()

	first := audit.Entry{Kind: kindDenied, Version: 1, Actor: key.actor, Subject: res.Type + ":" + res.ID, Time: now,
		Data:     map[string]any{"action": action, "resource_type": res.Type, "resource_id": res.ID},
		Personal: map[string]string{"source_ip": sourceIP}}
	err := d.db.InTx(ctx, func(tx *store.Tx) error {
		for _, k := range sortedKeys(closed) {
			if err := audit.Append(ctx, tx, repeatsEntry(k, closed[k], now)); err != nil {
				return err
			}
		}
		return audit.Append(ctx, tx, first)
	})
	if err != nil {
		// Count the refusal (and give back the closed minutes) so that the
		// next flush records it: nothing is lost to a failed write.
		d.mu.Lock()
		d.restore(closed)
		d.restore(map[denialKey]*denialWindow{key: {repeats: 1, resources: map[string]bool{res.Type + ":" + res.ID: true}, sources: map[string]bool{sourceIP: true}}})
		d.mu.Unlock()
	}
	return err
}

func (w *denialWindow) add(res api.Resource, sourceIP string) {
	w.repeats++
	w.resources[res.Type+":"+res.ID] = true
	w.sources[sourceIP] = true
}

// takeClosed removes and returns the windows of minutes before now's that
// match; the caller holds d.mu. Windows without repeats are dropped.
func (d *denialLog) takeClosed(now time.Time, match func(denialKey) bool) map[denialKey]*denialWindow {
	current := now.Truncate(time.Minute).Unix()
	out := map[denialKey]*denialWindow{}
	for k, w := range d.windows {
		if k.minute >= current || !match(k) {
			continue
		}
		delete(d.windows, k)
		if w.repeats > 0 {
			out[k] = w
		}
	}
	return out
}

// restore merges windows back after a failed write; the caller holds d.mu.
func (d *denialLog) restore(ws map[denialKey]*denialWindow) {
	for k, w := range ws {
		cur := d.windows[k]
		if cur == nil {
			d.windows[k] = w
			continue
		}
		cur.repeats += w.repeats
		for r := range w.resources {
			cur.resources[r] = true
		}
		for s := range w.sources {
			cur.sources[s] = true
		}
	}
}

// flush writes the repeats of closed minutes, or of every minute when all
// is set (at shutdown). Windows whose write fails stay for the next flush.
func (d *denialLog) flush(ctx context.Context, all bool) error {
	now := d.now()
	d.mu.Lock()
	if all {
		now = now.Add(time.Minute) // every window counts as closed
	}
	closed := d.takeClosed(now, func(denialKey) bool { return true })
	d.mu.Unlock()
	if len(closed) == 0 {
		return nil
	}
	err := d.db.InTx(ctx, func(tx *store.Tx) error {
		for _, k := range sortedKeys(closed) {
			if err := audit.Append(ctx, tx, repeatsEntry(k, closed[k], d.now())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		d.mu.Lock()
		d.restore(closed)
		d.mu.Unlock()
	}
	return err
}

// run flushes closed minutes every denialFlushEvery until ctx ends.
func (d *denialLog) run(ctx context.Context) {
	t := time.NewTicker(denialFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.flush(ctx, false); err != nil && ctx.Err() == nil {
				d.log.ErrorContext(ctx, "record repeated authorization denials; will retry", slog.String("error", err.Error()))
			}
		}
	}
}

func repeatsEntry(k denialKey, w *denialWindow, now time.Time) audit.Entry {
	resources := sortedSet(w.resources)
	omitted := 0
	if len(resources) > maxDeniedResources {
		omitted = len(resources) - maxDeniedResources
		resources = resources[:maxDeniedResources]
	}
	sources := sortedSet(w.sources)
	if len(sources) > maxDeniedSources {
		sources = sources[:maxDeniedSources]
	}
	start := time.Unix(k.minute, 0).UTC()
	return audit.Entry{Kind: kindDeniedRepeats, Version: 1, Actor: k.actor, Subject: "action:" + k.action, Time: now,
		Data: map[string]any{"action": k.action, "count": w.repeats,
			"window_start": start.Format(time.RFC3339), "window_end": start.Add(time.Minute).Format(time.RFC3339),
			"resources": resources, "resources_omitted": omitted},
		Personal: map[string]string{"source_ips": strings.Join(sources, ",")}}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[denialKey]*denialWindow) []denialKey {
	out := make([]denialKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.minute != b.minute {
			return a.minute < b.minute
		}
		if a.actor != b.actor {
			return a.actor < b.actor
		}
		return a.action < b.action
	})
	return out
}
