// Package detect finds signs of shared credentials and misuse in the
// audit log: one person's sessions used from two devices or two addresses
// within an interval no one person needs, a device key used after its
// person was disabled, a sign-in at an hour unusual for that person, and
// many refusals from one person. The rules are data ([Rule], [DefaultRules]);
// the [Detector] reads log entries in index order ([Event]) and returns
// [Alert]s that name their evidence by log index, so that an alert can be
// checked against the signed log by anyone.
//
// It imports nothing of the server: internal/app feeds it the integrated
// log and records each alert as a detect.alert entry with a metric.
package detect

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// KindAlert is the audit kind of an alert (pinned in
// internal/cli/testdata/audit_kinds.golden). v1 (2026-12-03): Data rule,
// evidence (log indexes), detail (a sentence); Actor "system"; Subject
// the person's actor.
const KindAlert = "detect.alert"

// Event is one log entry as rules see it.
type Event struct {
	Index    uint64
	Kind     string
	Actor    string // "person:<id>"; rules ignore other actors
	Time     time.Time
	Device   string // device id, for session.seen, identity.login, session.refused
	SourceIP string // for session.seen and identity.login (a personal field; "" once erased)
	Count    int    // refusals an entry stands for (authz.denied 1, authz.denied_repeats its count)
}

// Match names how a rule reads its events.
type Match string

const (
	// MatchDistinct alerts when the actor's events within Window carry at
	// least Threshold distinct values of Field.
	MatchDistinct Match = "distinct"
	// MatchAny alerts on every event of the rule's kinds.
	MatchAny Match = "any"
	// MatchCount alerts when the actor's events within Window add up to
	// at least Threshold (by Event.Count).
	MatchCount Match = "count"
	// MatchUnusualHour alerts when an event falls in an hour of the day
	// (UTC, ±1 hour) in which none of the actor's last events fell, once
	// the actor has at least Threshold earlier events.
	MatchUnusualHour Match = "unusual-hour"
)

// Rule is one detection rule.
type Rule struct {
	Name      string
	Kinds     []string // the entry kinds it reads
	Match     Match
	Field     string // "device" or "source_ip", for MatchDistinct
	Window    time.Duration
	Threshold int
	// Detail is the alert's sentence; %s is the person's actor.
	Detail string
}

// DefaultRules are the rules the server runs.
var DefaultRules = []Rule{
	{Name: "shared-credential.devices", Kinds: []string{"session.seen", "identity.login"}, Match: MatchDistinct, Field: "device",
		Window: 2 * time.Minute, Threshold: 2,
		Detail: "%s's sessions were used from %d devices within %s; one person rarely does that, a shared or copied credential does"},
	{Name: "shared-credential.addresses", Kinds: []string{"session.seen", "identity.login"}, Match: MatchDistinct, Field: "source_ip",
		Window: 2 * time.Minute, Threshold: 2,
		Detail: "%s's sessions were used from %d addresses within %s; one person rarely does that, a shared or copied credential does"},
	{Name: "disabled-device-used", Kinds: []string{"session.refused"}, Match: MatchAny,
		Detail: "a device key of %s was used after the account was disabled"},
	{Name: "unusual-hour", Kinds: []string{"identity.login"}, Match: MatchUnusualHour, Threshold: 10,
		Detail: "%s signed in at an hour of the day at which none of their last sign-ins happened"},
	{Name: "many-refusals", Kinds: []string{"authz.denied", "authz.denied_repeats"}, Match: MatchCount,
		Window: 10 * time.Minute, Threshold: 20,
		Detail: "%s was refused %d times within %s"},
}

// Alert is one finding.
type Alert struct {
	Rule     string
	Actor    string
	Evidence []uint64 // log indexes, ascending
	Detail   string
	At       time.Time // the time of the last evidence entry
}

// maxHistory bounds the events kept per person and rule.
const maxHistory = 200

// Detector applies rules to events, one at a time, in log order. It is
// not safe for concurrent use.
type Detector struct {
	rules []Rule
	// recent holds, per rule and actor, the events within the rule's
	// window (for unusual-hour, the last maxHistory sign-ins).
	recent map[string]map[string][]Event
	// quietUntil suppresses a rule for an actor after it alerted, for
	// the rule's window, so one burst makes one alert.
	quietUntil map[string]time.Time
}

// New returns a Detector running rules.
func New(rules []Rule) (*Detector, error) {
	for _, r := range rules {
		switch r.Match {
		case MatchDistinct:
			if r.Field != "device" && r.Field != "source_ip" {
				return nil, fmt.Errorf("rule %s: field %q is neither device nor source_ip", r.Name, r.Field)
			}
			if r.Threshold < 2 || r.Window <= 0 {
				return nil, fmt.Errorf("rule %s: a distinct rule needs a window and a threshold of at least 2", r.Name)
			}
		case MatchCount, MatchUnusualHour:
			if r.Threshold < 1 || (r.Match == MatchCount && r.Window <= 0) {
				return nil, fmt.Errorf("rule %s: needs a threshold (and, to count, a window)", r.Name)
			}
		case MatchAny:
		default:
			return nil, fmt.Errorf("rule %s: unknown match %q", r.Name, r.Match)
		}
	}
	return &Detector{rules: slices.Clone(rules), recent: map[string]map[string][]Event{}, quietUntil: map[string]time.Time{}}, nil
}

// Observe takes the next event in log order and returns the alerts it raises.
func (d *Detector) Observe(e Event) []Alert {
	if !strings.HasPrefix(e.Actor, "person:") {
		return nil
	}
	var out []Alert
	for _, r := range d.rules {
		if !slices.Contains(r.Kinds, e.Kind) {
			continue
		}
		if a, ok := d.apply(r, e); ok {
			key := r.Name + "|" + e.Actor
			if e.Time.Before(d.quietUntil[key]) {
				continue
			}
			d.quietUntil[key] = e.Time.Add(max(r.Window, time.Minute))
			out = append(out, a)
		}
	}
	return out
}

func (d *Detector) history(r Rule, actor string) []Event {
	if d.recent[r.Name] == nil {
		d.recent[r.Name] = map[string][]Event{}
	}
	return d.recent[r.Name][actor]
}

func (d *Detector) keep(r Rule, actor string, es []Event) {
	if len(es) > maxHistory {
		es = es[len(es)-maxHistory:]
	}
	d.recent[r.Name][actor] = es
}

func indexes(es []Event) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Index
	}
	return out
}

func (d *Detector) apply(r Rule, e Event) (Alert, bool) {
	alert := func(evidence []Event, args ...any) (Alert, bool) {
		return Alert{Rule: r.Name, Actor: e.Actor, Evidence: indexes(evidence), At: e.Time,
			Detail: fmt.Sprintf(r.Detail, append([]any{e.Actor}, args...)...)}, true
	}
	switch r.Match {
	case MatchAny:
		return alert([]Event{e})
	case MatchDistinct, MatchCount:
		es := append(d.history(r, e.Actor), e)
		cut := 0
		for cut < len(es) && e.Time.Sub(es[cut].Time) > r.Window {
			cut++
		}
		es = es[cut:]
		d.keep(r, e.Actor, es)
		if r.Match == MatchCount {
			n := 0
			for _, x := range es {
				n += max(x.Count, 1)
			}
			if n >= r.Threshold {
				return alert(es, n, r.Window)
			}
			return Alert{}, false
		}
		// The evidence: the latest event of each distinct value.
		last := map[string]Event{}
		for _, x := range es {
			if v := field(x, r.Field); v != "" {
				last[v] = x
			}
		}
		if len(last) < r.Threshold {
			return Alert{}, false
		}
		var ev []Event
		for _, x := range last {
			ev = append(ev, x)
		}
		slices.SortFunc(ev, func(a, b Event) int { return cmp.Compare(a.Index, b.Index) })
		return alert(ev, len(last), r.Window)
	case MatchUnusualHour:
		es := d.history(r, e.Actor)
		d.keep(r, e.Actor, append(es, e))
		if len(es) < r.Threshold {
			return Alert{}, false
		}
		h := e.Time.UTC().Hour()
		for _, x := range es {
			if diff := (x.Time.UTC().Hour() - h + 24) % 24; diff <= 1 || diff >= 23 {
				return Alert{}, false
			}
		}
		return alert([]Event{e})
	}
	return Alert{}, false
}

func field(e Event, name string) string {
	if name == "device" {
		return e.Device
	}
	return e.SourceIP
}
