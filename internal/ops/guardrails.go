package ops

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Guardrail rule names, as they appear in Verdict.Rule.
const (
	RuleCapacityFloor = "capacity_floor"
	RuleBlastRadius   = "blast_radius"
	RuleFreeze        = "freeze"
	RuleOneAtATime    = "one_at_a_time"
	RuleUnusualInput  = "unusual_input"
)

// DefaultUnusualFactor: a numeric parameter more than this many times the
// largest value a runbook has used needs an extra approval and a confirmation.
const DefaultUnusualFactor = 3

// Check is what Evaluate judges.
type Check struct {
	Plan Plan
	// Self is the operation being judged ("" for a new plan); its own
	// hosts and its own entry in the active operations are not "others".
	Self string
	// Removing lists the hosts counted as leaving service. nil means the
	// plan's default: every targeted host when the runbook removes
	// capacity, otherwise its largest wave (hosts are down one wave at a time).
	Removing []string
	// IntParams names the plan's numeric parameters; History holds the
	// largest value this runbook has used for each (absent: no history).
	IntParams []string
	History   map[string]int64
	// Confirm holds values the operator typed again (--confirm k=v).
	Confirm map[string]string
	// UnusualFactor <= 0 means DefaultUnusualFactor.
	UnusualFactor int64
}

// Evaluation is every guardrail's verdict on one plan.
type Evaluation struct {
	Verdicts []Verdict
	// Unusual names parameters far outside this runbook's history: each
	// needs one extra approval.
	Unusual []string
	// NeedsConfirm names unusual parameters whose value was not typed again.
	NeedsConfirm []string
}

// Allowed reports whether every verdict passed.
func (e Evaluation) Allowed() bool {
	for _, v := range e.Verdicts {
		if !v.Pass {
			return false
		}
	}
	return true
}

// Evaluate runs every guardrail against c.Plan on inv, in a stable order:
// capacity floors, blast radius, freezes, one-at-a-time, unusual input.
func Evaluate(inv *Inventory, c Check) Evaluation {
	removing := c.Removing
	if removing == nil {
		removing = defaultRemoving(c.Plan)
	}
	var e Evaluation
	e.Verdicts = append(e.Verdicts, CapacityFloors(inv, c.Plan, removing, c.Self)...)
	e.Verdicts = append(e.Verdicts, BlastRadius(inv, c.Plan)...)
	e.Verdicts = append(e.Verdicts, Freezes(inv, c.Plan)...)
	e.Verdicts = append(e.Verdicts, OneAtATime(inv, c.Plan, c.Self)...)
	vs, unusual, confirm := UnusualInput(c.Plan, c.IntParams, c.History, c.Confirm, c.UnusualFactor)
	e.Verdicts = append(e.Verdicts, vs...)
	e.Unusual, e.NeedsConfirm = unusual, confirm
	return e
}

func defaultRemoving(p Plan) []string {
	if p.RemovesCapacity {
		return p.Hosts()
	}
	var largest []string
	for _, w := range p.Waves {
		if len(w.Hosts) > len(largest) {
			largest = w.Hosts
		}
	}
	return largest
}

// WaveRemoving is what is down during wave n (1-based) of p: every host of
// waves 1..n when p removes capacity, otherwise the hosts of wave n.
func WaveRemoving(p Plan, n int) []string {
	var out []string
	for _, w := range p.Waves {
		if w.Number == n || (p.RemovesCapacity && w.Number < n) {
			out = append(out, w.Hosts...)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// serviceOrder lists p.Services with the runbook's own service first.
func serviceOrder(p Plan) []string {
	out := make([]string, 0, len(p.Services))
	for _, s := range p.Services {
		if s == p.Service {
			out = append(out, s)
		}
	}
	for _, s := range p.Services {
		if s != p.Service {
			out = append(out, s)
		}
	}
	return out
}

// CapacityFloors checks, for every service any targeted host serves, that
// its healthy in-service hosts minus those removing and minus those held by
// other operations stay at or above its floor.
func CapacityFloors(inv *Inventory, p Plan, removing []string, self string) []Verdict {
	rm := make(map[string]bool, len(removing))
	for _, id := range removing {
		rm[id] = true
	}
	held := inv.held(self)
	var out []Verdict
	for _, s := range serviceOrder(p) {
		svc := inv.services[s]
		if svc.MinHealthy.IsZero() {
			continue
		}
		hosts := inv.byService[s]
		total := len(hosts)
		floor := svc.MinHealthy.Floor(total)
		var healthy, heldN, removed int
		for _, h := range hosts {
			if !inv.Available(h) {
				continue
			}
			healthy++
			switch {
			case rm[h.ID]:
				removed++
			case held[h.ID] != "":
				heldN++
			}
		}
		after := healthy - heldN - removed
		floorText := svc.MinHealthy.describe(floor)
		if after >= floor {
			out = append(out, Verdict{Rule: RuleCapacityFloor, Service: s, Pass: true,
				Message: fmt.Sprintf("%s keeps %d of %d healthy hosts, at or above its floor of %s", s, after, total, floorText)})
			continue
		}
		heldText := ""
		if heldN > 0 {
			heldText = fmt.Sprintf(" (%s held by other running operations)", countHosts(heldN))
		}
		room := max(0, healthy-heldN-floor)
		var msg string
		if s == p.Service {
			msg = fmt.Sprintf("%s would keep %d of %d, below its floor of %s%s; ", s, after, total, floorText, heldText)
			if room > 0 {
				msg += fmt.Sprintf("ask for %d or fewer", room)
			} else {
				msg += "no host of it can be removed until more are healthy"
			}
		} else {
			msg = fmt.Sprintf("these hosts also serve %s: it would keep %d of %d healthy hosts, below its floor of %s%s; ", s, after, total, floorText, heldText)
			if room > 0 {
				msg += fmt.Sprintf("at most %d of the hosts serving %s can be removed now", room, s)
			} else {
				msg += fmt.Sprintf("no host serving %s can be removed until more are healthy", s)
			}
		}
		out = append(out, Verdict{Rule: RuleCapacityFloor, Service: s, Message: msg})
	}
	return out
}

// BlastRadius checks, for every service any targeted host serves, that the
// plan changes at most the service's MaxPerOperation of its hosts.
func BlastRadius(inv *Inventory, p Plan) []Verdict {
	targets := map[string]bool{}
	for _, id := range p.Hosts() {
		targets[id] = true
	}
	var out []Verdict
	for _, s := range serviceOrder(p) {
		svc := inv.services[s]
		hosts := inv.byService[s]
		limit, ok := svc.MaxPerOperation.Cap(len(hosts))
		if !ok {
			continue
		}
		changed := 0
		for _, h := range hosts {
			if targets[h.ID] {
				changed++
			}
		}
		limitText := countHosts(limit)
		if svc.MaxPerOperation.IsPercent {
			limitText += " (" + svc.MaxPerOperation.String() + ")"
		}
		if changed <= limit {
			out = append(out, Verdict{Rule: RuleBlastRadius, Service: s, Pass: true,
				Message: fmt.Sprintf("this plan changes %d of %s's %d hosts, within its limit of %s per operation", changed, s, len(hosts), limitText)})
			continue
		}
		msg := fmt.Sprintf("at most %s of %s may change in one operation; this plan changes %d", limitText, s, changed)
		if s == p.Service {
			msg += fmt.Sprintf(", so ask for %d or fewer", limit)
		} else {
			msg += fmt.Sprintf(" because the targeted hosts also serve %s", s)
		}
		out = append(out, Verdict{Rule: RuleBlastRadius, Service: s, Message: msg})
	}
	return out
}

// Freezes refuses a plan that touches a service inside one of its freeze windows.
func Freezes(inv *Inventory, p Plan) []Verdict {
	var out []Verdict
	for _, s := range serviceOrder(p) {
		for _, w := range inv.services[s].Freezes {
			if !inv.Now.Before(w.Start) && inv.Now.Before(w.End) {
				why := ""
				if w.Reason != "" {
					why = " (" + w.Reason + ")"
				}
				out = append(out, Verdict{Rule: RuleFreeze, Service: s, Message: fmt.Sprintf(
					"%s is frozen from %s until %s%s; no operation may touch its hosts before the freeze ends",
					s, w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339), why)})
			}
		}
	}
	if out == nil {
		out = []Verdict{{Rule: RuleFreeze, Pass: true, Message: fmt.Sprintf("no freeze window covers %s now", listServices(p.Services))}}
	}
	return out
}

// OneAtATime refuses a capacity-changing plan while another unfinished
// capacity-changing operation touches any of the same services.
func OneAtATime(inv *Inventory, p Plan, self string) []Verdict {
	if !p.RemovesCapacity {
		return nil
	}
	mine := map[string]bool{}
	for _, s := range p.Services {
		mine[s] = true
	}
	var out []Verdict
	seen := map[string]bool{}
	for _, op := range inv.active {
		if op.ID == self || !op.State.Active() || !op.Plan.RemovesCapacity {
			continue
		}
		for _, s := range op.Plan.Services {
			if !mine[s] || seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, Verdict{Rule: RuleOneAtATime, Service: s, Message: fmt.Sprintf(
				"%s already has a capacity-changing operation in progress (%s, %s, runbook %s); wait for it to finish, or deny or abort it first",
				s, op.ID, op.State, op.Plan.Runbook)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	if out == nil {
		out = []Verdict{{Rule: RuleOneAtATime, Pass: true, Message: fmt.Sprintf(
			"no other capacity-changing operation is in progress on %s", listServices(p.Services))}}
	}
	return out
}

// UnusualInput flags numeric parameters more than factor times the largest
// value the runbook has used. Each needs one extra approval, and the
// operator must type the value again (confirm[name] == value) or the
// verdict fails.
func UnusualInput(p Plan, intParams []string, history map[string]int64, confirm map[string]string, factor int64) (out []Verdict, unusual, needsConfirm []string) {
	if factor <= 0 {
		factor = DefaultUnusualFactor
	}
	names := append([]string(nil), intParams...)
	sort.Strings(names)
	for _, name := range names {
		largest, ok := history[name]
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(p.Params[name], 10, 64)
		if err != nil || v <= factor*largest {
			continue
		}
		unusual = append(unusual, name)
		what := fmt.Sprintf("%s=%d is more than %d× the largest value runbook %s has used (%d)", name, v, factor, p.Runbook, largest)
		if confirm[name] == p.Params[name] {
			out = append(out, Verdict{Rule: RuleUnusualInput, Pass: true,
				Message: what + "; the value was confirmed, and the operation needs one extra approval"})
			continue
		}
		needsConfirm = append(needsConfirm, name)
		out = append(out, Verdict{Rule: RuleUnusualInput, Message: what +
			fmt.Sprintf("; if you mean it, type it again with --confirm %s=%d (it will also need one extra approval)", name, v)})
	}
	return out, unusual, needsConfirm
}

func countHosts(n int) string {
	if n == 1 {
		return "1 host"
	}
	return fmt.Sprintf("%d hosts", n)
}

func listServices(s []string) string {
	switch {
	case len(s) == 0:
		return "these hosts"
	case len(s) <= 5:
		return strings.Join(s, ", ")
	default:
		return fmt.Sprintf("any of the %d services these hosts serve", len(s))
	}
}
