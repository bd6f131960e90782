package ops

import (
	"fmt"
	"testing"
)

// benchInventory: 10,000 hosts in 100 services, each host serving three,
// every service with a 50% floor and a 10% per-operation cap, and five
// running operations holding hosts.
func benchInventory() ([]Host, []Service, []Operation) {
	hosts := make([]Host, 10000)
	for i := range hosts {
		svcs := []string{fmt.Sprintf("svc%03d", i%100), fmt.Sprintf("svc%03d", (i*7+3)%100), fmt.Sprintf("svc%03d", (i*13+5)%100)}
		hosts[i] = Host{ID: fmt.Sprintf("host_%05d", i), Name: fmt.Sprintf("h%05d", i), Services: svcs,
			Labels: map[string]string{"zone": []string{"a", "b", "c"}[i%3]}, InService: true, Healthy: i%50 != 0, LastSeen: t0}
	}
	services := make([]Service, 100)
	for i := range services {
		services[i] = Service{Name: fmt.Sprintf("svc%03d", i), MinHealthy: pct(50), MaxPerOperation: pct(10)}
	}
	var active []Operation
	for k := range 5 {
		var ids []string
		for j := range 10 {
			ids = append(ids, hosts[k*1000+j*7+1].ID)
		}
		active = append(active, Operation{ID: fmt.Sprintf("op_%d", k), State: OpRunning,
			Plan: Plan{RemovesCapacity: true, Services: []string{fmt.Sprintf("svc%03d", 90+k)}, Waves: []Wave{{Number: 1, Hosts: ids}}}})
	}
	return hosts, services, active
}

// BenchmarkPlanAndGuardrails measures what a run costs in ops beyond the
// store reads: indexing the snapshot, building the plan (20 hosts of one
// service) and evaluating every guardrail on every service those hosts serve.
//
//	go test ./internal/ops -run xxx -bench PlanAndGuardrails -benchmem
func BenchmarkPlanAndGuardrails(b *testing.B) {
	rb := exampleRunbook(b)
	hosts, services, active := benchInventory()
	params := map[string]string{"service": "svc042", "count": "20"}
	b.Run("index+plan+guardrails", func(b *testing.B) {
		for b.Loop() {
			inv := NewInventory(t0, 0, hosts, services, active)
			p, err := BuildPlan(rb, 1, params, inv, "")
			if err != nil {
				b.Fatal(err)
			}
			if ev := Evaluate(inv, Check{Plan: p}); len(ev.Verdicts) == 0 {
				b.Fatal("no verdicts")
			}
		}
	})
	b.Run("plan+guardrails", func(b *testing.B) {
		inv := NewInventory(t0, 0, hosts, services, active)
		for b.Loop() {
			p, err := BuildPlan(rb, 1, params, inv, "")
			if err != nil {
				b.Fatal(err)
			}
			if ev := Evaluate(inv, Check{Plan: p}); len(ev.Verdicts) == 0 {
				b.Fatal("no verdicts")
			}
		}
	})
}
