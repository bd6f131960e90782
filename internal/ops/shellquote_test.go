package ops

import (
	"strings"
	"testing"
)

func TestCheckShellQuoting(t *testing.T) {
	for _, tt := range []struct {
		name, argv string
		ok         bool
	}{
		{"unquoted placeholder", `echo restarting {{tag}}`, true},
		{"quoted text beside it", `echo "restarting" {{tag}} 'now'`, true},
		{"inside double quotes", `echo "restarting {{tag}}"`, false},
		{"inside single quotes", `echo 'restarting {{tag}}'`, false},
		{"after a backslash", `echo \{{tag}}`, false},
		{"escaped quote does not open quotes", `echo \" {{tag}}`, true},
		{"double quote inside single quotes is literal", `echo '"' {{tag}}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkShellQuoting("step.argv", tt.argv)
			if (err == nil) != tt.ok {
				t.Errorf("checkShellQuoting(%q) = %v, want ok=%v", tt.argv, err, tt.ok)
			}
		})
	}
}

// TestShellRunbookRefusesQuotedPlaceholder: the injection the check stops,
// through the real runbook parser.
func TestShellRunbookRefusesQuotedPlaceholder(t *testing.T) {
	src := `name: r
risk: low
parameters:
  - name: service
    type: service
  - name: count
    type: int
    min: 1
    max: 10
  - name: tag
    type: string
target:
  service: service
  count: count
step:
  shell: true
  argv: ["echo \"restarting {{tag}}\""]
`
	_, err := ParseRunbook([]byte(src))
	if err == nil || !strings.Contains(err.Error(), "inside quotes") {
		t.Fatalf("ParseRunbook = %v, want a refusal naming the quoted placeholder", err)
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
