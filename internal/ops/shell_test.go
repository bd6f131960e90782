package ops

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// shellRunbook is a runbook whose step is the shell text given.
func shellRunbook(step string, shell bool) string {
	return `name: r
risk: low
parameters:
  - {name: service, type: service}
  - {name: count, type: int, min: 1, max: 10}
  - {name: name, type: string}
  - {name: cred, type: secret}
target: {service: service, count: count}
step:
  shell: ` + map[bool]string{true: "true", false: "false"}[shell] + `
  argv: [` + step + `]
health_check:
  argv: ["true"]
`
}

// TestPlaceholdersNeverBecomeShellText: every way of splicing a value into
// shell text is refused at apply, with the rewrite in the sentence, and a
// secret is never put in argv, shell or not.
func TestPlaceholdersNeverBecomeShellText(t *testing.T) {
	const rewrite = `puts {{name}} into shell text; write "$PARAM_NAME" there and Interlock passes name as $PARAM_NAME.`
	for _, tt := range []struct {
		name, argv string
		shell      bool
		want       string // "" means accepted
	}{
		{"heredoc", `"cat <<EOF\nhello {{name}}\nEOF"`, true, "step.argv[0] " + rewrite},
		{"backticks", `"echo x", "` + "`echo {{name}}`" + `"`, true, "step.argv[1] " + rewrite},
		{"command substitution", `"echo $(printf %s {{name}})"`, true, "step.argv[0] " + rewrite},
		{"inside double quotes", `"echo \"{{ name }}\""`, true, "step.argv[0] " + rewrite},
		{"bare word", `"echo {{name}}"`, true, "step.argv[0] " + rewrite},
		{"secret in shell text", `"printf %s {{cred}}"`, true,
			`step.argv[0] puts secret parameter {{cred}} on the command line, where every user of the host can read it; Interlock passes it to every command as $PARAM_CRED in its environment: read it from there (in a shell: true step, write "$PARAM_CRED").`},
		{"secret in argv without a shell", `"mysql", "--password={{cred}}"`, false,
			`step.argv[1] puts secret parameter {{cred}} on the command line, where every user of the host can read it; Interlock passes it to every command as $PARAM_CRED in its environment: read it from there (in a shell: true step, write "$PARAM_CRED").`},
		{"constant script", `"cat <<EOF\nhello $PARAM_NAME\nEOF\nprintf '%s' \"$PARAM_CRED\" | wc -c"`, true, ""},
		{"placeholder in argv without a shell is one argument", `"echo", "{{name}}"`, false, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRunbook([]byte(shellRunbook(tt.argv, tt.shell)))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ParseRunbook = %v, want it accepted", err)
				}
				return
			}
			ue, ok := usererr.As(err)
			if !ok || ue.Code != "bad_runbook" {
				t.Fatalf("ParseRunbook = %v, want a bad_runbook refusal", err)
			}
			if diff := cmp.Diff(tt.want, ue.Msg); diff != "" {
				t.Errorf("sentence (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretNeverChoosesHosts(t *testing.T) {
	src := strings.Replace(shellRunbook(`"true"`, false), "target: {service: service, count: count}",
		`target: {service: service, count: count, selector: {zone: "{{cred}}"}}`, 1)
	if _, err := ParseRunbook([]byte(src)); err == nil || !strings.Contains(err.Error(), "a secret never chooses hosts") {
		t.Fatalf("ParseRunbook = %v, want a refusal of the secret selector", err)
	}
}

// TestParamEnvCannotSetLoaderOrShellVariables: whatever a parameter is
// called, its variable carries the PARAM_ prefix.
func TestParamEnvCannotSetLoaderOrShellVariables(t *testing.T) {
	for _, name := range []string{"path", "ifs", "ld_preload", "bash_env", "env", "home"} {
		if got := ParamEnv(name); !strings.HasPrefix(got, "PARAM_") || got != "PARAM_"+strings.ToUpper(name) {
			t.Errorf("ParamEnv(%q) = %q", name, got)
		}
	}
}

func TestStringParamCannotSmuggleAPlaceholder(t *testing.T) {
	p := Param{Name: "note", Type: ParamString}
	if err := p.check("{{secret:deploy/token}}", nil); err == nil || !strings.Contains(err.Error(), "{{") {
		t.Fatalf("check = %v, want a refusal of the embedded placeholder", err)
	}
	if err := p.check("plain note", nil); err != nil {
		t.Fatalf("check of a plain value = %v", err)
	}
}

// TestPlaceholdersNeverBecomeCodeWithoutShellTrue: shell: false is no way
// around the rule: a placeholder in the script of sh -c (behind wrappers
// too), in python -c or perl -e code, or in an ssh command is refused;
// the same value as a plain argument, or as $1 of sh -c, is data.
func TestPlaceholdersNeverBecomeCodeWithoutShellTrue(t *testing.T) {
	for _, tt := range []struct {
		name, argv string
		want       string // "" means accepted
	}{
		{"sh -c", `"sh", "-c", "echo {{name}}"`, `step.argv[2] puts {{name}} into the script sh -c runs, which is shell text; write "$PARAM_NAME" there and Interlock passes name as $PARAM_NAME.`},
		{"bash -ec behind sudo and env", `"sudo", "-u", "app", "env", "A=1", "/bin/bash", "-ec", "cat <<EOF\n{{name}}\nEOF"`, `step.argv[7] puts {{name}} into the script bash -c runs`},
		{"timeout and busybox", `"timeout", "-s", "KILL", "30", "busybox", "sh", "-c", "echo {{name}}"`, `step.argv[7] puts {{name}} into the script sh -c runs`},
		{"python -c", `"python3", "-c", "print('{{name}}')"`, `step.argv[2] puts {{name}} into code that python3 -c runs; read the environment variable PARAM_NAME there instead, where Interlock passes name.`},
		{"perl -e", `"perl", "-e", "print qq({{name}})"`, `step.argv[2] puts {{name}} into code that perl -e runs`},
		{"ssh remote command", `"ssh", "-p", "2222", "db01", "systemctl", "restart", "{{name}}"`, `step.argv[6] puts {{name}} into the command ssh sends to the remote host`},
		{"sh -c with the value as $1", `"sh", "-c", "echo \"$1\"", "greet", "{{name}}"`, ""},
		{"a script file with the value as an argument", `"sh", "/opt/greet.sh", "{{name}}"`, ""},
		{"python script file", `"python3", "/opt/greet.py", "{{name}}"`, ""},
		{"ssh destination from a parameter", `"ssh", "{{name}}", "uptime"`, ""},
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
