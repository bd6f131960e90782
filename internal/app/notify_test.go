package app

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/interlock-dev/interlock/internal/audit"
)

// TestAnnouncerCountsWhatItCannotAnnounce: a burst of log entries larger
// than the announcer's buffer (thousands of approvals requested at once,
// or an announcer stuck on a slow database) loses notifications before
// any sink sees them; /metrics counts each, so that someone is told that
// people were not.
func TestAnnouncerCountsWhatItCannotAnnounce(t *testing.T) {
	an := &announcer{log: slog.New(slog.DiscardHandler), entries: make(chan audit.StoredEntry, 2), lost: newUnannounced()}
	var es []audit.StoredEntry
	for i := range 5 {
		es = append(es, audit.StoredEntry{Index: uint64(i + 1), Record: audit.Record{Kind: "op.requested", Subject: "op:op_x"}})
	}
	es = append(es, audit.StoredEntry{Index: 6, Record: audit.Record{Kind: "op.step_result", Subject: "op:op_x"}}) // not announced anyway
	an.take(es)
	if got := testutil.ToFloat64(an.lost); got != 3 {
		t.Errorf("interlock_notify_unannounced_total = %v, want 3 (5 announceable entries, room for 2)", got)
	}
}

// TestAnnouncerSurvivesPanic: describing an entry runs on the announcer's
// own goroutine, where a panic (a malformed entry, a bug in a message
// template) would end the whole server and with it every operation in
// flight. A panic loses that one message, counted; the next entries are
// still described.
func TestAnnouncerSurvivesPanic(t *testing.T) {
	// people is nil: describing any entry panics on the way.
	an := &announcer{log: slog.New(slog.DiscardHandler), entries: make(chan audit.StoredEntry, 4), lost: newUnannounced()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); an.run(ctx) }()
	an.take([]audit.StoredEntry{
		{Index: 1, Record: audit.Record{Kind: "op.requested", Subject: "op:op_x", Data: []byte(`{}`)}},
		{Index: 2, Record: audit.Record{Kind: "op.requested", Subject: "op", Data: []byte(`{}`)}},
	})
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(an.lost) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := testutil.ToFloat64(an.lost); got != 2 {
		t.Errorf("interlock_notify_unannounced_total = %v, want 2 (both entries, the announcer still running after the first)", got)
	}
}
