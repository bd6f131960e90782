package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// DefaultStaleAfter is how long a heartbeat keeps a host "live".
const DefaultStaleAfter = 15 * time.Second

// Inventory is an indexed, read-only snapshot of hosts, services and the
// operations in progress at one instant. The planner and every guardrail
// are pure functions of an Inventory, so they are fast and testable.
type Inventory struct {
	Now        time.Time
	StaleAfter time.Duration

	hosts     []Host // sorted by name, then ID
	byID      map[string]*Host
	byService map[string][]*Host // each sorted by name, then ID
	services  map[string]Service
	active    []Operation // operations not yet finished
}

// NewInventory indexes a snapshot. staleAfter <= 0 means DefaultStaleAfter.
// active holds every operation that has not finished (see [OpState.Active]).
func NewInventory(now time.Time, staleAfter time.Duration, hosts []Host, services []Service, active []Operation) *Inventory {
	if staleAfter <= 0 {
		staleAfter = DefaultStaleAfter
	}
	inv := &Inventory{
		Now: now, StaleAfter: staleAfter,
		hosts:     slices.Clone(hosts),
		byID:      make(map[string]*Host, len(hosts)),
		byService: map[string][]*Host{},
		services:  make(map[string]Service, len(services)),
		active:    active,
	}
	slices.SortFunc(inv.hosts, func(a, b Host) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	// Group by service through a slot index: one map read per (host,
	// service) instead of a map write, which dominates at 10,000 hosts.
	slot := map[string]int{}
	var groups [][]*Host
	for i := range inv.hosts {
		h := &inv.hosts[i]
		inv.byID[h.ID] = h
		if !h.RevokedAt.IsZero() {
			// A revoked host is gone for good (the machine comes back as a
			// new host): it must not stay in its services' totals, where it
			// would raise percentage floors and blast radius forever.
			continue
		}
		for _, s := range h.Services {
			k, ok := slot[s]
			if !ok {
				k = len(groups)
				slot[s] = k
				groups = append(groups, nil)
			}
			groups[k] = append(groups[k], h)
		}
	}
	for s, k := range slot {
		inv.byService[s] = groups[k]
	}
	for _, s := range services {
		inv.services[s.Name] = s
	}
	return inv
}

// Live reports whether h counts as healthy now: its last heartbeat said
// healthy and arrived within the staleness window.
func (inv *Inventory) Live(h *Host) bool {
	return h.Healthy && h.RevokedAt.IsZero() && !h.LastSeen.IsZero() && inv.Now.Sub(h.LastSeen) <= inv.StaleAfter
}

// Available reports whether h is healthy and in service.
func (inv *Inventory) Available(h *Host) bool { return h.InService && inv.Live(h) }

// Active reports whether an operation in state s has not finished.
func (s OpState) Active() bool {
	switch s {
	case OpPending, OpReady, OpRunning, OpHalted, OpAttention:
		return true
	}
	return false
}

// Holding reports whether an operation in state s holds its hosts: it has
// been approved to run, is running, or stopped part-way. A host held by
// one operation counts as removed for every other operation's floors.
func (s OpState) Holding() bool {
	switch s {
	case OpReady, OpRunning, OpHalted, OpAttention:
		return true
	}
	return false
}

// held maps each host held by an operation other than self to that operation.
func (inv *Inventory) held(self string) map[string]string {
	out := map[string]string{}
	for _, op := range inv.active {
		if op.ID == self || !op.State.Holding() {
			continue
		}
		for _, w := range op.Plan.Waves {
			for _, h := range w.Hosts {
				out[h] = op.ID
			}
		}
	}
	return out
}

// Capacity is what `interlock service list` shows for one service.
type Capacity struct {
	Total   int // hosts that serve it
	Healthy int // healthy and in service now
	Floor   int // hosts its MinHealthy demands (0: no floor)
	Held    int // healthy in-service hosts held by running operations
}

// Capacity reports the capacity figures of the named service.
func (inv *Inventory) Capacity(service string) Capacity {
	held := inv.held("")
	hs := inv.byService[service]
	c := Capacity{Total: len(hs), Floor: inv.services[service].MinHealthy.Floor(len(hs))}
	for _, h := range hs {
		if inv.Available(h) {
			c.Healthy++
			if held[h.ID] != "" {
				c.Held++
			}
		}
	}
	return c
}

// BuildPlan turns a runbook and parameters into an exact plan against inv.
// self is the operation being re-planned ("" for a new one). It fails
// closed: an empty selector value, no matching host or fewer matching hosts
// than asked is an error, never "all hosts".
func BuildPlan(rb Runbook, version int, params map[string]string, inv *Inventory, self string) (Plan, error) {
	values, err := rb.resolveParams(params, inv.services)
	if err != nil {
		return Plan{}, err
	}
	service := values[rb.Target.Service]
	count, _ := strconv.Atoi(values[rb.Target.Count])
	if count < 1 {
		return Plan{}, paramErr("parameter %s must be at least 1: a plan never targets zero hosts", rb.Target.Count)
	}
	selector := make(map[string]string, len(rb.Target.Selector))
	for k, tmpl := range rb.Target.Selector {
		v := rb.substitute(tmpl, values)
		if strings.TrimSpace(v) == "" {
			return Plan{}, usererr.New(usererr.Invalid, "empty_selector",
				"The selector label %s is empty after substituting parameters; an empty selector never means all hosts, so nothing was planned.", k)
		}
		selector[k] = v
	}
	held := inv.held(self)
	var targets []string
	for _, h := range inv.byService[service] {
		if len(targets) == count {
			break
		}
		if !inv.Available(h) || held[h.ID] != "" || !matches(h.Labels, selector) {
			continue
		}
		targets = append(targets, h.ID)
	}
	where := service
	if len(selector) > 0 {
		where += " matching " + formatLabels(selector)
	}
	switch {
	case len(targets) == 0:
		return Plan{}, usererr.New(usererr.Invalid, "no_targets",
			"No healthy, in-service host of %s is free to target; nothing was planned (an unmatched selector never means all hosts).", where)
	case len(targets) < count:
		return Plan{}, usererr.New(usererr.Invalid, "not_enough_targets",
			"Asked for %d hosts of %s, but only %d are healthy, in service and not held by another operation; ask for %d or fewer.",
			count, where, len(targets), len(targets))
	}

	p := Plan{
		Runbook:         rb.Name,
		Service:         service,
		RunbookVersion:  version,
		Params:          values,
		Waves:           makeWaves(targets, rb.Waves.Size),
		Step:            *rb.render(&rb.Step, values),
		HaltAfter:       rb.Waves.HaltAfterFailures,
		BakeSeconds:     rb.Waves.BakeSeconds,
		RemovesCapacity: rb.RemovesCapacity,
	}
	if rb.HealthCheck != nil {
		p.HealthCheck = rb.render(rb.HealthCheck, values)
	}
	if rb.Rollback != nil {
		p.Rollback = rb.render(rb.Rollback, values)
	}
	largest := 0
	for _, w := range p.Waves {
		largest = max(largest, len(w.Hosts))
	}
	p.Concurrency = largest
	if c := rb.Waves.MaxConcurrency; c > 0 && c < largest {
		p.Concurrency = c
	}
	services := map[string]bool{}
	for _, id := range targets {
		for _, s := range inv.byID[id].Services {
			services[s] = true
		}
	}
	p.Services = slices.Sorted(maps.Keys(services))
	p.SecretRefs = rb.secretRefs(values)
	p.Hash = HashPlan(p)
	return p, nil
}

// secretRefs lists the "secret:PATH" of every secret parameter's value,
// sorted and once each: the secrets an operation with these values reads.
func (rb *Runbook) secretRefs(values map[string]string) []string {
	var refs []string
	for _, prm := range rb.Parameters {
		if prm.Type == ParamSecret {
			refs = append(refs, values[prm.Name])
		}
	}
	slices.Sort(refs)
	return slices.Compact(refs)
}

// makeWaves splits targets into a canary wave of one host and then waves of
// size (a count, or a share of all targets rounded down, at least 1).
func makeWaves(targets []string, size Threshold) []Wave {
	n, _ := size.Cap(len(targets))
	n = max(n, 1)
	waves := []Wave{{Number: 1, Hosts: targets[:1]}}
	for i := 1; i < len(targets); i += n {
		waves = append(waves, Wave{Number: len(waves) + 1, Hosts: targets[i:min(i+n, len(targets))]})
	}
	return waves
}

func matches(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func formatLabels(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// HashPlan is the hex SHA-256 of p's canonical JSON with Hash left empty.
// encoding/json writes struct fields in declaration order and map keys
// sorted, so equal plans hash equally.
func HashPlan(p Plan) string {
	p.Hash = ""
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("ops: encode plan: %v", err)) // a Plan always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Hosts lists the plan's host IDs in dispatch order.
func (p Plan) Hosts() []string {
	var out []string
	for _, w := range p.Waves {
		out = append(out, w.Hosts...)
	}
	return out
}
