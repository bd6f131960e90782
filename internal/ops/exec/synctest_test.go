package exec_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// bakeRig starts a two-wave operation with a 10-minute bake and a health
// check, inside a synctest bubble (fake time).
func bakeRig(t *testing.T) (*exec.Engine, *fakeOps, *fakeDispatcher) {
	p := plan([]string{"h1"}, []string{"h2"})
	p.BakeSeconds = 600
	p.HealthCheck = &ops.Command{Argv: []string{"svc", "health"}}
	o := newFakeOps(operation(p))
	d := newDispatcher()
	eng, err := exec.New(exec.Config{Store: storetest.OpenSQLite(t).ExecStore(), Ops: o, Guard: &fakeGuard{}, Dispatcher: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Shutdown(context.Background()) })
	if err := eng.Start(context.Background(), "op1"); err != nil {
		t.Fatal(err)
	}
	return eng, o, d
}

func TestBakeTimeBeforeHealthCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng, _, d := bakeRig(t)
		synctest.Wait()
		if diff := cmp.Diff([]string{"h1/run"}, d.called()); diff != "" {
			t.Fatalf("before the bake (-want +got):\n%s", diff)
		}
		time.Sleep(599 * time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{"h1/run"}, d.called()); diff != "" {
			t.Fatalf("one second before the bake ends (-want +got):\n%s", diff)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{"h1/run", "h1/health", "h2/run"}, d.called()); diff != "" {
			t.Errorf("after the bake (-want +got):\n%s", diff)
		}
		time.Sleep(601 * time.Second)
		synctest.Wait()
		p, err := eng.Progress(context.Background(), "op1")
		if err != nil {
			t.Fatal(err)
		}
		if p.State != ops.OpSucceeded {
			t.Errorf("state = %s (%s), want succeeded", p.State, p.Detail)
		}
	})
}

func TestHaltElsewhereStopsWithinASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng, o, d := bakeRig(t)
		synctest.Wait()              // h1 done, baking
		o.force("op1", ops.OpHalted) // another server's kill switch
		time.Sleep(time.Second)
		synctest.Wait()
		// The run has ended (Resume no longer says it is still stopping)
		// without waiting for the bake, and nothing more was sent.
		if err := eng.Resume(context.Background(), "op1", "person:p3"); err != nil {
			if ue, ok := usererr.As(err); ok && ue.Code == "op_still_stopping" {
				t.Fatalf("1 s after the halt the run is still going: %v", err)
			}
			t.Fatal(err)
		}
		eng.Halt(context.Background(), "op1", "person:p3", "stop the test run")
		synctest.Wait()
		if diff := cmp.Diff([]string{"h1/run"}, d.called()); diff != "" {
			t.Errorf("dispatches (-want +got):\n%s", diff)
		}
	})
}

func TestBakeWithoutHealthCheckOnlyBetweenWaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := plan([]string{"h1"}, []string{"h2"})
		p.BakeSeconds = 600
		o := newFakeOps(operation(p))
		d := newDispatcher()
		eng, err := exec.New(exec.Config{Store: storetest.OpenSQLite(t).ExecStore(), Ops: o, Guard: &fakeGuard{}, Dispatcher: d})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.Shutdown(context.Background()) })
		start := time.Now()
		if err := eng.Start(context.Background(), "op1"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(599 * time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{"h1/run"}, d.called()); diff != "" {
			t.Fatalf("before the bake ends (-want +got):\n%s", diff)
		}
		if err := eng.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The run ended 600 s in: one bake between the waves, none after the last.
		if got := time.Since(start); got < 600*time.Second || got >= 601*time.Second {
			t.Errorf("the run took %s, want 600s (one bake)", got)
		}
		if diff := cmp.Diff([]string{"h1/run", "h2/run"}, d.called()); diff != "" {
			t.Errorf("dispatches (-want +got):\n%s", diff)
		}
		if op := o.op("op1"); op.State != ops.OpSucceeded {
			t.Errorf("state = %s, want succeeded", op.State)
		}
	})
}
