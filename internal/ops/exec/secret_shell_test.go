package exec

import (
	"context"
	"os"
	osexec "os/exec"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/ops"
)

type constSecret string

func (c constSecret) Resolve(context.Context, ops.Operation, string) (string, error) {
	return string(c), nil
}

// TestSecretIsDataInAShellStep: a secret with shell syntax in it reaches
// `sh -c` through the environment as one literal value, never as
// commands, and the script sent is the approved one byte for byte.
func TestSecretIsDataInAShellStep(t *testing.T) {
	const secret = `pa$$w0rd;echo INJECTED 'quoted' $(id -un)`
	e := &Engine{cfg: Config{Secrets: constSecret(secret)}}
	op := ops.Operation{ID: "op_1", Plan: ops.Plan{SecretRefs: []string{"secret:db/pw"}}}
	script := `printf %s "$PARAM_PW"`
	cmd := &ops.Command{Argv: []string{script}, Shell: true, SecretEnv: map[string]string{"PARAM_PW": "secret:db/pw"}}
	s, values, err := e.buildStep(context.Background(), op, "h1", PhaseRun, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Argv) != 1 || s.Argv[0] != script {
		t.Fatalf("argv sent = %q, want the approved script %q", s.Argv, script)
	}
	c := osexec.Command("/bin/sh", "-c", strings.Join(s.Argv, " "))
	c.Env = os.Environ()
	for k, v := range s.Env {
		c.Env = append(c.Env, k+"="+v)
	}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	if string(out) != secret {
		t.Errorf("the shell printed %q, want the secret verbatim %q", out, secret)
	}
	if len(values) != 1 || values[0] != secret || len(s.Redact) != 1 {
		t.Errorf("values to redact = %q, want the secret itself", values)
	}
}
