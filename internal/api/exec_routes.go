package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// ExecEngine is what the execution routes need from the wave executor;
// *exec.Engine implements it.
type ExecEngine interface {
	Progress(ctx context.Context, opID string) (exec.Progress, error)
	Wait(ctx context.Context, opID string, since int64) (exec.Progress, error)
	Halt(ctx context.Context, opID, by, reason string) error
	Resume(ctx context.Context, opID, by string) error
	Abort(ctx context.Context, opID, by, reason string) error
	MarkStep(ctx context.Context, opID, hostID, phase string, to ops.StepState, by, reason string) error
}

// MaxProgressWait caps ?wait= on the progress route.
const MaxProgressWait = 60 * time.Second

// ExecRoutes are the live progress of an operation and its kill switch,
// resume, abort and mark routes.
func ExecRoutes(eng ExecEngine) []Route {
	opResource := func(r *http.Request) Resource {
		return Resource{Type: "Operation", ID: r.PathValue("id")}
	}
	return []Route{
		{Pattern: "GET /v1/ops/{id}/progress", Action: "op.get", Resource: opResource, Stream: true, Handle: func(c *Call) error {
			id, err := c.PathValue("id")
			if err != nil {
				return err
			}
			wait, since, err := progressQuery(c.R)
			if err != nil {
				return err
			}
			var p exec.Progress
			if wait <= 0 {
				p, err = eng.Progress(c.Context(), id)
			} else {
				ctx, cancel := context.WithTimeout(c.Context(), wait)
				p, err = eng.Wait(ctx, id, since)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && c.Context().Err() == nil {
					err = nil // nothing new within wait: answer with what is
				}
			}
			if err != nil {
				return err
			}
			return c.JSON(http.StatusOK, WireProgress(p))
		}},
		{Pattern: "POST /v1/ops/{id}/halt", Action: "op.halt", Resource: opResource, Handle: func(c *Call) error {
			id, err := c.PathValue("id")
			if err != nil {
				return err
			}
			var in wire.OpHaltRequest
			if err := c.Decode(&in); err != nil {
				return err
			}
			if err := eng.Halt(c.Context(), id, c.Principal.Actor(), in.Reason); err != nil {
				return err
			}
			return progressAnswer(c, eng, id)
		}},
		{Pattern: "POST /v1/ops/{id}/resume", Action: "op.resume", Resource: opResource, Handle: func(c *Call) error {
			id, err := c.PathValue("id")
			if err != nil {
				return err
			}
			if err := eng.Resume(c.Context(), id, c.Principal.Actor()); err != nil {
				return err
			}
			return progressAnswer(c, eng, id)
		}},
		{Pattern: "POST /v1/ops/{id}/abort", Action: "op.abort", Resource: opResource, Handle: func(c *Call) error {
			id, err := c.PathValue("id")
			if err != nil {
				return err
			}
			var in wire.OpAbortRequest
			if err := c.Decode(&in); err != nil {
				return err
			}
			if err := eng.Abort(c.Context(), id, c.Principal.Actor(), in.Reason); err != nil {
				return err
			}
			return progressAnswer(c, eng, id)
		}},
		// Marking an unknown host is part of deciding to resume.
		{Pattern: "POST /v1/ops/{id}/hosts/{host}/mark", Action: "op.resume", Resource: opResource, Handle: func(c *Call) error {
			id, err := c.PathValue("id")
			if err != nil {
				return err
			}
			host, err := c.PathValue("host")
			if err != nil {
				return err
			}
			var in wire.OpMarkRequest
			if err := c.Decode(&in); err != nil {
				return err
			}
			if in.Phase == "" {
				in.Phase = exec.PhaseRun
			}
			if in.Phase != exec.PhaseRun && in.Phase != exec.PhaseHealth && in.Phase != exec.PhaseRollback {
				return usererr.New(usererr.Invalid, "bad_phase", "phase must be run, health or rollback, not %q", in.Phase)
			}
			if err := eng.MarkStep(c.Context(), id, host, in.Phase, ops.StepState(in.State), c.Principal.Actor(), in.Reason); err != nil {
				return err
			}
			return progressAnswer(c, eng, id)
		}},
	}
}

func progressAnswer(c *Call, eng ExecEngine, id string) error {
	p, err := eng.Progress(c.Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, WireProgress(p))
}

// progressQuery reads ?wait= (a duration like 30s, or seconds) and
// ?since= (a version; default -1, i.e. answer at once).
func progressQuery(r *http.Request) (time.Duration, int64, error) {
	q := r.URL.Query()
	var wait time.Duration
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			n, nerr := strconv.Atoi(s)
			if nerr != nil {
				return 0, 0, usererr.New(usererr.Invalid, "bad_wait", "wait must be a duration such as 30s, not %q", s)
			}
			d = time.Duration(n) * time.Second
		}
		if d < 0 || d > MaxProgressWait {
			return 0, 0, usererr.New(usererr.Invalid, "bad_wait", "wait must be between 0s and %s, not %s", MaxProgressWait, d)
		}
		wait = d
	}
	since := int64(-1)
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, usererr.New(usererr.Invalid, "bad_since", "since must be a version number from an earlier answer, not %q", s)
		}
		since = n
	}
	return wait, since, nil
}

// WireProgress converts the executor's progress to its JSON form.
func WireProgress(p exec.Progress) wire.OpProgress {
	out := wire.OpProgress{OpID: p.OpID, State: string(p.State), Detail: p.Detail, CurrentWave: p.CurrentWave,
		Terminal: p.Terminal(), Version: p.Version, Waves: make([]wire.OpWaveProgress, 0, len(p.Waves))}
	for _, w := range p.Waves {
		ow := wire.OpWaveProgress{Number: w.Number, Hosts: make([]wire.OpHostProgress, 0, len(w.Hosts))}
		for _, h := range w.Hosts {
			ow.Hosts = append(ow.Hosts, wire.OpHostProgress{HostID: h.HostID, State: string(h.State), ExitCode: h.ExitCode,
				Output: h.Output, Error: h.Error, Health: string(h.Health), Rollback: string(h.Rollback)})
		}
		out.Waves = append(out.Waves, ow)
	}
	return out
}
