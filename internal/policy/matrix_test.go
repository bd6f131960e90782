package policy

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestDefaultMatrix pins who may do what under the default policy, one
// row per action, one column per role (fresh MFA). A change to
// default.cedar shows here as a diff; after reviewing it, regenerate with
//
//	go test ./internal/policy -run DefaultMatrix -update
func TestDefaultMatrix(t *testing.T) {
	c := mustCompile(t, DefaultText)
	cols := []struct {
		name string
		p    wire.Principal
	}{
		{"none", wire.Principal{Kind: "person", ID: "n", MFAAt: testNow}},
		{"viewer", wire.Principal{Kind: "person", ID: "v", Roles: []string{"viewer"}, MFAAt: testNow}},
		{"operator", wire.Principal{Kind: "person", ID: "o", Roles: []string{"operator"}, MFAAt: testNow}},
		{"approver", wire.Principal{Kind: "person", ID: "a", Roles: []string{"approver"}, MFAAt: testNow}},
		{"admin", wire.Principal{Kind: "person", ID: "r", Roles: []string{"admin"}, MFAAt: testNow}},
		{"agent", wire.Principal{Kind: "agent", ID: "web-1"}},
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "action")
	for _, col := range cols {
		fmt.Fprint(tw, "\t", col.name)
	}
	fmt.Fprintln(tw)
	for _, a := range Actions {
		fmt.Fprint(tw, a)
		for _, col := range cols {
			mark := "-"
			if decide(c, Request{Principal: col.p, Action: a}, testNow, nil).Allow {
				mark = "allow"
			}
			fmt.Fprint(tw, "\t", mark)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	got := b.String()
	const golden = "testdata/default_matrix.txt"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("default policy matrix changed (-want +got):\n%s\nIf intended, run: go test ./internal/policy -run DefaultMatrix -update", diff)
	}
}
