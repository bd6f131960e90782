package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/policy"
)

const trainingRule = `
@id("training.production-change")
forbid (principal is Person, action == Action::"op.run", resource is Runbook)
when { resource has removes_capacity && resource.removes_capacity &&
       !(context has training && context.training.contains("production-change")) };
`

// TestTrainingGatesRun: with a policy that asks for a current
// "production-change" course before an operation that removes capacity,
// operator1 is refused without it, may run once it is recorded, is
// refused again once it lapses on the server's clock, and may run again
// after a CSV import renews it. A CSV with one wrong row records nothing.
func TestTrainingGatesRun(t *testing.T) { onBothStores(t, trainingGatesRun) }

func trainingGatesRun(t *testing.T, store string) {
	q, offset := accessServer(t, store)
	// admin2 proposes the policy; approver1 (who does not owe their
	// account to admin2) approves it.
	q.invite("admin2", "admin")
	file := filepath.Join(q.dir, "trained.cedar")
	if err := os.WriteFile(file, []byte(policy.DefaultText+trainingRule), 0o600); err != nil {
		t.Fatal(err)
	}
	cr := changeID(t, q.mustAs("admin2", "policy", "apply", "-f", file))
	q.mustAs("approver1", "change", "approve", cr, "--yes", "--otp", q.otp("approver1"))

	runArgs := []string{"--json", "run", "remove-capacity", "--param", "service=billing", "--param", "count=1", "--reason", "INC-11"}
	runs := func() bool {
		t.Helper()
		code, out, errs := q.as("operator1", runArgs...)
		if code != 0 {
			if !strings.Contains(errs, "training.production-change") {
				t.Fatalf("run refused, but not for training: %s", errs)
			}
			return false
		}
		var run wire.RunResponse
		mustJSON(t, out, &run)
		q.mustAs("approver1", "deny", run.Operation.ID, "--reason", "test only")
		return true
	}
	if runs() {
		t.Fatal("operator1 ran without the course the policy requires")
	}
	now := time.Now().UTC()
	q.mustAs("admin", "training", "record", "operator1", "production-change", "--expires", now.AddDate(0, 0, 30).Format(time.DateOnly))
	if !runs() {
		t.Fatal("operator1 was refused with a current course")
	}
	var list wire.TrainingList
	mustJSON(t, q.mustAs("admin", "--json", "training", "list"), &list)
	if len(list.Records) != 1 || !list.Records[0].Current || list.Records[0].Person != "operator1" {
		t.Fatalf("training list = %+v, want operator1's current course", list.Records)
	}

	offset.Store(int64(31 * 24 * time.Hour)) // the course lapses
	if runs() {
		t.Fatal("operator1 ran with an expired course")
	}

	// A CSV with a wrong row records nothing, and says which line.
	bad := filepath.Join(q.dir, "bad.csv")
	renewal := "username,course,completed,expires\noperator1,production-change," + now.AddDate(0, 0, 31).Format(time.DateOnly) + "," + now.AddDate(1, 0, 0).Format(time.DateOnly) + "\n"
	if err := os.WriteFile(bad, []byte(renewal+"nobody,production-change,2026-01-01,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := q.refused("admin", "training", "import", bad); !strings.Contains(errs, "Line 3") || !strings.Contains(errs, "nobody") {
		t.Errorf("a bad CSV row was refused without naming its line and user: %s", errs)
	}
	if runs() {
		t.Fatal("a refused import renewed the course")
	}
	good := filepath.Join(q.dir, "good.csv")
	if err := os.WriteFile(good, []byte(renewal), 0o600); err != nil {
		t.Fatal(err)
	}
	q.mustAs("admin", "training", "import", good)
	if !runs() {
		t.Fatal("operator1 was refused after the import renewed the course")
	}
	checkEntryLayouts(t, q.auditEntries("training.recorded"))
}
