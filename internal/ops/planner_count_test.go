package ops_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// unboundedRunbook declares count with no min: the parameter's own rules
// let 0 and -1 through, so only the planner's guard keeps a plan from
// targeting zero hosts, or every host.
const unboundedRunbook = `
name: restart-web
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int}
target: {service: service, count: count}
step:
  argv: ["systemctl", "restart", "{{service}}"]
waves: {bake_s: 15}
`

// TestPlannerRefusesCountBelowOne: on a service with no floor and no blast
// radius, where no guardrail would stop it, a count below 1 is refused
// before anything is planned, and nothing is stored.
func TestPlannerRefusesCountBelowOne(t *testing.T) {
	e := newEnv(t, 0)
	for i := range 6 {
		tok, err := e.m.CreateJoinToken(e.ctx, admin, []string{"web"}, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := e.m.EnrollHost(e.ctx, tok.Reveal(), fmt.Sprintf("web%02d", i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.m.SetService(e.ctx, admin, ops.Service{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.ApplyRunbook(e.ctx, admin, []byte(unboundedRunbook)); err != nil {
		t.Fatal(err)
	}
	snapshot := func() [2]int {
		return [2]int{e.count(`SELECT COUNT(*) FROM ops_operations`), e.count(`SELECT COUNT(*) FROM audit_entries`)}
	}
	before := snapshot()
	for _, count := range []string{"0", "-1"} {
		t.Run("count="+count, func(t *testing.T) {
			req := ops.RunRequest{Runbook: "restart-web", Params: map[string]string{"service": "web", "count": count}, Reason: "INC-3", Requester: operator1}
			res, err := e.m.Plan(e.ctx, req)
			ue := wantUserErr(t, err, usererr.Invalid, "bad_parameter")
			if !strings.Contains(ue.Msg, "parameter count must be at least 1") {
				t.Errorf("refusal %q does not say count must be at least 1", ue.Msg)
			}
			if hosts := res.Plan.Hosts(); len(hosts) != 0 {
				t.Errorf("dry run targets %v, want nothing", hosts)
			}
			op, _, err := e.m.Run(e.ctx, req)
			wantUserErr(t, err, usererr.Invalid, "bad_parameter")
			if op.ID != "" {
				t.Errorf("run stored operation %s on %v", op.ID, op.Plan.Hosts())
			}
		})
	}
	if got := snapshot(); got != before {
		t.Errorf("operations and audit entries went from %v to %v, want unchanged", before, got)
	}
}
