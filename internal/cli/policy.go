package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// policyDoer is the one API call the policy commands make;
// *apiclient.Client implements it.
type policyDoer interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// policyClient returns the logged-in API client for the policy commands;
// tests replace it.
var policyClient = func(e *env) (policyDoer, error) {
	c, _, err := e.client()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (e *env) policyAPI() (policyDoer, error) { return policyClient(e) }

var _ = register(func(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Read, test and apply the Cedar policy that authorizes every action",
		Long: "Every API action is decided by a Cedar policy; default deny. `get` prints the policy in force,\n" +
			"`test` checks decision cases against a candidate without applying it, `diff` shows what changes\n" +
			"between two policies (offline), and `apply` validates a new policy and makes a change request that\n" +
			"another person approves before it is in force (it refuses a policy that does not parse, lacks @id,\n" +
			"names unknown actions or types, or would stop admins from applying policy).",
	}
	cmd.AddCommand(policyGetCmd(e), policyApplyCmd(e), policyTestCmd(e), policyDiffCmd(e))
	return cmd
})

func policyGetCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "get",
		Short: "Print the policy in force (its version and hash go to stderr)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.policyAPI()
			if err != nil {
				return err
			}
			var p wire.Policy
			if err := c.Do(cmd.Context(), "GET", "/v1/policy", nil, &p); err != nil {
				return err
			}
			return e.output(p, func() error {
				version := fmt.Sprintf("version %d", p.Version)
				if p.Version == 0 {
					version = "the built-in default (never applied)"
				}
				fmt.Fprintf(e.stderr, "# policy in force: %s, %s\n", version, p.Hash)
				e.printf("%s", p.Text)
				if !strings.HasSuffix(p.Text, "\n") {
					e.printf("\n")
				}
				return nil
			})
		},
	}
}

func policyApplyCmd(e *env) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Validate a Cedar policy file and request to put it in force (another person approves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := e.readPolicyFile(file)
			if err != nil {
				return err
			}
			c, err := e.policyAPI()
			if err != nil {
				return err
			}
			var out wire.PolicyApplied
			cr, err := doConfigChange(cmd.Context(), c, "PUT", "/v1/policy", wire.PolicyApplyRequest{Text: text}, &out)
			if err != nil {
				return err
			}
			if cr != nil {
				return e.printPending(cr)
			}
			return e.output(out, func() error {
				e.printf("Policy version %d is in force (%s).\n", out.Version, out.Hash)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "Cedar policy file (- for stdin)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func policyTestCmd(e *env) *cobra.Command {
	var file, casesFile string
	cmd := &cobra.Command{
		Use:   "test [-f FILE] --cases FILE",
		Short: "Check decision cases against a candidate policy (or the one in force) without applying it",
		Long: "The cases file is YAML (or JSON): a list of cases such as\n\n" +
			"  - name: viewers cannot run operations\n" +
			"    principal: {id: vic, roles: [viewer]}     # kind: person (default) or agent\n" +
			"    action: op.run\n" +
			"    resource: {type: Runbook, id: remove-capacity}\n" +
			"    context: {risk: high, mfa_age_s: 30}\n" +
			"    want: deny                                 # allow | deny\n" +
			"    want_reasons: []                           # optional: exact deciding policy ids\n" +
			"    want_approvals: {count: 1, roles: [approver]}   # optional\n\n" +
			"Exits 1 when a case fails.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var text string
			if file != "" {
				var err error
				if text, err = e.readPolicyFile(file); err != nil {
					return err
				}
			}
			raw, err := os.ReadFile(casesFile)
			if err != nil {
				return fmt.Errorf("read cases: %w", err)
			}
			cases, err := parsePolicyCases(raw)
			if err != nil {
				return fmt.Errorf("cases file %s: %w", casesFile, err)
			}
			c, err := e.policyAPI()
			if err != nil {
				return err
			}
			var out wire.PolicyTestResponse
			if err := c.Do(cmd.Context(), "POST", "/v1/policy/test", wire.PolicyTestRequest{Text: text, Cases: cases}, &out); err != nil {
				return err
			}
			if err := e.output(out, func() error { return e.printPolicyTest(out) }); err != nil {
				return err
			}
			if out.Failed > 0 {
				return &ExitError{Code: 1, Err: fmt.Errorf("%d of %d policy test cases failed", out.Failed, out.Failed+out.Passed)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "candidate Cedar policy file (- for stdin); default: the policy in force")
	cmd.Flags().StringVar(&casesFile, "cases", "", "YAML or JSON file of decision cases")
	_ = cmd.MarkFlagRequired("cases")
	return cmd
}

func (e *env) printPolicyTest(out wire.PolicyTestResponse) error {
	rows := make([][]string, 0, len(out.Results))
	for _, r := range out.Results {
		status := "PASS"
		if !r.Pass {
			status = "FAIL"
		}
		decision := "deny"
		if r.Allow {
			decision = "allow"
		}
		by := strings.Join(r.Reasons, ",")
		if by == "" {
			by = "(default deny)"
		}
		approvals := ""
		if r.Approvals != nil {
			approvals = fmt.Sprintf("%d from %s", r.Approvals.Count, strings.Join(r.Approvals.Roles, ","))
		}
		rows = append(rows, []string{status, r.Name, decision, by, approvals})
	}
	if err := e.table([]string{"RESULT", "CASE", "DECISION", "BY", "APPROVALS"}, rows); err != nil {
		return err
	}
	for _, r := range out.Results {
		for _, f := range r.Failures {
			e.printf("%s: %s\n", r.Name, f)
		}
		for _, er := range r.Errors {
			e.printf("%s: policy error: %s\n", r.Name, er)
		}
	}
	e.printf("%d passed, %d failed (policy %s)\n", out.Passed, out.Failed, out.Hash)
	return nil
}

// readPolicyFile reads a Cedar file, or stdin for "-".
func (e *env) readPolicyFile(name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20+1))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("read policy: %w", err)
	}
	if len(b) > 1<<20 {
		return "", errors.New("the policy file is larger than 1 MiB")
	}
	return string(b), nil
}

// parsePolicyCases reads a YAML (or JSON) list of cases, refusing fields
// the API does not know so that a misspelt "want" cannot pass silently.
func parsePolicyCases(raw []byte) ([]wire.PolicyTestCase, error) {
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	if _, ok := v.([]any); !ok {
		return nil, errors.New("it must be a list of cases")
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var cases []wire.PolicyTestCase
	if err := dec.Decode(&cases); err != nil {
		return nil, err
	}
	if len(cases) == 0 {
		return nil, errors.New("it holds no cases")
	}
	return cases, nil
}
