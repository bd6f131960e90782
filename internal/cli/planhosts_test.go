package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// swapHostDoer hands on every call and, in operations it answers, puts
// another host in place of the second wave's first: a server (or a proxy)
// that shows the approver a list other than the one requested.
type swapHostDoer struct{ execDoer }

func (d swapHostDoer) Do(ctx context.Context, method, path string, in, out any) error {
	if err := d.execDoer.Do(ctx, method, path, in, out); err != nil {
		return err
	}
	if op, ok := out.(*wire.Operation); ok && len(op.Plan.Waves) > 1 {
		op.Plan.Waves[1].Hosts[0] = "host_attacker"
	}
	return nil
}

// TestLargePlanViews runs, shows and approves an operation on 3,000 hosts
// through the CLI: the plan views name a few hosts per wave and say how
// to see all; ops show --hosts lists every host and its digest; and a
// host list that does not match the plan's digest is refused before
// anything is signed.
func TestLargePlanViews(t *testing.T) {
	const n = 3000
	db := storetest.OpenSQLite(t)
	m, err := ops.New(ops.Config{Store: db.OpsStore()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Authenticator: cliAuthn{
		"admin": {Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}},
		"op1":   {Kind: "person", ID: "p_op1", Name: "operator1", Roles: []string{"operator"}},
		"ap1":   {Kind: "person", ID: "p_ap1", Name: "approver1", Roles: []string{"approver"}},
	}, Proofs: cliProofs{}, Authorizer: cliAllow{}}, api.OpsRoutes(m, nopStarter{}))
	if err != nil {
		t.Fatal(err)
	}
	who := "admin"
	var doer execDoer = handlerDoer{h: srv, who: &who}
	old := execClient
	execClient = func(*env) (execDoer, error) { return doer, nil }
	t.Cleanup(func() { execClient = old })
	cli := func(as string, args ...string) (int, string, string) {
		t.Helper()
		who = as
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	ctx, now := context.Background(), time.Now()
	err = db.OpsStore().InTx(ctx, func(tx ops.Tx) error {
		if err := tx.EnsureServices(ctx, []string{"fleet"}, now); err != nil {
			return err
		}
		for i := range n {
			h := ops.Host{ID: fmt.Sprintf("host_%05d", i), Name: fmt.Sprintf("fleet-%05d", i), Services: []string{"fleet"},
				InService: true, Healthy: true, LastSeen: now}
			if err := tx.InsertHost(ctx, h, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyRunbook(ctx, wire.Principal{Kind: "person", ID: "p_admin", Name: "admin", Roles: []string{"admin"}}, []byte(benchRunbook)); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := cli("op1", "run", "bench-step", "--param", "service=fleet", "--param", fmt.Sprintf("count=%d", n), "--reason", "INC-3k")
	if code != 0 {
		t.Fatalf("run on %d hosts: %d\n%s%s", n, code, out, stderr)
	}
	id := strings.Fields(out[strings.Index(out, "Operation op_"):])[1]
	if lines := strings.Count(out, "\n"); lines > 40 || !strings.Contains(out, " more (") || !strings.Contains(out, fmt.Sprintf("%d in ", n)) ||
		!strings.Contains(out, "interlock ops show "+id+" --hosts lists every one") {
		t.Errorf("run printed %d lines; want the waves summarised with the host count:\n%s", lines, out)
	}

	code, out, stderr = cli("ap1", "ops", "show", id)
	if code != 0 || strings.Count(out, "\n") > 40 || !strings.Contains(out, "interlock ops show "+id+" --hosts lists every one") {
		t.Errorf("ops show: %d, %d lines, want a summary that says how to list every host:\n%s%s", code, strings.Count(out, "\n"), out, stderr)
	}
	code, out, stderr = cli("ap1", "ops", "show", id, "--hosts")
	op, err := m.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "hosts digest: "+ops.HostsDigest(op.Plan)) {
		t.Fatalf("ops show --hosts: %d\n%s%s", code, out, stderr)
	}
	for _, w := range op.Plan.Waves {
		for _, h := range w.Hosts {
			if !strings.Contains(out, fmt.Sprintf("wave %-4d %-40s %s\n", w.Number, "fleet-"+strings.TrimPrefix(h, "host_"), h)) {
				t.Fatalf("ops show --hosts does not list %s in wave %d", h, w.Number)
			}
		}
	}

	// A host list that does not hash to the plan's digest: shown by
	// neither command, and nothing is signed.
	doer = swapHostDoer{doer}
	if code, out, stderr := cli("ap1", "ops", "show", id, "--hosts"); code == 0 || !strings.Contains(stderr, "do not approve") {
		t.Errorf("ops show --hosts of a swapped list: %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := cli("ap1", "approve", id, "--yes"); code == 0 || !strings.Contains(stderr, "nothing was signed") {
		t.Errorf("approve of a swapped list: %d\n%s%s", code, out, stderr)
	}
	doer = doer.(swapHostDoer).execDoer
	if op, _ := m.Get(ctx, id); len(op.Approvals) != 0 {
		t.Fatalf("approvals after refused approve: %v", op.Approvals)
	}

	code, out, stderr = cli("ap1", "approve", id, "--yes")
	if code != 0 || strings.Count(out, "\n") > 40 || !strings.Contains(out, "Approved.") {
		t.Errorf("approve: %d, %d lines\n%s%s", code, strings.Count(out, "\n"), out, stderr)
	}
	var list wire.OperationList
	if code, out, _ := cli("ap1", "--json", "ops", "list"); code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Operations) != 1 {
		t.Errorf("ops list --json: %d\n%s", code, out)
	}
}
