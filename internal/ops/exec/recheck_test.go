package exec_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestDispatchSeesAHaltMadeElsewhere: the executor keeps the plan it read
// at the start of a wave and reads only the operation's state before each
// dispatch; a halt written to the store by someone else (another server
// sharing the database; the engine's own poll for that is set to an hour
// here) still stops the next dispatch.
func TestDispatchSeesAHaltMadeElsewhere(t *testing.T) {
	db := storetest.OpenSQLite(t)
	m, op, _ := startedOp(t, db, 20)
	canary := op.Plan.Waves[0].Hosts[0]
	release := make(chan struct{})
	d := newDispatcher().set(canary+"/"+exec.PhaseRun, outcome{release: release})
	d.sent = make(chan string, 16)
	eng, err := exec.New(exec.Config{Store: db.ExecStore(), Ops: m, Guard: m, Dispatcher: d, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := eng.Start(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the canary's step was never sent")
	}
	if _, err := db.Exec(ctx, `UPDATE ops_operations SET state = $1 WHERE id = $2`, string(ops.OpHalted), op.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	// Without the check, the canary's health check follows at once.
	select {
	case next := <-d.sent:
		t.Fatalf("%s was dispatched after the operation was halted elsewhere", next)
	case <-time.After(2 * time.Second):
	}
	if calls := d.called(); !slices.Equal(calls, []string{canary + "/" + exec.PhaseRun}) {
		t.Fatalf("dispatched %v after the operation was halted elsewhere; want only the canary's step", calls)
	}
}
