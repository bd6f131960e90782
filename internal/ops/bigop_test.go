package ops_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fleetRunbook runs one harmless step on count hosts of a service: a
// canary of one, then the rest in one wave.
const fleetRunbook = `name: fleet-step
description: "One harmless step on every host."
risk: medium
parameters:
  - name: service
    type: service
  - name: count
    type: int
    min: 1
    max: 1000000
target:
  service: service
  count: count
step:
  argv: ["true"]
  timeout_s: 60
health_check:
  argv: ["true"]
  timeout_s: 60
waves:
  canary: 1
`

type testSealer struct{}

func (testSealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append([]byte(nil), aad...), p...), nil
}
func (testSealer) Open(s, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(s, aad) {
		return nil, errors.New("wrong aad")
	}
	return s[len(aad):], nil
}

// addFleet inserts n live hosts serving service straight into the store
// (enrolling 10,000 through join tokens would test enrolment, not plans).
func (e *env) addFleet(service string, n int) {
	e.t.Helper()
	err := e.db.OpsStore().InTx(e.ctx, func(tx ops.Tx) error {
		if err := tx.EnsureServices(e.ctx, []string{service}, e.now); err != nil {
			return err
		}
		for i := range n {
			h := ops.Host{ID: fmt.Sprintf("host_%s_%05d", service, i), Name: fmt.Sprintf("%s-%05d.example.internal", service, i),
				Services: []string{service}, InService: true, Healthy: true, LastSeen: e.now}
			if err := tx.InsertHost(e.ctx, h, e.now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestTenThousandHostOperation requests, approves and starts an operation
// on 10,000 hosts. Its op.requested entry (version 1 listed every host and
// passed the 64 KiB entry limit at about 2,500) records the plan by hash
// and the hosts by digest; the host list in the store matches both, and
// the log verifies.
func TestTenThousandHostOperation(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) { testTenThousandHostOperation(t, open(t)) })
	}
}

func testTenThousandHostOperation(t *testing.T, db *store.DB) {
	const n = 10000
	e := newEnvOn(t, db, 0)
	if _, err := e.m.ApplyRunbook(e.ctx, admin, []byte(fleetRunbook)); err != nil {
		t.Fatal(err)
	}
	e.addFleet("fleet", n)
	req := ops.RunRequest{Runbook: "fleet-step", Params: map[string]string{"service": "fleet", "count": fmt.Sprint(n)}, Reason: "INC-10k", Requester: operator1}
	op, _, err := e.m.Run(e.ctx, req)
	if err != nil {
		t.Fatalf("run on %d hosts: %v", n, err)
	}
	if got := len(op.Plan.Hosts()); got != n {
		t.Fatalf("plan has %d hosts, want %d", got, n)
	}
	if op, _, err = e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash); err != nil {
		t.Fatalf("approve: %v", err)
	}
	if op, err = e.m.Start(e.ctx, op.ID, approver1); err != nil {
		t.Fatalf("start: %v", err)
	}

	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: testSealer{}, Origin: "interlock.test/log"})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := l.Sync(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(e.ctx, true); err != nil {
		t.Fatalf("log does not verify: %v", err)
	}
	var requested map[string]any
	kinds := map[string]int{}
	for start := uint64(0); start < cp.Size; start += audit.MaxRange {
		es, err := l.Entries(e.ctx, start, start+audit.MaxRange)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range es {
			leaf, err := tlog.ParseLeaf(en.Leaf)
			if err != nil {
				t.Fatal(err)
			}
			kinds[leaf.Kind]++
			if len(en.Leaf) > 8<<10 {
				t.Errorf("%s entry is %d bytes: entries about an operation must not grow with its hosts", leaf.Kind, len(en.Leaf))
			}
			if leaf.Kind == "op.requested" && leaf.Subject == "op:"+op.ID {
				if leaf.Version != 2 {
					t.Errorf("op.requested version %d, want 2", leaf.Version)
				}
				if err := json.Unmarshal(leaf.Data, &requested); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, k := range []string{"op.requested", "op.approved", "op.started"} {
		if kinds[k] != 1 {
			t.Errorf("%d %s entries, want 1", kinds[k], k)
		}
	}
	if requested == nil {
		t.Fatal("no op.requested entry for the operation")
	}

	// The host list the store holds, as a checker reads it, against
	// what the log recorded.
	stored, err := db.OpsStore().OpsOperation(e.ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := ops.HashPlan(stored.Plan); got != requested["plan_hash"] || got != stored.Plan.Hash {
		t.Errorf("stored plan hashes to %s; logged plan_hash %v, stored hash %s", got, requested["plan_hash"], stored.Plan.Hash)
	}
	if got := ops.HostsDigest(stored.Plan); got != requested["hosts_digest"] {
		t.Errorf("stored host list digest %s, logged hosts_digest %v", got, requested["hosts_digest"])
	}
	var sizes []any
	for _, w := range stored.Plan.Waves {
		sizes = append(sizes, float64(len(w.Hosts)))
	}
	if requested["host_count"] != float64(n) || fmt.Sprint(requested["wave_sizes"]) != fmt.Sprint(sizes) || sizes[0] != 1.0 {
		t.Errorf("logged host_count %v wave_sizes %v, want %d and %v (a canary of 1 first)", requested["host_count"], requested["wave_sizes"], n, sizes)
	}
	if _, listed := requested["hosts"]; listed {
		t.Error("op.requested still lists every host")
	}

	// Someone with write access to the database swaps one host of the
	// stored plan: the logged digest and hash no longer match it.
	tampered := stored.Plan
	tampered.Waves = append([]ops.Wave(nil), tampered.Waves...)
	tampered.Waves[1].Hosts = append([]string{"host_attacker"}, tampered.Waves[1].Hosts[1:]...)
	if ops.HostsDigest(tampered) == requested["hosts_digest"] || ops.HashPlan(tampered) == requested["plan_hash"] {
		t.Error("a swapped host still matches the logged digest or plan hash")
	}
}

// TestHostList: a sentence about failed hosts (a halt's detail, which is
// also an audit entry's) names at most ten, whatever the fleet's size.
func TestHostList(t *testing.T) {
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("host_%05d", i)
	}
	for _, tt := range []struct {
		name string
		in   []string
		want string
	}{
		{"none", nil, ""},
		{"two", []string{"a", "b"}, "a, b"},
		{"ten", many[:10], strings.Join(many[:10], ", ")},
		{"ten thousand", many, strings.Join(many[:10], ", ") + " and 9990 more"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := ops.HostList(tt.in); got != tt.want {
				t.Errorf("HostList = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTamperedPlanIsNeitherApprovedNorStarted: someone with write access
// to the database swaps a host into a stored plan (leaving its hash). The
// approval and the start both refuse it, and nothing changes.
func TestTamperedPlanIsNeitherApprovedNorStarted(t *testing.T) {
	for name, open := range map[string]func(testing.TB) *store.DB{"sqlite": storetest.OpenSQLite, "postgres": storetest.OpenPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, open(t), 0)
			if _, err := e.m.ApplyRunbook(e.ctx, admin, []byte(fleetRunbook)); err != nil {
				t.Fatal(err)
			}
			e.addFleet("fleet", 40)
			e.addFleet("other", 1)
			req := ops.RunRequest{Runbook: "fleet-step", Params: map[string]string{"service": "fleet", "count": "20"}, Reason: "INC-7", Requester: operator1}
			tamper := func(op ops.Operation) {
				t.Helper()
				p := op.Plan
				p.Waves = append([]ops.Wave(nil), p.Waves...)
				p.Waves[1].Hosts = append([]string{"host_other_00000"}, p.Waves[1].Hosts[1:]...)
				b, err := json.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.db.Exec(e.ctx, `UPDATE ops_operations SET plan = $1 WHERE id = $2`, string(b), op.ID); err != nil {
					t.Fatal(err)
				}
			}

			op, _, err := e.m.Run(e.ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			tamper(op)
			_, _, err = e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash)
			wantUserErr(t, err, usererr.Conflict, "plan_tampered")
			if got, _ := e.m.Get(e.ctx, op.ID); got.State != ops.OpPending || len(got.Approvals) != 0 {
				t.Errorf("after a refused approval: %s with %d approvals, want pending with none", got.State, len(got.Approvals))
			}

			op, _, err = e.m.Run(e.ctx, ops.RunRequest{Runbook: "fleet-step", Params: map[string]string{"service": "fleet", "count": "20"}, Reason: "INC-8", Requester: operator1})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := e.m.Approve(e.ctx, op.ID, approver1, op.Plan.Hash); err != nil {
				t.Fatal(err)
			}
			tamper(op)
			_, err = e.m.Start(e.ctx, op.ID, approver1)
			wantUserErr(t, err, usererr.Conflict, "plan_tampered")
			if got, _ := e.m.Get(e.ctx, op.ID); got.State != ops.OpReady {
				t.Errorf("after a refused start: %s, want ready", got.State)
			}
		})
	}
}
