package ops_test

import (
	"context"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/usererr"
)

const secretRunbook = `name: db-check
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1, max: 2}
  - {name: cred, type: secret, default: "secret:prod/db/default"}
  - {name: other, type: secret, default: "secret:prod/db/default"}
target: {service: service, count: count}
step:
  shell: true
  argv: ['printf %s "$PARAM_CRED" | wc -c']
health_check: {argv: ["true"]}
`

// TestSecretsAuthorizedAtPlanTime: every secret a plan would read, named
// or by default, is put to MayReadSecret before anything is planned or
// stored; a refusal is a sentence naming the parameter and the path.
func TestSecretsAuthorizedAtPlanTime(t *testing.T) {
	e := newEnv(t, 10)
	e.beatAll()
	if _, err := e.m.ApplyRunbook(e.ctx, admin, []byte(secretRunbook)); err != nil {
		t.Fatal(err)
	}
	req := func(may func(context.Context, string) error, params map[string]string) ops.RunRequest {
		params["service"], params["count"] = "billing", "1"
		return ops.RunRequest{Runbook: "db-check", Params: params, Reason: "INC-2", Requester: operator1, MayReadSecret: may}
	}
	var asked []string
	deny := func(path string) func(context.Context, string) error {
		return func(_ context.Context, p string) error {
			asked = append(asked, p)
			if p == path {
				return usererr.New(usererr.Forbidden, "forbidden", "policy does not allow it")
			}
			return nil
		}
	}
	before := e.count(`SELECT COUNT(*) FROM audit_entries`)
	for _, tt := range []struct {
		name   string
		req    ops.RunRequest
		want   string
		checks []string
	}{
		{"named secret refused", req(deny("prod/db/password"), map[string]string{"cred": "secret:prod/db/password"}),
			"Parameter cred names secret prod/db/password, which policy does not allow you to read (secret.get)", []string{"prod/db/default", "prod/db/password"}},
		{"default secret refused too", req(deny("prod/db/default"), map[string]string{}),
			"Parameter cred, other names secret prod/db/default", []string{"prod/db/default"}},
		{"no way to ask policy", req(nil, map[string]string{}), "could not be checked", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			asked = nil
			for _, call := range []func() error{
				func() error { _, _, err := e.m.Run(e.ctx, tt.req); return err },
				func() error { _, err := e.m.Plan(e.ctx, tt.req); return err },
			} {
				ue := wantUserErr(t, call(), usererr.Forbidden, "secret_forbidden")
				if !strings.Contains(ue.Msg, tt.want) {
					t.Errorf("refusal %q does not say %q", ue.Msg, tt.want)
				}
			}
			if tt.checks != nil && strings.Join(asked[:len(tt.checks)], ",") != strings.Join(tt.checks, ",") {
				t.Errorf("asked policy about %q, want %q", asked, tt.checks)
			}
		})
	}
	if n := e.count(`SELECT COUNT(*) FROM ops_operations`); n != 0 {
		t.Errorf("refused runs stored %d operations", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM audit_entries`); n != before {
		t.Errorf("refused runs wrote %d audit entries here (the API records the authz refusal)", n-before)
	}
	op, _, err := e.m.Run(e.ctx, req(deny("none"), map[string]string{"cred": "secret:prod/db/password"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(op.Plan.SecretRefs, ","); got != "secret:prod/db/default,secret:prod/db/password" {
		t.Errorf("plan secret_refs = %q, want both paths once each, sorted", got)
	}
}

// TestOutdatedShellRunbook: a version stored before shell text was made
// constant can be read and listed, but never planned.
func TestOutdatedShellRunbook(t *testing.T) {
	e := newEnv(t, 2)
	e.beatAll()
	old := strings.Replace(secretRunbook, `argv: ['printf %s "$PARAM_CRED" | wc -c']`, `argv: ["echo {{count}}"]`, 1)
	old = strings.Replace(old, "name: db-check", "name: legacy", 1)
	if _, err := e.db.Exec(e.ctx, `INSERT INTO ops_runbooks (name, version, source, applied_by, applied_at) VALUES ($1, 1, $2, 'person:p_admin', 0)`, "legacy", []byte(old)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.GetRunbook(e.ctx, "legacy", 0); err != nil {
		t.Errorf("GetRunbook of an outdated version = %v, want it readable", err)
	}
	if list, err := e.m.ListRunbooks(e.ctx); err != nil || len(list) != 2 {
		t.Errorf("ListRunbooks = %d runbooks, %v; want both listed", len(list), err)
	}
	_, err := e.m.Plan(e.ctx, ops.RunRequest{Runbook: "legacy", Params: map[string]string{"service": "billing", "count": "1"}, Reason: "x", Requester: operator1,
		MayReadSecret: func(context.Context, string) error { return nil }})
	ue := wantUserErr(t, err, usererr.Conflict, "runbook_outdated")
	if !strings.Contains(ue.Msg, `puts {{count}} into shell text; write "$PARAM_COUNT" there`) {
		t.Errorf("refusal %q does not show the rewrite", ue.Msg)
	}
}
