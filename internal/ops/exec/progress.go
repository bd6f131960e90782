package exec

import (
	"context"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/ops"
)

// Progress is an operation's execution as `interlock ops watch` shows it.
type Progress struct {
	OpID        string      `json:"op_id"`
	State       ops.OpState `json:"state"`
	Detail      string      `json:"detail,omitempty"`
	CurrentWave int         `json:"current_wave"` // highest wave with any record; 0 before the first dispatch
	// Version grows with every recorded change; pass it to Wait as since.
	Version int64          `json:"version"`
	Waves   []WaveProgress `json:"waves"`
}

// WaveProgress is one wave of the plan.
type WaveProgress struct {
	Number int            `json:"number"`
	Hosts  []HostProgress `json:"hosts"`
}

// HostProgress is one host's step (phase run) and, when they ran, its
// health check and rollback.
type HostProgress struct {
	HostID   string        `json:"host_id"`
	State    ops.StepState `json:"state"`
	ExitCode int           `json:"exit_code"` // -1 when there is none yet
	Output   string        `json:"output,omitempty"`
	Error    string        `json:"error,omitempty"`
	Health   ops.StepState `json:"health,omitempty"`
	Rollback ops.StepState `json:"rollback,omitempty"`
}

// Terminal reports whether the operation will not move again without a
// person: succeeded, halted, needs_attention, aborted, denied, withdrawn or void.
func (p Progress) Terminal() bool {
	switch p.State {
	case ops.OpSucceeded, ops.OpHalted, ops.OpAttention, ops.OpAborted, ops.OpDenied, ops.OpWithdrawn, ops.OpVoid:
		return true
	}
	return false
}

// Progress returns the operation's execution as recorded now.
func (e *Engine) Progress(ctx context.Context, opID string) (Progress, error) {
	// Version first: a change between the reads is then seen again by Wait.
	v, err := e.cfg.Store.ExecVersion(ctx, opID)
	if err != nil {
		return Progress{}, fmt.Errorf("load version of op %s: %w", opID, err)
	}
	op, err := e.cfg.Ops.Get(ctx, opID)
	if err != nil {
		return Progress{}, fmt.Errorf("load op %s: %w", opID, err)
	}
	steps, err := e.cfg.Store.ExecSteps(ctx, opID)
	if err != nil {
		return Progress{}, fmt.Errorf("load steps of op %s: %w", opID, err)
	}
	byKey := map[stepKey]StepRecord{}
	for _, s := range steps {
		byKey[stepKey{s.HostID, s.Phase}] = s
	}
	p := Progress{OpID: opID, State: op.State, Detail: op.Detail, CurrentWave: currentWave(steps), Version: v}
	for _, w := range op.Plan.Waves {
		wp := WaveProgress{Number: w.Number, Hosts: make([]HostProgress, 0, len(w.Hosts))}
		for _, h := range w.Hosts {
			hp := HostProgress{HostID: h, State: ops.StepPending, ExitCode: -1}
			if s, ok := byKey[stepKey{h, PhaseRun}]; ok {
				hp.State, hp.ExitCode, hp.Output, hp.Error = s.State, s.ExitCode, s.Output, s.Error
			}
			if s, ok := byKey[stepKey{h, PhaseHealth}]; ok {
				hp.Health = s.State
			}
			if s, ok := byKey[stepKey{h, PhaseRollback}]; ok {
				hp.Rollback = s.State
			}
			wp.Hosts = append(wp.Hosts, hp)
		}
		p.Waves = append(p.Waves, wp)
	}
	return p, nil
}

// Wait long-polls: it returns the operation's progress as soon as its
// Version is greater than since or its state is terminal, without busy
// polling (changes made by this engine wake it at once; others are seen
// within Config.PollInterval). When ctx ends first it returns the current
// progress and ctx's error.
func (e *Engine) Wait(ctx context.Context, opID string, since int64) (Progress, error) {
	var first ops.OpState
	for {
		ch := e.changes(opID) // before reading, so no change slips between
		p, err := e.Progress(context.WithoutCancel(ctx), opID)
		if err != nil {
			e.forget(opID, ch) // e.g. an unknown ID: no change will ever close it
			return p, err
		}
		if first == "" {
			first = p.State
		}
		if p.Terminal() {
			e.forget(opID, ch)
			return p, nil
		}
		if p.Version > since || p.State != first {
			return p, nil
		}
		select {
		case <-ch:
		case <-time.After(e.cfg.PollInterval):
		case <-ctx.Done():
			return p, ctx.Err()
		}
	}
}
