package cli

import (
	"slices"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// secretsText says which secrets a plan reads, by path, and the variable
// each reaches its commands in ("" when it reads none). It never has a
// value to show: plans carry references only.
func secretsText(p wire.Plan) string {
	if len(p.SecretRefs) == 0 {
		return ""
	}
	var parts []string
	for _, ref := range p.SecretRefs {
		var vars []string
		for _, c := range []*wire.Command{&p.Step, p.HealthCheck, p.Rollback} {
			if c == nil {
				continue
			}
			for name, r := range c.SecretEnv {
				if r == ref && !slices.Contains(vars, "$"+name) {
					vars = append(vars, "$"+name)
				}
			}
		}
		slices.Sort(vars)
		part := strings.TrimPrefix(ref, "secret:")
		if len(vars) > 0 {
			part += " (as " + strings.Join(vars, ", ") + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// printSecrets adds the "reads secrets" line to a plan shown to people
// (run, ops show, approve), padded to line up with the lines around it.
func (e *env) printSecrets(p wire.Plan, label string) {
	if s := secretsText(p); s != "" {
		e.printf("  %s %s\n", label, s)
	}
}
