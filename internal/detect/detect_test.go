package detect

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// TestDefaultRules feeds each rule the events that must raise it and the
// near misses that must not, and checks the evidence indexes.
func TestDefaultRules(t *testing.T) {
	seen := func(i uint64, actor, dev, ip string, d time.Duration) Event {
		return Event{Index: i, Kind: "session.seen", Actor: actor, Device: dev, SourceIP: ip, Time: at(d)}
	}
	logins := func(n int, hour int) []Event {
		var es []Event
		for i := range n {
			es = append(es, Event{Index: uint64(100 + i), Kind: "identity.login", Actor: "person:p1", Device: "d1", SourceIP: "10.0.0.1",
				Time: time.Date(2026, 11, 1+i, hour, 30, 0, 0, time.UTC)})
		}
		return es
	}
	for _, tc := range []struct {
		name   string
		events []Event
		want   map[string][]uint64 // rule → evidence of its one alert
	}{
		{"two devices within a minute", []Event{seen(1, "person:p1", "d1", "10.0.0.1", 0), seen(2, "person:p1", "d2", "10.0.0.1", 50*time.Second)},
			map[string][]uint64{"shared-credential.devices": {1, 2}}},
		{"two devices hours apart", []Event{seen(1, "person:p1", "d1", "10.0.0.1", 0), seen(2, "person:p1", "d2", "10.0.0.1", 3*time.Hour)}, nil},
		{"two people, one device each", []Event{seen(1, "person:p1", "d1", "10.0.0.1", 0), seen(2, "person:p2", "d2", "10.0.0.1", time.Second)}, nil},
		{"two addresses within a minute", []Event{seen(1, "person:p1", "d1", "10.0.0.1", 0), seen(2, "person:p1", "d1", "192.0.2.7", 30*time.Second)},
			map[string][]uint64{"shared-credential.addresses": {1, 2}}},
		{"a burst alerts once", []Event{seen(1, "person:p1", "d1", "a", 0), seen(2, "person:p1", "d2", "a", time.Second), seen(3, "person:p1", "d1", "a", 2*time.Second),
			seen(4, "person:p1", "d2", "a", 3*time.Second)}, map[string][]uint64{"shared-credential.devices": {1, 2}}},
		{"agents are not people", []Event{seen(1, "agent:h1", "d1", "a", 0), seen(2, "agent:h1", "d2", "b", time.Second)}, nil},
		{"disabled person's device", []Event{{Index: 7, Kind: "session.refused", Actor: "person:p1", Device: "d1", Time: at(0)}},
			map[string][]uint64{"disabled-device-used": {7}}},
		{"sign-in at an unusual hour", append(logins(10, 9), Event{Index: 200, Kind: "identity.login", Actor: "person:p1", Device: "d1", SourceIP: "10.0.0.1",
			Time: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}), map[string][]uint64{"unusual-hour": {200}}},
		{"sign-in at a usual hour", append(logins(10, 9), Event{Index: 200, Kind: "identity.login", Actor: "person:p1", Device: "d1", SourceIP: "10.0.0.1",
			Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}), nil},
		{"too little history to judge", append(logins(5, 9), Event{Index: 200, Kind: "identity.login", Actor: "person:p1", Device: "d1", SourceIP: "10.0.0.1",
			Time: time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)}), nil},
		{"many refusals", []Event{{Index: 1, Kind: "authz.denied", Actor: "person:p1", Count: 1, Time: at(0)},
			{Index: 5, Kind: "authz.denied_repeats", Actor: "person:p1", Count: 19, Time: at(time.Minute)}},
			map[string][]uint64{"many-refusals": {1, 5}}},
		{"refusals spread out", []Event{{Index: 1, Kind: "authz.denied", Actor: "person:p1", Count: 1, Time: at(0)},
			{Index: 5, Kind: "authz.denied_repeats", Actor: "person:p1", Count: 19, Time: at(time.Hour)}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(DefaultRules)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]uint64{}
			for _, e := range tc.events {
				for _, a := range d.Observe(e) {
					if got[a.Rule] != nil {
						t.Errorf("rule %s alerted twice", a.Rule)
					}
					got[a.Rule] = a.Evidence
					if a.Detail == "" || a.Actor != e.Actor {
						t.Errorf("alert %+v lacks a detail or names the wrong person", a)
					}
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("alerts = %v, want %v", got, tc.want)
			}
			for r, ev := range tc.want {
				if !slices.Equal(got[r], ev) {
					t.Errorf("rule %s evidence = %v, want %v", r, got[r], ev)
				}
			}
		})
	}
}

func TestNewRefusesBadRules(t *testing.T) {
	for _, r := range []Rule{
		{Name: "x", Match: MatchDistinct, Field: "colour", Window: time.Minute, Threshold: 2},
		{Name: "x", Match: MatchDistinct, Field: "device", Threshold: 2},
		{Name: "x", Match: MatchCount, Threshold: 3},
		{Name: "x", Match: "sometimes"},
	} {
		if _, err := New([]Rule{r}); err == nil {
			t.Errorf("New accepted %+v", r)
		}
	}
}
