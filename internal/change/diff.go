package change

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/policy"
)

// diffOf computes what r changes from its stored content alone, so the
// diff a reviewer sees is always the one the hash covers.
func diffOf(r Request, now time.Time) (wire.ChangeDiff, error) {
	switch r.Kind {
	case KindPolicy:
		d, err := policy.Diff(r.Base, r.Content, now)
		if err != nil {
			return wire.ChangeDiff{}, err
		}
		return wire.ChangeDiff{Policy: &d}, nil
	case KindRunbook:
		d, err := runbookDiff(r.Base, r.Content)
		if err != nil {
			return wire.ChangeDiff{}, err
		}
		return wire.ChangeDiff{Runbook: &d}, nil
	case KindServices:
		d, err := servicesDiff(r.Base, r.Content, now)
		if err != nil {
			return wire.ChangeDiff{}, err
		}
		return wire.ChangeDiff{Services: d}, nil
	case KindInvite:
		return wire.ChangeDiff{User: &wire.UserChange{Username: r.Target, Role: r.Content}}, nil
	case KindDisable:
		return wire.ChangeDiff{User: &wire.UserChange{Username: r.Target, Status: r.Base}}, nil
	case KindEnable, KindRoles:
		return peopleDiff(r), nil
	case KindReset:
		return wire.ChangeDiff{User: &wire.UserChange{Username: r.Target, Reset: r.Content}}, nil
	case KindLogFork:
		d, err := logForkDiff(r)
		if err != nil {
			return wire.ChangeDiff{}, err
		}
		return wire.ChangeDiff{LogFork: d}, nil
	}
	return wire.ChangeDiff{}, fmt.Errorf("unknown kind %q", r.Kind)
}

// runbookDiff compares two runbook texts field by field (parameters one
// by one), as compact JSON of what the parser understood: the approver
// sees argv, shell, parameters, waves, health check and rollback, not
// YAML formatting. base "" is a new runbook: every field is listed.
func runbookDiff(base, content string) (wire.RunbookDiff, error) {
	next, err := ops.ParseRunbook([]byte(content))
	if err != nil {
		return wire.RunbookDiff{}, fmt.Errorf("new runbook: %w", err)
	}
	out := wire.RunbookDiff{Name: next.Name, New: base == ""}
	nf, err := runbookFields(next)
	if err != nil {
		return wire.RunbookDiff{}, err
	}
	of := map[string]string{}
	if base != "" {
		old, err := ops.ParseRunbook([]byte(base))
		if err != nil {
			// The earlier version no longer parses (the parser got
			// stricter): show the texts themselves.
			out.Fields = []wire.FieldChange{{Field: "source", Old: base, New: content}}
			return out, nil
		}
		if of, err = runbookFields(old); err != nil {
			return wire.RunbookDiff{}, err
		}
	}
	keys := make([]string, 0, len(nf)+len(of))
	for k := range nf {
		keys = append(keys, k)
	}
	for k := range of {
		if _, ok := nf[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return fieldOrder(keys[i]) < fieldOrder(keys[j]) || fieldOrder(keys[i]) == fieldOrder(keys[j]) && keys[i] < keys[j]
	})
	for _, k := range keys {
		if of[k] != nf[k] {
			out.Fields = append(out.Fields, wire.FieldChange{Field: k, Old: of[k], New: nf[k]})
		}
	}
	return out, nil
}

// runbookOrder is the order fields are shown in: what it is, then what it
// runs, then how.
var runbookOrder = []string{"name", "description", "risk", "removes_capacity", "parameters", "target", "step", "health_check", "rollback", "waves"}

func fieldOrder(k string) int {
	for i, f := range runbookOrder {
		if k == f || len(k) > len(f) && k[:len(f)+1] == f+"." {
			return i
		}
	}
	return len(runbookOrder)
}

// runbookFields flattens a parsed runbook to field → compact JSON, with
// one field per parameter ("parameters.count"). Every field the runbook
// type carries appears, so a field added to runbooks later is diffed too.
func runbookFields(rb ops.Runbook) (map[string]string, error) {
	b, err := json.Marshal(rb)
	if err != nil {
		return nil, fmt.Errorf("encode runbook: %w", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode runbook: %w", err)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "parameters" {
			continue
		}
		if s := compact(v); s != "null" {
			out[k] = s
		}
	}
	for _, p := range rb.Parameters {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode parameter %s: %w", p.Name, err)
		}
		out["parameters."+p.Name] = compact(b)
	}
	return out, nil
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// serviceRules is the canonical stored form of one service's rules in a
// services change (its Content and Base).
type serviceRules struct {
	Name            string   `json:"name"`
	MinHealthy      string   `json:"min_healthy"`
	MaxPerOperation string   `json:"max_per_operation"`
	Freezes         []freeze `json:"freezes"`
}

type freeze struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Reason string    `json:"reason"`
}

func rulesOf(svc ops.Service) serviceRules {
	r := serviceRules{Name: svc.Name, MinHealthy: svc.MinHealthy.String(), MaxPerOperation: svc.MaxPerOperation.String(), Freezes: []freeze{}}
	for _, w := range svc.Freezes {
		r.Freezes = append(r.Freezes, freeze{Start: w.Start.UTC(), End: w.End.UTC(), Reason: w.Reason})
	}
	return r
}

func (r serviceRules) service() (ops.Service, error) {
	svc := ops.Service{Name: r.Name}
	var err error
	if svc.MinHealthy, err = ops.ParseThreshold(r.MinHealthy); err != nil {
		return ops.Service{}, err
	}
	if svc.MaxPerOperation, err = ops.ParseThreshold(r.MaxPerOperation); err != nil {
		return ops.Service{}, err
	}
	for _, f := range r.Freezes {
		svc.Freezes = append(svc.Freezes, ops.Window{Start: f.Start, End: f.End, Reason: f.Reason})
	}
	return svc, nil
}

// encodeServices is the canonical JSON of svcs' rules, sorted by name.
func encodeServices(svcs []ops.Service) string {
	rules := make([]serviceRules, 0, len(svcs))
	for _, s := range svcs {
		rules = append(rules, rulesOf(s))
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].Name < rules[j].Name })
	b, _ := json.Marshal(rules) // strings and times only: cannot fail
	return string(b)
}

func decodeServices(s string) ([]ops.Service, error) {
	var rules []serviceRules
	if err := json.Unmarshal([]byte(s), &rules); err != nil {
		return nil, fmt.Errorf("decode services: %w", err)
	}
	out := make([]ops.Service, 0, len(rules))
	for _, r := range rules {
		svc, err := r.service()
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", r.Name, err)
		}
		out = append(out, svc)
	}
	return out, nil
}

// servicesDiff shows each service's rules old → new and why it loosens.
func servicesDiff(base, content string, now time.Time) ([]wire.ServiceDiff, error) {
	olds, err := decodeServices(base)
	if err != nil {
		return nil, err
	}
	nexts, err := decodeServices(content)
	if err != nil {
		return nil, err
	}
	return serviceDiffs(olds, nexts, now), nil
}

func serviceDiffs(olds, nexts []ops.Service, now time.Time) []wire.ServiceDiff {
	byName := map[string]ops.Service{}
	for _, s := range olds {
		byName[s.Name] = s
	}
	out := make([]wire.ServiceDiff, 0, len(nexts))
	for _, n := range nexts {
		o, existed := byName[n.Name]
		d := wire.ServiceDiff{Name: n.Name, Create: !existed}
		if existed {
			d.Loosens = ops.Loosens(o, n, now)
		}
		or, nr := rulesOf(o), rulesOf(n)
		if !existed {
			or = serviceRules{}
		}
		add := func(field, old, next string) {
			if old != next {
				d.Fields = append(d.Fields, wire.FieldChange{Field: field, Old: noneIfEmpty(old, existed), New: noneIfEmpty(next, true)})
			}
		}
		add("min_healthy", or.MinHealthy, nr.MinHealthy)
		add("max_per_operation", or.MaxPerOperation, nr.MaxPerOperation)
		add("freezes", freezesText(or.Freezes, existed), freezesText(nr.Freezes, true))
		out = append(out, d)
	}
	return out
}

func noneIfEmpty(s string, exists bool) string {
	if !exists {
		return ""
	}
	if s == "" {
		return "none"
	}
	return s
}

func freezesText(fs []freeze, exists bool) string {
	if !exists {
		return ""
	}
	if len(fs) == 0 {
		return "none"
	}
	var b bytes.Buffer
	for i, f := range slices.Clone(fs) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s–%s (%s)", f.Start.Format(time.RFC3339), f.End.Format(time.RFC3339), f.Reason)
	}
	return b.String()
}
