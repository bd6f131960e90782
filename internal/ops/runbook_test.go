package ops

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/usererr"
)

const baseRunbook = `
name: restart
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1, max: 50}
  - {name: mode, type: string, enum: [soft, hard], default: soft}
  - {name: tag, type: string, pattern: "[a-z]+-[0-9]+", default: rel-1}
  - {name: token, type: secret, default: "secret:deploy/token"}
  - {name: zone, type: string, default: a}
target: {service: service, count: count, selector: {zone: "{{zone}}"}}
step:
  argv: ["restart", "{{service}}", "--mode={{mode}}"]
waves: {size: 2, bake_s: 15}
`

func TestParseThreshold(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    Threshold
		wantErr bool
	}{
		{in: "50%", want: Threshold{Percent: 50, IsPercent: true}},
		{in: " 12.5% ", want: Threshold{Percent: 12.5, IsPercent: true}},
		{in: "3", want: Threshold{Count: 3}},
		{in: "", want: Threshold{}},
		{in: "101%", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "half", wantErr: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseThreshold(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseThreshold(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseThreshold (-want +got):\n%s", diff)
			}
			if err == nil {
				if back, _ := ParseThreshold(got.String()); back != got {
					t.Errorf("String round trip: %q → %+v", got.String(), back)
				}
			}
		})
	}
}

func TestParseRunbookRejects(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{name: "unknown key", yaml: baseRunbook + "colour: blue\n", want: "field colour not found"},
		{name: "bad risk", yaml: strings.Replace(baseRunbook, "risk: low", "risk: spicy", 1), want: `risk "spicy" must be low, medium or high`},
		{name: "undeclared placeholder", yaml: strings.Replace(baseRunbook, "{{mode}}", "{{speed}}", 1), want: "step.argv[2] uses {{speed}}, which is not a declared parameter"},
		{name: "target count not int", yaml: strings.Replace(baseRunbook, "count: count,", "count: mode,", 1), want: "target.count must name a parameter of type int"},
		{name: "canary not one", yaml: strings.Replace(baseRunbook, "waves: {size: 2, bake_s: 15}", "waves: {size: 2, bake_s: 15, canary: 3}", 1), want: "waves.canary is always 1 host"},
		{name: "no health check and a short bake", yaml: strings.Replace(baseRunbook, "bake_s: 15", "bake_s: 5", 1), want: "must wait at least 15 s between waves"},
		{name: "min above max", yaml: strings.Replace(baseRunbook, "min: 1, max: 50", "min: 9, max: 5", 1), want: "parameter count has min 9 above max 5"},
		{name: "bad default", yaml: strings.Replace(baseRunbook, "default: rel-1", "default: REL", 1), want: "the default of parameter tag is not allowed"},
		{name: "two documents", yaml: baseRunbook + "---\nname: x\n", want: "more than one YAML document"},
		{name: "empty", yaml: "", want: "the runbook is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRunbook([]byte(tt.yaml))
			ue, ok := usererr.As(err)
			if !ok || ue.Kind != usererr.Invalid {
				t.Fatalf("ParseRunbook error = %v, want a usererr Invalid", err)
			}
			if !strings.Contains(ue.Msg, tt.want) {
				t.Errorf("message %q does not contain %q", ue.Msg, tt.want)
			}
		})
	}
}

func TestPlanParameters(t *testing.T) {
	rb, err := ParseRunbook([]byte(baseRunbook))
	if err != nil {
		t.Fatal(err)
	}
	inv := NewInventory(t0, 0, fleet(6, "web"), []Service{{Name: "web"}}, nil)
	for _, tt := range []struct {
		name   string
		params map[string]string
		code   string
		want   string
	}{
		{name: "out of bounds", params: map[string]string{"service": "web", "count": "5000"}, code: "bad_parameter",
			want: "parameter count must be a whole number from 1 to 50; got 5000."},
		{name: "wrong type", params: map[string]string{"service": "web", "count": "two"}, code: "bad_parameter",
			want: `parameter count must be a whole number from 1 to 50; got "two".`},
		{name: "unknown parameter", params: map[string]string{"service": "web", "count": "1", "force": "yes"}, code: "bad_parameter",
			want: "unknown parameter force: runbook restart takes service, count, mode, tag, token, zone."},
		{name: "missing parameter", params: map[string]string{"service": "web"}, code: "bad_parameter",
			want: "parameter count is required (int from 1 to 50)."},
		{name: "unknown service", params: map[string]string{"service": "bling", "count": "1"}, code: "bad_parameter",
			want: `parameter service must name a service Interlock knows (web); got "bling".`},
		{name: "enum", params: map[string]string{"service": "web", "count": "1", "mode": "nuke"}, code: "bad_parameter",
			want: `parameter mode must be one of soft, hard; got "nuke".`},
		{name: "pattern", params: map[string]string{"service": "web", "count": "1", "tag": "x"}, code: "bad_parameter",
			want: `parameter tag must match [a-z]+-[0-9]+; got "x".`},
		{name: "secret ref in a plain parameter", params: map[string]string{"service": "web", "count": "1", "mode": "secret:x"}, code: "bad_parameter",
			want: "parameter mode is a string and cannot take a secret: reference; only secret parameters can."},
		{name: "secret value instead of a ref", params: map[string]string{"service": "web", "count": "1", "token": "hunter2"}, code: "bad_parameter",
			want: "parameter token is a secret: give a reference like secret:db/password, never the value itself."},
		{name: "empty selector fails closed", params: map[string]string{"service": "web", "count": "1", "zone": ""}, code: "empty_selector",
			want: "The selector label zone is empty after substituting parameters; an empty selector never means all hosts, so nothing was planned."},
		{name: "unmatched selector fails closed", params: map[string]string{"service": "web", "count": "1", "zone": "mars"}, code: "no_targets",
			want: "No healthy, in-service host of web matching zone=mars is free to target; nothing was planned (an unmatched selector never means all hosts)."},
		{name: "never more than there are", params: map[string]string{"service": "web", "count": "4"}, code: "not_enough_targets",
			want: "Asked for 4 hosts of web matching zone=a, but only 3 are healthy, in service and not held by another operation; ask for 3 or fewer."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := BuildPlan(rb, 1, tt.params, inv, "")
			ue, ok := usererr.As(err)
			if !ok || ue.Kind != usererr.Invalid {
				t.Fatalf("BuildPlan error = %v, want a usererr Invalid", err)
			}
			if diff := cmp.Diff([]string{tt.code, tt.want}, []string{ue.Code, ue.Msg}); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanShape(t *testing.T) {
	rb, err := ParseRunbook([]byte(baseRunbook))
	if err != nil {
		t.Fatal(err)
	}
	hosts := fleet(12, "web")
	hosts[2].Healthy = false // id03, zone a: skipped
	inv := NewInventory(t0, 0, hosts, []Service{{Name: "web"}}, nil)
	p, err := BuildPlan(rb, 3, map[string]string{"service": "web", "count": "4", "mode": "hard"}, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{
		Runbook: "restart", Service: "web", RunbookVersion: 3,
		Params: map[string]string{"service": "web", "count": "4", "mode": "hard", "tag": "rel-1", "token": "secret:deploy/token", "zone": "a"},
		Waves:  []Wave{{Number: 1, Hosts: []string{"id01"}}, {Number: 2, Hosts: []string{"id05", "id07"}}, {Number: 3, Hosts: []string{"id09"}}},
		Step: Command{Argv: []string{"restart", "web", "--mode=hard"},
			Env: map[string]string{"PARAM_SERVICE": "web", "PARAM_COUNT": "4", "PARAM_MODE": "hard", "PARAM_TAG": "rel-1", "PARAM_ZONE": "a"},
			// The secret travels as a reference; the executor resolves it.
			SecretEnv:      map[string]string{"PARAM_TOKEN": "secret:deploy/token"},
			TimeoutSeconds: DefaultTimeoutSeconds, MaxOutputBytes: DefaultMaxOutputBytes},
		Concurrency: 2, BakeSeconds: 15, Services: []string{"web"}, SecretRefs: []string{"secret:deploy/token"},
	}
	want.Hash = HashPlan(want)
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	again, _ := BuildPlan(rb, 3, map[string]string{"service": "web", "count": "4", "mode": "hard"}, inv, "")
	if again.Hash != p.Hash {
		t.Error("the same request planned twice gives different hashes")
	}
	other, _ := BuildPlan(rb, 3, map[string]string{"service": "web", "count": "3", "mode": "hard"}, inv, "")
	if other.Hash == p.Hash {
		t.Error("a different plan has the same hash")
	}
}

// TestShellStepIsConstant: a shell step's text reaches the plan byte for
// byte, and a hostile value only ever travels as $PARAM_TAG.
func TestShellStepIsConstant(t *testing.T) {
	src := strings.Replace(baseRunbook, `argv: ["restart", "{{service}}", "--mode={{mode}}"]`,
		`argv: ["echo restarting \"$PARAM_TAG\""]`+"\n  shell: true", 1)
	src = strings.Replace(src, `pattern: "[a-z]+-[0-9]+"`, `pattern: ".+"`, 1)
	rb, err := ParseRunbook([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	inv := NewInventory(t0, 0, fleet(2, "web"), []Service{{Name: "web"}}, nil)
	p, err := BuildPlan(rb, 1, map[string]string{"service": "web", "count": "1", "tag": "x'; rm -rf /"}, inv, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{`echo restarting "$PARAM_TAG"`}, p.Step.Argv); diff != "" {
		t.Errorf("shell argv (-want +got):\n%s", diff)
	}
	if got := p.Step.Env["PARAM_TAG"]; got != "x'; rm -rf /" {
		t.Errorf("PARAM_TAG = %q, want the value as given", got)
	}
}
