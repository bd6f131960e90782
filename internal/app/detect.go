package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/detect"
	"github.com/interlock-dev/interlock/internal/store"
)

// misuseDetector feeds the integrated log to detect.Detector and records
// each alert as a detect.alert entry (actor "system", subject the person)
// with the index of the next entry to read, in one transaction, and counts
// it in interlock_misuse_alerts_total{rule}.
type misuseDetector struct {
	db     *store.DB
	now    func() time.Time
	log    *slog.Logger
	alerts *prometheus.CounterVec
	every  time.Duration
	// expire, if set, records grants whose time is up (elevate.Service.ExpireDue);
	// it shares the detector's tick.
	expire func(context.Context) (int, error)
	halted func() string // audit.Log.Refusal
	// cursorAt is when the cursor was last stored.
	cursorAt time.Time
}

// cursorEvery is how often the cursor is stored when no alert is.
const cursorEvery = time.Minute

// warmUp is how many entries before the stored cursor the detector reads
// again at start, without alerting, to rebuild its windows.
const warmUp = 5000

func newMisuseDetector(db *store.DB, now func() time.Time, log *slog.Logger) *misuseDetector {
	return &misuseDetector{db: db, now: now, log: log, every: time.Second,
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "interlock_misuse_alerts_total",
			Help: "Misuse and shared-credential alerts raised by detection rule (each is a detect.alert log entry)."}, []string{"rule"})}
}

func (m *misuseDetector) run(ctx context.Context) {
	d, err := detect.New(detect.DefaultRules)
	if err != nil {
		m.log.ErrorContext(ctx, "misuse detector", slog.String("error", err.Error()))
		return
	}
	next, err := m.db.DetectCursor(ctx)
	if err != nil {
		m.log.ErrorContext(ctx, "misuse detector cursor", slog.String("error", err.Error()))
		return
	}
	// Warm up: rebuild the rules' windows from the entries just before.
	if _, err := m.scan(ctx, d, next-min(next, warmUp), next, false); err != nil {
		m.log.WarnContext(ctx, "misuse detector warm-up", slog.String("error", err.Error()))
	}
	t := time.NewTicker(m.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.halted != nil && m.halted() != "" {
			continue // nothing can be recorded while the log refuses
		}
		if m.expire != nil {
			if _, err := m.expire(ctx); err != nil {
				m.log.ErrorContext(ctx, "record expired grants", slog.String("error", err.Error()))
			}
		}
		ts, err := m.db.AuditStore().TreeState(ctx)
		if err != nil || ts.Size <= next {
			continue
		}
		n, err := m.scan(ctx, d, next, ts.Size, true)
		if err != nil {
			m.log.ErrorContext(ctx, "misuse detector", slog.String("error", err.Error()))
			continue
		}
		next = n
	}
}

// scan reads entries [from, to) into d; with record, it writes the alerts
// and the new cursor. It returns the next index to read.
func (m *misuseDetector) scan(ctx context.Context, d *detect.Detector, from, to uint64, record bool) (uint64, error) {
	const page = 500
	for start := from; start < to; start += page {
		end := min(start+page, to)
		es, err := m.db.AuditStore().Entries(ctx, start, end)
		if err != nil {
			return start, err
		}
		var alerts []detect.Alert
		for _, e := range es {
			alerts = append(alerts, d.Observe(eventOf(e))...)
		}
		// The cursor is stored with each batch of alerts and otherwise at
		// most every cursorEvery: a write transaction a second would hold
		// SQLite's write lock for nothing. After a restart the entries since
		// the stored cursor are read again; an alert raised twice is one
		// entry (its idempotency key names rule, person and evidence).
		if !record || (len(alerts) == 0 && m.now().Sub(m.cursorAt) < cursorEvery) {
			continue
		}
		err = m.db.InTx(ctx, func(tx *store.Tx) error {
			for _, a := range alerts {
				ev := make([]any, len(a.Evidence))
				key := "detect:" + a.Rule + ":" + a.Actor
				for i, x := range a.Evidence {
					ev[i] = x
					key += fmt.Sprintf(":%d", x)
				}
				err := audit.Append(ctx, tx, audit.Entry{Kind: detect.KindAlert, Version: 1, Actor: "system", Subject: a.Actor, Time: m.now(),
					Data: map[string]any{"rule": a.Rule, "evidence": ev, "detail": a.Detail}, IdempotencyKey: key})
				if err != nil && !errors.Is(err, audit.ErrDuplicate) {
					return err
				}
			}
			return tx.PutDetectCursor(ctx, end)
		})
		if err != nil {
			return start, err
		}
		m.cursorAt = m.now()
		for _, a := range alerts {
			m.alerts.WithLabelValues(a.Rule).Inc()
			m.log.WarnContext(ctx, "misuse alert", slog.String("rule", a.Rule), slog.String("person", a.Actor), slog.Any("evidence", a.Evidence))
		}
	}
	return to, nil
}

// eventOf is the part of a log entry the rules read.
func eventOf(e audit.StoredEntry) detect.Event {
	ev := detect.Event{Index: e.Index, Kind: e.Kind, Actor: e.Actor, Time: e.Time, Count: 1}
	var d struct {
		DeviceID string `json:"device_id"`
		Count    int    `json:"count"`
	}
	if json.Unmarshal(e.Data, &d) == nil {
		ev.Device = d.DeviceID
		if d.Count > 0 {
			ev.Count = d.Count
		}
	}
	if fs, err := e.Openings(); err == nil {
		for _, f := range fs {
			if f.Name == "source_ip" {
				ev.SourceIP = f.Value
			}
		}
	}
	return ev
}
