package ops

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

// fleet returns n healthy, in-service hosts h01…hNN serving services.
func fleet(n int, services ...string) []Host {
	hosts := make([]Host, n)
	for i := range hosts {
		hosts[i] = Host{ID: fmt.Sprintf("id%02d", i+1), Name: fmt.Sprintf("h%02d", i+1), Services: services,
			Labels: map[string]string{"zone": []string{"a", "b"}[i%2]}, InService: true, Healthy: true, LastSeen: t0}
	}
	return hosts
}

func pct(p float64) Threshold { return Threshold{Percent: p, IsPercent: true} }

func exampleRunbook(t testing.TB) Runbook {
	t.Helper()
	src, err := os.ReadFile("../../examples/runbooks/remove-capacity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ParseRunbook(src)
	if err != nil {
		t.Fatalf("example runbook: %v", err)
	}
	return rb
}

// services2017: billing floor 50%, at most 10% per operation; index floor 80%.
var services2017 = []Service{
	{Name: "billing", MinHealthy: pct(50), MaxPerOperation: pct(10)},
	{Name: "index", MinHealthy: pct(80)},
}

func failing(vs []Verdict) []Verdict {
	var out []Verdict
	for _, v := range vs {
		if !v.Pass {
			out = append(out, v)
		}
	}
	return out
}

// The 2017 S3 scenario: 20 hosts all serving billing and index; removing
// 20 is refused with three sentences, removing 2 passes.
func Test2017(t *testing.T) {
	rb := exampleRunbook(t)
	inv := NewInventory(t0, 0, fleet(20, "billing", "index"), services2017, nil)

	p, err := BuildPlan(rb, 1, map[string]string{"service": "billing", "count": "20"}, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Verdict{
		{Rule: RuleCapacityFloor, Service: "billing", Message: "billing would keep 0 of 20, below its floor of 10 (50%); ask for 10 or fewer"},
		{Rule: RuleCapacityFloor, Service: "index", Message: "these hosts also serve index: it would keep 0 of 20 healthy hosts, below its floor of 16 (80%); at most 4 of the hosts serving index can be removed now"},
		{Rule: RuleBlastRadius, Service: "billing", Message: "at most 2 hosts (10%) of billing may change in one operation; this plan changes 20, so ask for 2 or fewer"},
	}
	ev := Evaluate(inv, Check{Plan: p})
	if diff := cmp.Diff(want, failing(ev.Verdicts)); diff != "" {
		t.Errorf("count=20 failing verdicts (-want +got):\n%s", diff)
	}
	if ev.Allowed() {
		t.Error("count=20 allowed, want refused")
	}

	p, err = BuildPlan(rb, 1, map[string]string{"service": "billing", "count": "2"}, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	ev = Evaluate(inv, Check{Plan: p})
	if !ev.Allowed() {
		t.Errorf("count=2 refused: %+v", failing(ev.Verdicts))
	}
	if diff := cmp.Diff([]Wave{{Number: 1, Hosts: []string{"id01"}}, {Number: 2, Hosts: []string{"id02"}}}, p.Waves); diff != "" {
		t.Errorf("count=2 waves (-want +got):\n%s", diff)
	}
}

func TestCapacityFloors(t *testing.T) {
	rb := exampleRunbook(t)
	ten := fleet(10, "web", "cache")
	unhealthy := fleet(10, "web", "cache")
	unhealthy[9].Healthy = false
	unhealthy[8].LastSeen = t0.Add(-time.Minute) // stale
	running := Operation{ID: "op_other", State: OpRunning, Plan: Plan{Services: []string{"web"}, Waves: []Wave{{Number: 1, Hosts: []string{"id09", "id10"}}}}}
	pending := running
	pending.State = OpPending
	for _, tt := range []struct {
		name     string
		hosts    []Host
		services []Service
		active   []Operation
		count    string
		want     []Verdict
	}{
		{
			name: "passes at the floor", hosts: ten, count: "5",
			services: []Service{{Name: "web", MinHealthy: pct(50)}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "web", Pass: true, Message: "web keeps 5 of 10 healthy hosts, at or above its floor of 5 (50%)"}},
		},
		{
			name: "count floor below by one", hosts: ten, count: "6",
			services: []Service{{Name: "web", MinHealthy: Threshold{Count: 5}}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "web", Message: "web would keep 4 of 10, below its floor of 5; ask for 5 or fewer"}},
		},
		{
			name: "percent floor rounds up", hosts: ten, count: "3",
			services: []Service{{Name: "web", MinHealthy: pct(75)}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "web", Message: "web would keep 7 of 10, below its floor of 8 (75%); ask for 2 or fewer"}},
		},
		{
			name: "unhealthy and stale hosts do not count", hosts: unhealthy, count: "2",
			services: []Service{{Name: "web", MinHealthy: pct(70)}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "web", Message: "web would keep 6 of 10, below its floor of 7 (70%); ask for 1 or fewer"}},
		},
		{
			name: "hosts held by running operations count as removed", hosts: ten, count: "2", active: []Operation{running},
			services: []Service{{Name: "web", MinHealthy: pct(70)}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "web", Message: "web would keep 6 of 10, below its floor of 7 (70%) (2 hosts held by other running operations); ask for 1 or fewer"}},
		},
		{
			name: "pending operations hold nothing", hosts: ten, count: "2", active: []Operation{pending},
			services: []Service{{Name: "web", MinHealthy: pct(70)}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "web", Pass: true, Message: "web keeps 8 of 10 healthy hosts, at or above its floor of 7 (70%)"}},
		},
		{
			name: "every service a targeted host serves", hosts: ten, count: "2",
			services: []Service{{Name: "web", MinHealthy: pct(50)}, {Name: "cache", MinHealthy: pct(90)}},
			want: []Verdict{
				{Rule: RuleCapacityFloor, Service: "web", Pass: true, Message: "web keeps 8 of 10 healthy hosts, at or above its floor of 5 (50%)"},
				{Rule: RuleCapacityFloor, Service: "cache", Message: "these hosts also serve cache: it would keep 8 of 10 healthy hosts, below its floor of 9 (90%); at most 1 of the hosts serving cache can be removed now"},
			},
		},
		{
			name: "no room at all", hosts: unhealthy, count: "1",
			services: []Service{{Name: "web"}, {Name: "cache", MinHealthy: Threshold{Count: 9}}},
			want:     []Verdict{{Rule: RuleCapacityFloor, Service: "cache", Message: "these hosts also serve cache: it would keep 7 of 10 healthy hosts, below its floor of 9; no host serving cache can be removed until more are healthy"}},
		},
		{
			name: "no floor, no verdict", hosts: ten, count: "10",
			services: []Service{{Name: "web"}, {Name: "cache"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := NewInventory(t0, 15*time.Second, tt.hosts, tt.services, tt.active)
			p, err := BuildPlan(rb, 1, map[string]string{"service": "web", "count": tt.count}, inv, "")
			if err != nil {
				t.Fatal(err)
			}
			got := CapacityFloors(inv, p, defaultRemoving(p), "")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CapacityFloors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBlastRadius(t *testing.T) {
	rb := exampleRunbook(t)
	for _, tt := range []struct {
		name     string
		hosts    int
		services []Service
		count    string
		want     []Verdict
	}{
		{
			name: "percent cap passes", hosts: 20, count: "2",
			services: []Service{{Name: "web", MaxPerOperation: pct(10)}, {Name: "cache"}},
			want:     []Verdict{{Rule: RuleBlastRadius, Service: "web", Pass: true, Message: "this plan changes 2 of web's 20 hosts, within its limit of 2 hosts (10%) per operation"}},
		},
		{
			name: "count cap refuses", hosts: 20, count: "4",
			services: []Service{{Name: "web", MaxPerOperation: Threshold{Count: 3}}, {Name: "cache"}},
			want:     []Verdict{{Rule: RuleBlastRadius, Service: "web", Message: "at most 3 hosts of web may change in one operation; this plan changes 4, so ask for 3 or fewer"}},
		},
		{
			name: "percent cap rounds down but allows one host", hosts: 5, count: "2",
			services: []Service{{Name: "web", MaxPerOperation: pct(10)}, {Name: "cache"}},
			want:     []Verdict{{Rule: RuleBlastRadius, Service: "web", Message: "at most 1 host (10%) of web may change in one operation; this plan changes 2, so ask for 1 or fewer"}},
		},
		{
			name: "cap of a service the hosts also serve", hosts: 20, count: "3",
			services: []Service{{Name: "web"}, {Name: "cache", MaxPerOperation: pct(10)}},
			want:     []Verdict{{Rule: RuleBlastRadius, Service: "cache", Message: "at most 2 hosts (10%) of cache may change in one operation; this plan changes 3 because the targeted hosts also serve cache"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := NewInventory(t0, 0, fleet(tt.hosts, "web", "cache"), tt.services, nil)
			p, err := BuildPlan(rb, 1, map[string]string{"service": "web", "count": tt.count}, inv, "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, BlastRadius(inv, p)); diff != "" {
				t.Errorf("BlastRadius (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFreezes(t *testing.T) {
	rb := exampleRunbook(t)
	win := Window{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour), Reason: "holiday"}
	for _, tt := range []struct {
		name    string
		freezes []Window
		want    []Verdict
	}{
		{name: "inside a window", freezes: []Window{win}, want: []Verdict{{Rule: RuleFreeze, Service: "cache",
			Message: "cache is frozen from 2026-11-29T02:00:00Z until 2026-11-29T04:00:00Z (holiday); no operation may touch its hosts before the freeze ends"}}},
		{name: "window ended (end is exclusive)", freezes: []Window{{Start: t0.Add(-time.Hour), End: t0}},
			want: []Verdict{{Rule: RuleFreeze, Pass: true, Message: "no freeze window covers cache, web now"}}},
		{name: "window not started", freezes: []Window{{Start: t0.Add(time.Second), End: t0.Add(time.Hour)}},
			want: []Verdict{{Rule: RuleFreeze, Pass: true, Message: "no freeze window covers cache, web now"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := NewInventory(t0, 0, fleet(4, "web", "cache"), []Service{{Name: "web"}, {Name: "cache", Freezes: tt.freezes}}, nil)
			p, err := BuildPlan(rb, 1, map[string]string{"service": "web", "count": "1"}, inv, "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, Freezes(inv, p)); diff != "" {
				t.Errorf("Freezes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOneAtATime(t *testing.T) {
	rb := exampleRunbook(t)
	other := func(state OpState, removes bool, services ...string) Operation {
		return Operation{ID: "op_x", State: state, Plan: Plan{Runbook: "drain", RemovesCapacity: removes, Services: services,
			Waves: []Wave{{Number: 1, Hosts: []string{"zz"}}}}}
	}
	pass := []Verdict{{Rule: RuleOneAtATime, Pass: true, Message: "no other capacity-changing operation is in progress on cache, web"}}
	for _, tt := range []struct {
		name   string
		active []Operation
		want   []Verdict
	}{
		{name: "nothing else running", want: pass},
		{name: "pending capacity change on a shared service", active: []Operation{other(OpPending, true, "cache")},
			want: []Verdict{{Rule: RuleOneAtATime, Service: "cache", Message: "cache already has a capacity-changing operation in progress (op_x, pending_approval, runbook drain); wait for it to finish, or deny or abort it first"}}},
		{name: "running restart does not count", active: []Operation{other(OpRunning, false, "web")}, want: pass},
		{name: "finished operations do not count", active: []Operation{other(OpSucceeded, true, "web")}, want: pass},
		{name: "other services do not count", active: []Operation{other(OpRunning, true, "db")}, want: pass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := NewInventory(t0, 0, fleet(4, "web", "cache"), []Service{{Name: "web"}, {Name: "cache"}}, tt.active)
			p, err := BuildPlan(rb, 1, map[string]string{"service": "web", "count": "1"}, inv, "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, OneAtATime(inv, p, "")); diff != "" {
				t.Errorf("OneAtATime (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnusualInput(t *testing.T) {
	p := Plan{Runbook: "remove-capacity", Params: map[string]string{"count": "16", "service": "web"}}
	for _, tt := range []struct {
		name        string
		history     map[string]int64
		confirm     map[string]string
		want        []Verdict
		wantUnusual []string
		wantConfirm []string
	}{
		{name: "no history yet"},
		{name: "within 3x", history: map[string]int64{"count": 6}},
		{name: "more than 3x, not confirmed", history: map[string]int64{"count": 5},
			want:        []Verdict{{Rule: RuleUnusualInput, Message: "count=16 is more than 3× the largest value runbook remove-capacity has used (5); if you mean it, type it again with --confirm count=16 (it will also need one extra approval)"}},
			wantUnusual: []string{"count"}, wantConfirm: []string{"count"}},
		{name: "more than 3x, confirmed wrongly", history: map[string]int64{"count": 5}, confirm: map[string]string{"count": "15"},
			want:        []Verdict{{Rule: RuleUnusualInput, Message: "count=16 is more than 3× the largest value runbook remove-capacity has used (5); if you mean it, type it again with --confirm count=16 (it will also need one extra approval)"}},
			wantUnusual: []string{"count"}, wantConfirm: []string{"count"}},
		{name: "more than 3x, confirmed", history: map[string]int64{"count": 5}, confirm: map[string]string{"count": "16"},
			want:        []Verdict{{Rule: RuleUnusualInput, Pass: true, Message: "count=16 is more than 3× the largest value runbook remove-capacity has used (5); the value was confirmed, and the operation needs one extra approval"}},
			wantUnusual: []string{"count"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, unusual, confirm := UnusualInput(p, []string{"count"}, tt.history, tt.confirm, 0)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantUnusual, unusual); diff != "" {
				t.Errorf("unusual (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantConfirm, confirm); diff != "" {
				t.Errorf("needs confirm (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWaveRemoving(t *testing.T) {
	p := Plan{Waves: []Wave{{Number: 1, Hosts: []string{"a"}}, {Number: 2, Hosts: []string{"b", "c"}}, {Number: 3, Hosts: []string{"d"}}}}
	for _, tt := range []struct {
		name    string
		removes bool
		wave    int
		want    []string
	}{
		{name: "capacity removal accumulates", removes: true, wave: 3, want: []string{"a", "b", "c", "d"}},
		{name: "restart is one wave at a time", removes: false, wave: 2, want: []string{"b", "c"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.RemovesCapacity = tt.removes
			if diff := cmp.Diff(tt.want, WaveRemoving(p, tt.wave)); diff != "" {
				t.Errorf("WaveRemoving (-want +got):\n%s", diff)
			}
		})
	}
}
