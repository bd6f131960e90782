package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/store"
)

var _ = Register("exec", func(t *testing.T, open Opener) {
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 123).UTC()
	dispatched := func(host, phase string, wave int) exec.StepRecord {
		return exec.StepRecord{OpID: "op1", HostID: host, Phase: phase, Wave: wave,
			StepID: exec.StepID("op1", host, phase), State: ops.StepDispatched, ExitCode: -1, DispatchedAt: t0}
	}
	insert := func(t *testing.T, st exec.Store, r exec.StepRecord) error {
		t.Helper()
		return st.InTx(ctx, func(tx exec.Tx) error { return tx.InsertExecStep(ctx, r) })
	}

	t.Run("a record round-trips", func(t *testing.T) {
		st := open(t).ExecStore()
		r := dispatched("h1", exec.PhaseRun, 1)
		if err := insert(t, st, r); err != nil {
			t.Fatal(err)
		}
		done := r
		done.State, done.ExitCode, done.Output, done.Error, done.FinishedAt = ops.StepFailed, 3, "out ✓", "exit 3", t0.Add(time.Second)
		if err := st.InTx(ctx, func(tx exec.Tx) error { return tx.UpdateExecStep(ctx, done, ops.StepDispatched) }); err != nil {
			t.Fatal(err)
		}
		got, err := st.ExecSteps(ctx, "op1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]exec.StepRecord{done}, got); diff != "" {
			t.Errorf("ExecSteps (-want +got):\n%s", diff)
		}
	})

	t.Run("a second dispatch record for the same op, host and phase is refused", func(t *testing.T) {
		st := open(t).ExecStore()
		if err := insert(t, st, dispatched("h1", exec.PhaseRun, 1)); err != nil {
			t.Fatal(err)
		}
		again := dispatched("h1", exec.PhaseRun, 2)
		again.StepID = "stp_other"
		if err := insert(t, st, again); !errors.Is(err, exec.ErrStepExists) {
			t.Fatalf("second InsertExecStep = %v, want ErrStepExists", err)
		}
		// Other phases of the host and other hosts are separate steps.
		for _, r := range []exec.StepRecord{dispatched("h1", exec.PhaseHealth, 1), dispatched("h2", exec.PhaseRun, 1)} {
			if err := insert(t, st, r); err != nil {
				t.Errorf("insert %s/%s: %v", r.HostID, r.Phase, err)
			}
		}
		got, err := st.ExecSteps(ctx, "op1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Errorf("ExecSteps returned %d records, want 3", len(got))
		}
	})

	t.Run("update only from the expected state", func(t *testing.T) {
		st := open(t).ExecStore()
		r := dispatched("h1", exec.PhaseRun, 1)
		if err := insert(t, st, r); err != nil {
			t.Fatal(err)
		}
		r.State = ops.StepSucceeded
		if err := st.InTx(ctx, func(tx exec.Tx) error { return tx.UpdateExecStep(ctx, r, ops.StepUnknown) }); !errors.Is(err, exec.ErrStepState) {
			t.Errorf("update from the wrong state = %v, want ErrStepState", err)
		}
		missing := dispatched("h9", exec.PhaseRun, 1)
		if err := st.InTx(ctx, func(tx exec.Tx) error { return tx.UpdateExecStep(ctx, missing, ops.StepDispatched) }); !errors.Is(err, exec.ErrStepState) {
			t.Errorf("update of a missing record = %v, want ErrStepState", err)
		}
		got, err := st.ExecSteps(ctx, "op1")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].State != ops.StepDispatched {
			t.Errorf("records = %+v, want the one record still dispatched", got)
		}
	})

	t.Run("a pending record is dispatched once", func(t *testing.T) {
		st := open(t).ExecStore()
		r := dispatched("h1", exec.PhaseRun, 1)
		r.State = ops.StepPending
		if err := insert(t, st, r); err != nil {
			t.Fatal(err)
		}
		again := dispatched("h1", exec.PhaseRun, 1)
		again.DispatchedAt = t0.Add(time.Minute)
		var errs []error
		for range 2 {
			errs = append(errs, st.InTx(ctx, func(tx exec.Tx) error { return tx.UpdateExecStep(ctx, again, ops.StepPending) }))
		}
		if errs[0] != nil || !errors.Is(errs[1], exec.ErrStepState) {
			t.Fatalf("pending → dispatched twice = %v; want nil, then ErrStepState", errs)
		}
		got, err := st.ExecSteps(ctx, "op1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]exec.StepRecord{again}, got); diff != "" {
			t.Errorf("ExecSteps (-want +got):\n%s", diff)
		}
	})

	t.Run("a rolled-back dispatch leaves no record and no audit entry", func(t *testing.T) {
		db := open(t)
		st := db.ExecStore()
		boom := errors.New("boom")
		err := st.InTx(ctx, func(tx exec.Tx) error {
			if err := tx.InsertExecStep(ctx, dispatched("h1", exec.PhaseRun, 1)); err != nil {
				return err
			}
			if err := audit.Append(ctx, tx, audit.Entry{Kind: "op.step_dispatched", Version: 1, Actor: "system", Time: t0}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v, want boom", err)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM exec_steps) + (SELECT COUNT(*) FROM audit_entries)`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("rows after rollback = %d, want 0", n)
		}
	})

	t.Run("versions count up per op", func(t *testing.T) {
		st := open(t).ExecStore()
		if v, err := st.ExecVersion(ctx, "op1"); err != nil || v != 0 {
			t.Fatalf("ExecVersion before any change = %d, %v; want 0, nil", v, err)
		}
		var got []int64
		for _, op := range []string{"op1", "op1", "op2", "op1"} {
			err := st.InTx(ctx, func(tx exec.Tx) error {
				v, err := tx.BumpExecVersion(ctx, op)
				got = append(got, v)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if diff := cmp.Diff([]int64{1, 2, 1, 3}, got); diff != "" {
			t.Errorf("BumpExecVersion (-want +got):\n%s", diff)
		}
		if v, err := st.ExecVersion(ctx, "op1"); err != nil || v != 3 {
			t.Errorf("ExecVersion = %d, %v; want 3, nil", v, err)
		}
	})
})

// The store's Tx must satisfy the executor's Tx.
var _ exec.Tx = (*store.Tx)(nil)
