package app

import (
	"log/slog"
	"testing"

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
