package ops

import (
	"strings"
	"testing"
)

// TestPlaceholdersCannotBeSmuggledIntoCode is the attacker's side of the
// shell-text rule: a runbook author (or reviewer who missed it) hides a
// placeholder in code that a program other than the first one runs — a
// shell started by xargs, find -exec or flock, a string env -S splits
// into words again, su -c, watch, a clustered perl -ne, or an ssh option
// whose value is a local command. Each is refused at apply.
func TestPlaceholdersCannotBeSmuggledIntoCode(t *testing.T) {
	for _, tt := range []struct {
		name, argv string
		want       string // "" means accepted
	}{
		{"env -S", `"env", "-S", "sh -c 'echo {{name}}'"`, `step.argv[2] puts {{name}} into a string env -S splits into words again`},
		{"env --split-string=", `"/usr/bin/env", "--split-string=sh -c 'echo {{name}}'"`, `step.argv[1] puts {{name}} into a string env -S splits into words again`},
		{"xargs sh -c", `"xargs", "-0", "sh", "-c", "echo {{name}}"`, `step.argv[4] puts {{name}} into the script sh -c runs`},
		{"find -exec sh -c", `"find", "/srv", "-name", "x", "-exec", "sh", "-c", "rm {{name}}", ";"`, `step.argv[7] puts {{name}} into the script sh -c runs`},
		{"flock -c", `"flock", "/run/lock", "-c", "systemctl restart {{name}}"`, `step.argv[3] puts {{name}} into the script flock -c runs`},
		{"su -c", `"su", "-", "app", "-c", "echo {{name}}"`, `step.argv[4] puts {{name}} into the script su -c runs`},
		{"runuser --command=", `"runuser", "-u", "app", "--command=echo {{name}}"`, `step.argv[3] puts {{name}} into the script runuser -c runs`},
		{"watch", `"watch", "-n", "5", "echo", "{{name}}"`, `step.argv[4] puts {{name}} into the script watch runs`},
		{"perl -ne", `"perl", "-ne", "print if /{{name}}/"`, `step.argv[2] puts {{name}} into code that perl -e runs`},
		{"python -c attached", `"python3", "-cprint('{{name}}')"`, `step.argv[1] puts {{name}} into code that python3 -c runs`},
		{"node --eval=", `"node", "--eval=console.log('{{name}}')"`, `step.argv[1] puts {{name}} into code that node --eval runs`},
		{"ssh -o ProxyCommand", `"ssh", "-o", "ProxyCommand=nc {{name}} 22", "db01", "uptime"`, `step.argv[2] puts {{name}} into an ssh option that runs a local command`},
		{"ssh -oProxyCommand attached", `"ssh", "-oProxyCommand=nc {{name}} 22", "db01", "uptime"`, `step.argv[1] puts {{name}} into an ssh option that runs a local command`},
		{"xargs with a data argument", `"xargs", "-n1", "echo", "{{name}}"`, ""},
		{"find with a name pattern", `"find", "/srv", "-name", "{{name}}"`, ""},
		{"ssh -o with a plain option", `"ssh", "-o", "ConnectTimeout=5", "--", "{{name}}", "uptime"`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRunbook([]byte(shellRunbook(tt.argv, false)))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseRunbook = %v, want it accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRunbook = %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

// TestValuesCannotBecomeOptions: a string value that would stand as a
// whole option in front of a program's operands (ssh's -oProxyCommand=…,
// rsync's -e, curl's -o) is refused at plan time, unless "--" ends the
// options before it or the runbook's enum lists that exact value.
func TestValuesCannotBecomeOptions(t *testing.T) {
	for _, tt := range []struct {
		name, argv string
		enum       string
		value      string
		want       string // "" means accepted
	}{
		{"ssh destination", `"ssh", "{{name}}", "uptime"`, "", "-oProxyCommand=sh -c 'id>/tmp/x'",
			`parameter name would be read as an option by ssh (it starts with "-")`},
		{"curl url", `"curl", "-fsS", "{{name}}"`, "", "-o/etc/cron.d/x", `parameter name would be read as an option by curl`},
		{"placeholder leads the element", `"rsync", "-a", "{{name}}:/srv/", "/srv/"`, "", "-e sh -c id", `would be read as an option by rsync`},
		{"ordinary value", `"ssh", "{{name}}", "uptime"`, "", "db01", ""},
		{"after --", `"ssh", "--", "{{name}}", "uptime"`, "", "-oProxyCommand=x", ""},
		{"inside an element", `"curl", "https://{{name}}/health"`, "", "-x", ""},
		{"listed in the enum", `"tar", "{{name}}", "/srv"`, "[\"-czf\", \"-cjf\"]", "-czf", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := shellRunbook(tt.argv, false)
			if tt.enum != "" {
				src = strings.Replace(src, "{name: name, type: string}", "{name: name, type: string, enum: "+tt.enum+"}", 1)
			}
			rb, err := ParseRunbook([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			_, err = rb.resolveParams(map[string]string{"service": "billing", "count": "1", "name": tt.value, "cred": "secret:x"}, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("resolveParams = %v, want it accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("resolveParams = %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

// TestParametersNeverChooseTheProgram: the program a step runs is part of
// what was approved, so a placeholder in it (first, or behind sudo, env or
// timeout) is refused at apply unless every parameter in it is a string
// with an enum, a list the reviewer read.
func TestParametersNeverChooseTheProgram(t *testing.T) {
	for _, tt := range []struct {
		name, argv, enum string
		want             string // "" means accepted
	}{
		{"first", `"{{name}}", "--version"`, "", `step.argv[0] lets parameter name choose the program the step runs`},
		{"behind sudo", `"sudo", "-u", "app", "{{name}}"`, "", `step.argv[3] lets parameter name choose the program the step runs`},
		{"in the program's path", `"/opt/{{name}}/bin/restart"`, "", `step.argv[0] lets parameter name choose the program the step runs`},
		{"from an enum", `"/opt/{{name}}/bin/restart"`, `["api", "web"]`, ""},
		{"an argument", `"systemctl", "restart", "{{name}}"`, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := shellRunbook(tt.argv, false)
			if tt.enum != "" {
				src = strings.Replace(src, "{name: name, type: string}", "{name: name, type: string, enum: "+tt.enum+"}", 1)
			}
			_, err := ParseRunbook([]byte(src))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseRunbook = %v, want it accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRunbook = %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
}

// TestNegativeNumbersAreNotOptions: `kill -9 {{pid}}` with pid -1 signals
// every process; a negative whole number where the program reads options is
// refused unless the parameter's min says negatives are meant.
func TestNegativeNumbersAreNotOptions(t *testing.T) {
	src := strings.Replace(shellRunbook(`"kill", "-9", "{{pid}}"`, false), "  - {name: name, type: string}", "  - {name: name, type: string}\n  - {name: pid, type: int}", 1)
	rb, err := ParseRunbook([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{"service": "billing", "count": "1", "name": "x", "cred": "secret:x", "pid": "-1"}
	if _, err := rb.resolveParams(params, nil); err == nil || !strings.Contains(err.Error(), "parameter pid would be read as an option by kill") {
		t.Errorf("pid -1: %v", err)
	}
	params["pid"] = "4242"
	if _, err := rb.resolveParams(params, nil); err != nil {
		t.Errorf("pid 4242: %v", err)
	}
	rb, err = ParseRunbook([]byte(strings.Replace(src, "{name: pid, type: int}", "{name: pid, type: int, min: -10}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	params["pid"] = "-1"
	if _, err := rb.resolveParams(params, nil); err != nil {
		t.Errorf("pid -1 with min -10: %v", err)
	}
}
