package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/notify"
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

// TestMisuseAlertsAreAnnounced: a detection rule's alert (two devices on
// one account, a disabled person's key…) reaches the sinks as a "misuse"
// message naming the person, the rule and the evidence by log index; a
// detail cannot forge extra lines.
func TestMisuseAlertsAreAnnounced(t *testing.T) {
	an := &announcer{log: slog.New(slog.DiscardHandler), entries: make(chan audit.StoredEntry, 4), lost: newUnannounced()}
	an.take([]audit.StoredEntry{{Index: 9, Record: audit.Record{Kind: "detect.alert", Subject: "person:p_eve"}}})
	if len(an.entries) != 1 {
		t.Fatalf("a detect.alert entry was not queued for announcement")
	}
	ev := misuseEvent(notify.Event{Subject: "person:p_eve", LogIndex: 9}, "eve",
		map[string]any{"rule": "shared-credential.devices", "detail": "two devices\nalice approved", "evidence": []any{4.0, 7.0}})
	if ev.Name != notify.EventMisuse || !strings.Contains(ev.Title, "eve") || !strings.Contains(ev.Title, "shared-credential.devices") {
		t.Errorf("event = %q %q, want a misuse event naming eve and the rule", ev.Name, ev.Title)
	}
	if !strings.Contains(ev.Text, "[4 7]") || strings.Contains(ev.Text, "\nalice approved") {
		t.Errorf("text %q: want the evidence indexes, and the detail on one line", ev.Text)
	}
}
