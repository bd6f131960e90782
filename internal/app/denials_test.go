package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// deniedCounts sums, per actor, the refusals the log's entries record and
// counts the entries.
func deniedCounts(t *testing.T, db *store.DB) (entries map[string]int, refusals map[string]int) {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT kind, actor, data FROM audit_entries WHERE kind IN ('authz.denied', 'authz.denied_repeats')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	entries, refusals = map[string]int{}, map[string]int{}
	for rows.Next() {
		var kind, actor string
		var data []byte
		if err := rows.Scan(&kind, &actor, &data); err != nil {
			t.Fatal(err)
		}
		var d struct{ Count int }
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		entries[actor]++
		if kind == "authz.denied" {
			refusals[actor]++
		} else {
			refusals[actor] += d.Count
		}
	}
	return entries, refusals
}

// TestDenialsAggregatePerPersonActionAndMinute: repeats within a minute
// are counted, written once the minute closes — by the flusher or by the
// next refusal after it — and at shutdown; the metric counts every one.
func TestDenialsAggregatePerPersonActionAndMinute(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
			counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "denied"})
			d := newDenialLog(db, func() time.Time { return now }, counter, nil)
			mallory := wire.Principal{Kind: "person", ID: "p-mallory"}
			eve := wire.Principal{Kind: "person", ID: "p-eve"}
			deny := func(p wire.Principal, n int) {
				for i := range n {
					if err := d.RecordDenial(ctx, p, "user.invite", api.Resource{Type: "System", ID: "interlock"}, "192.0.2.1"); err != nil {
						t.Fatal(err)
					}
					now = now.Add(time.Millisecond * time.Duration(1+i%3))
				}
			}
			deny(mallory, 100)
			deny(eve, 3)
			if entries, _ := deniedCounts(t, db); entries["person:p-mallory"] != 1 || entries["person:p-eve"] != 1 {
				t.Fatalf("within the minute: entries %v, want the first refusal of each person", entries)
			}
			// The flusher leaves an open minute alone.
			if err := d.flush(ctx, false); err != nil {
				t.Fatal(err)
			}
			if entries, _ := deniedCounts(t, db); entries["person:p-mallory"] != 1 {
				t.Fatalf("after flushing an open minute: entries %v", entries)
			}
			// The next minute: mallory's first refusal also writes the closed
			// minute's repeats; the flusher writes eve's.
			now = now.Add(time.Minute)
			deny(mallory, 50)
			if entries, refusals := deniedCounts(t, db); entries["person:p-mallory"] != 3 || refusals["person:p-mallory"] != 101 {
				t.Fatalf("after the minute closed: entries %v refusals %v, want mallory's 100 in 2 entries plus the new first", entries, refusals)
			}
			if err := d.flush(ctx, false); err != nil {
				t.Fatal(err)
			}
			if _, refusals := deniedCounts(t, db); refusals["person:p-eve"] != 3 {
				t.Fatalf("eve's refusals after the flush: %v, want 3", refusals)
			}
			// Shutdown writes the open minute too.
			if err := d.flush(ctx, true); err != nil {
				t.Fatal(err)
			}
			entries, refusals := deniedCounts(t, db)
			if refusals["person:p-mallory"] != 150 || entries["person:p-mallory"] != 4 {
				t.Errorf("after shutdown: mallory %d refusals in %d entries, want 150 in 4", refusals["person:p-mallory"], entries["person:p-mallory"])
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(counter)
			mfs, err := reg.Gather()
			if err != nil || len(mfs) != 1 {
				t.Fatalf("gather the metric: %v", err)
			}
			if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 153 {
				t.Errorf("metric counted %v refusals, want 153", got)
			}
		})
	}
}
