package exec

import (
	"context"
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
// `sh -c` as one literal word, never as commands.
func TestSecretIsDataInAShellStep(t *testing.T) {
	const secret = `pa$$w0rd;echo INJECTED 'quoted'`
	e := &Engine{cfg: Config{Secrets: constSecret(secret)}}
	op := ops.Operation{ID: "op_1", Plan: ops.Plan{SecretRefs: []string{"secret:db/pw"}}}
	cmd := &ops.Command{Argv: []string{"printf %s {{secret:db/pw}}"}, Shell: true}
	s, values, err := e.buildStep(context.Background(), op, "h1", PhaseRun, cmd)
	if err != nil {
		t.Fatal(err)
	}
	out, err := osexec.Command("/bin/sh", "-c", strings.Join(s.Argv, " ")).CombinedOutput()
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
