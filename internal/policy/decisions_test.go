package policy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// TestDecisions runs the decision cases in testdata/decisions/*.txtar.
//
// Each archive holds an optional policy.cedar (the embedded default when
// absent), and either an error file (the policy must be refused: first
// line the usererr code, second line a fragment of the message) or a cases
// file of blocks separated by blank lines:
//
//	case: approver approves with fresh MFA
//	principal: person ann approver        (or: agent web-1)
//	action: op.approve
//	resource: Operation::"op-1"            (optional; System::"interlock")
//	context: {"mfa_age_s": 30}             (optional; JSON object)
//	want: allow approver.decide            (allow|deny, then the exact policy ids)
//	approvals: 1 approver approvals.baseline   (optional: count, roles or -, ids)
func TestDecisions(t *testing.T) {
	files, err := filepath.Glob("testdata/decisions/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no decision cases found: %v", err)
	}
	now := time.Unix(1800000000, 0)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sections := map[string]string{}
			for _, f := range ar.Files {
				sections[f.Name] = string(f.Data)
			}
			text, ok := sections["policy.cedar"]
			if !ok {
				text = DefaultText
			}
			c, err := compile(text)
			if want, ok := sections["error"]; ok {
				lines := strings.SplitN(strings.TrimSpace(want), "\n", 2)
				ue, isUser := usererr.As(err)
				if !isUser || ue.Kind != usererr.Invalid {
					t.Fatalf("compile = %v, want a usererr.Invalid %s", err, lines[0])
				}
				if ue.Code != lines[0] {
					t.Errorf("error code = %s, want %s (message: %s)", ue.Code, lines[0], ue.Msg)
				}
				if len(lines) > 1 && !strings.Contains(ue.Msg, strings.TrimSpace(lines[1])) {
					t.Errorf("error message = %q, want it to contain %q", ue.Msg, strings.TrimSpace(lines[1]))
				}
				return
			}
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			cases, err := parseCases(sections["cases"])
			if err != nil {
				t.Fatal(err)
			}
			if len(cases) == 0 {
				t.Fatal("no cases")
			}
			results, err := runCases(c, cases, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if !r.Pass {
					t.Errorf("%s: %s", r.Name, strings.Join(r.Failures, "; "))
				}
			}
			// The action index must never change an answer.
			for _, tc := range cases {
				req, _ := tc.request(now)
				if got, want := decide(c, req, now, nil), evaluate(c.all, req, now, nil); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: indexed decision %+v differs from unindexed %+v", tc.Name, got, want)
				}
			}
		})
	}
}

func parseCases(text string) ([]TestCase, error) {
	var out []TestCase
	for _, block := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if strings.TrimSpace(block) == "" {
			continue
		}
		var tc TestCase
		for _, line := range strings.Split(block, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, val, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("line %q is not key: value", line)
			}
			val = strings.TrimSpace(val)
			f := strings.Fields(val)
			switch key {
			case "case":
				tc.Name = val
			case "principal":
				if len(f) < 2 {
					return nil, fmt.Errorf("%s: principal needs a kind and an id", tc.Name)
				}
				tc.Principal = wire.Principal{Kind: f[0], ID: f[1], Name: f[1]}
				if len(f) > 2 {
					tc.Principal.Roles = strings.Split(f[2], ",")
				}
			case "action":
				tc.Action = val
			case "resource":
				typ, id, _ := strings.Cut(val, "::")
				tc.Resource = Resource{Type: typ, ID: strings.Trim(id, `"`)}
			case "attrs":
				if err := json.Unmarshal([]byte(val), &tc.Resource.Attrs); err != nil {
					return nil, fmt.Errorf("%s: attrs: %v", tc.Name, err)
				}
			case "context":
				if err := json.Unmarshal([]byte(val), &tc.Context); err != nil {
					return nil, fmt.Errorf("%s: context: %v", tc.Name, err)
				}
			case "want":
				if len(f) == 0 {
					return nil, fmt.Errorf("%s: want needs allow or deny", tc.Name)
				}
				tc.Want, tc.WantReasons = f[0], append([]string{}, f[1:]...)
			case "approvals":
				if len(f) < 2 {
					return nil, fmt.Errorf("%s: approvals needs a count and roles", tc.Name)
				}
				n, err := strconv.Atoi(f[0])
				if err != nil {
					return nil, fmt.Errorf("%s: approvals count: %v", tc.Name, err)
				}
				r := &Requirement{Count: n}
				if f[1] != "-" {
					r.Roles = strings.Split(f[1], ",")
				}
				if len(f) > 2 {
					r.PolicyIDs = strings.Split(f[2], ",")
				}
				tc.WantApprovals = r
			default:
				return nil, fmt.Errorf("%s: unknown key %q", tc.Name, key)
			}
		}
		out = append(out, tc)
	}
	return out, nil
}

func TestDecisionCasesExist(t *testing.T) {
	// Guard against a glob typo silently running nothing.
	if _, err := os.Stat("testdata/decisions/default_roles.txtar"); err != nil {
		t.Fatal(err)
	}
}
