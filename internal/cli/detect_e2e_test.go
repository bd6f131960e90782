package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// indexedEntry is a log entry with its index and actor.
type indexedEntry struct {
	Index   uint64
	Kind    string
	Actor   string
	Subject string
	Data    map[string]json.RawMessage
}

// logByIndex waits until an entry of kind (with Data.rule == rule when
// rule is set) is in the log and returns every entry by index.
func (q *quickstart) logByIndex(kind, rule string) (map[uint64]indexedEntry, []indexedEntry) {
	q.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		all := map[uint64]indexedEntry{}
		var found []indexedEntry
		for _, line := range strings.Split(strings.TrimSpace(q.mustAs("admin", "--json", "log", "tail", "-n", "100000")), "\n") {
			var le wire.LogEntry
			mustJSON(q.t, line, &le)
			var e indexedEntry
			mustJSON(q.t, string(le.Entry), &e)
			e.Index = le.Index
			all[e.Index] = e
			var r string
			_ = json.Unmarshal(e.Data["rule"], &r)
			if e.Kind == kind && (rule == "" || r == rule) {
				found = append(found, e)
			}
		}
		if len(found) > 0 || time.Now().After(deadline) {
			return all, found
		}
	}
}

// TestSharedCredentialAlert: operator1 signs in on a second device and
// both devices are used within a minute; the detector raises one
// shared-credential alert naming the evidence entries by log index (each
// operator1's, from two devices) and counts it on /metrics. Once operator1
// is disabled, their device key used again raises disabled-device-used.
func TestSharedCredentialAlert(t *testing.T) { onBothStores(t, sharedCredentialAlert) }

func sharedCredentialAlert(t *testing.T, store string) {
	q := startServer(t, store)
	q.bootstrapAdmin()
	q.invite("approver1", "approver")
	q.invite("operator1", "operator")
	q.invite("admin2", "admin") // last: with two admins, inviting an approver is a change request
	q.mustAs("operator1", "whoami")
	q.must(password+"\n", append([]string{"--profile", "operator1-copy", "login", "--user", "operator1", "--password-stdin", "--otp", q.otp("operator1")}, q.serverFlags()...)...)
	q.mustAs("operator1-copy", "whoami")
	q.mustAs("operator1", "whoami")

	all, alerts := q.logByIndex("detect.alert", "shared-credential.devices")
	if len(alerts) != 1 {
		t.Fatalf("shared-credential alerts = %d, want 1", len(alerts))
	}
	a := alerts[0]
	var evidence []uint64
	mustJSON(t, string(a.Data["evidence"]), &evidence)
	devices := map[string]bool{}
	for _, i := range evidence {
		e, ok := all[i]
		if !ok || i >= a.Index {
			t.Fatalf("evidence index %d is not an earlier entry of the log", i)
		}
		var dev string
		_ = json.Unmarshal(e.Data["device_id"], &dev)
		if e.Actor != a.Subject || !strings.HasPrefix(e.Actor, "person:") || dev == "" {
			t.Errorf("evidence %d is %s by %s (device %q), want operator1's use of a device", i, e.Kind, e.Actor, dev)
		}
		devices[dev] = true
	}
	if len(devices) != 2 {
		t.Errorf("evidence names devices %v, want 2", devices)
	}
	if m := q.metrics(); !strings.Contains(m, `interlock_misuse_alerts_total{rule="shared-credential.devices"} 1`) {
		t.Errorf("/metrics does not count the alert:\n%s", grepLines(m, "misuse"))
	}

	// operator1 is disabled (admin2 asks, approver1 approves); their
	// device key used again is an alert.
	cr := changeID(t, q.mustAs("admin2", "user", "disable", "operator1"))
	q.mustAs("approver1", "change", "approve", cr, "--yes", "--otp", q.otp("approver1"))
	if code, _, _ := q.as("operator1", "whoami"); code == 0 {
		t.Fatal("a disabled person's session still works")
	}
	_, disabled := q.logByIndex("detect.alert", "disabled-device-used")
	if len(disabled) != 1 {
		t.Fatalf("disabled-device-used alerts = %d, want 1", len(disabled))
	}
	checkEntryLayouts(t, q.auditEntries("detect.alert"))
}
