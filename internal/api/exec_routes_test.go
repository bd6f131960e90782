package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/ops/exec"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Fakes for the execution routes (own names, so they don't depend on the
// framework tests' helpers).
type execAuthn struct{}

func (execAuthn) Authenticate(_ context.Context, token, jkt string) (wire.Principal, error) {
	if token != "tok" {
		return wire.Principal{}, errors.New("bad session")
	}
	return wire.Principal{Kind: "person", ID: "p7", Name: "carol", Roles: []string{"approver"}}, nil
}

type execProofs struct{}

func (execProofs) Verify(proof, method, url, token string, now time.Time) (string, error) {
	return "k", nil
}

type execAuthz struct{ allow map[string]bool }

func (a execAuthz) Authorize(_ context.Context, p wire.Principal, action string, res Resource, attrs map[string]any) (bool, []string, error) {
	return a.allow[action] && res.Type == "Operation" && res.ID == "op1", nil, nil
}

type fakeExec struct {
	mu    sync.Mutex
	calls []string
	err   error
	prog  exec.Progress
	block bool // Wait blocks until ctx ends
}

func (f *fakeExec) note(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return f.err
}

func (f *fakeExec) Progress(ctx context.Context, opID string) (exec.Progress, error) {
	return f.prog, nil
}

func (f *fakeExec) Wait(ctx context.Context, opID string, since int64) (exec.Progress, error) {
	f.note("wait " + opID + " " + itoa(since))
	if f.block {
		<-ctx.Done()
		return f.prog, ctx.Err()
	}
	return f.prog, nil
}

func (f *fakeExec) Halt(ctx context.Context, opID, by, reason string) error {
	return f.note("halt " + opID + " " + by + " " + reason)
}

func (f *fakeExec) Resume(ctx context.Context, opID, by string) error {
	return f.note("resume " + opID + " " + by)
}

func (f *fakeExec) Abort(ctx context.Context, opID, by, reason string) error {
	return f.note("abort " + opID + " " + by + " " + reason)
}

func (f *fakeExec) MarkStep(ctx context.Context, opID, hostID, phase string, to ops.StepState, by, reason string) error {
	return f.note("mark " + opID + " " + hostID + " " + phase + " " + string(to) + " " + by + " " + reason)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestExecRoutes(t *testing.T) {
	prog := exec.Progress{OpID: "op1", State: ops.OpRunning, CurrentWave: 2, Version: 9, Waves: []exec.WaveProgress{
		{Number: 1, Hosts: []exec.HostProgress{{HostID: "h1", State: ops.StepSucceeded, ExitCode: 0, Health: ops.StepSucceeded}}},
		{Number: 2, Hosts: []exec.HostProgress{{HostID: "h2", State: ops.StepDispatched, ExitCode: -1}}},
	}}
	wantProg := wire.OpProgress{OpID: "op1", State: "running", CurrentWave: 2, Version: 9, Waves: []wire.OpWaveProgress{
		{Number: 1, Hosts: []wire.OpHostProgress{{HostID: "h1", State: "succeeded", ExitCode: 0, Health: "succeeded"}}},
		{Number: 2, Hosts: []wire.OpHostProgress{{HostID: "h2", State: "dispatched", ExitCode: -1}}},
	}}
	for _, tt := range []struct {
		name       string
		method     string
		path, body string
		engErr     error
		block      bool
		wantStatus int
		wantCode   string
		wantCalls  []string
	}{
		{name: "progress now", method: "GET", path: "/v1/ops/op1/progress", wantStatus: 200},
		{name: "progress long-poll", method: "GET", path: "/v1/ops/op1/progress?wait=30s&since=8", wantStatus: 200, wantCalls: []string{"wait op1 8"}},
		{name: "long-poll runs out", method: "GET", path: "/v1/ops/op1/progress?wait=1ms&since=9", block: true, wantStatus: 200, wantCalls: []string{"wait op1 9"}},
		{name: "wait too long", method: "GET", path: "/v1/ops/op1/progress?wait=2h", wantStatus: 400, wantCode: "bad_wait"},
		{name: "since not a number", method: "GET", path: "/v1/ops/op1/progress?wait=5&since=x", wantStatus: 400, wantCode: "bad_since"},
		{name: "halt", method: "POST", path: "/v1/ops/op1/halt", body: `{"reason":"INC-9"}`, wantStatus: 200, wantCalls: []string{"halt op1 person:p7 INC-9"}},
		{name: "halt with unknown field", method: "POST", path: "/v1/ops/op1/halt", body: `{"why":"x"}`, wantStatus: 400, wantCode: "unknown_field"},
		{name: "halt refused", method: "POST", path: "/v1/ops/op1/halt", body: `{"reason":"x"}`,
			engErr: usererr.New(usererr.Conflict, "op_state_changed", "Operation op1 is succeeded."), wantStatus: 409, wantCode: "op_state_changed",
			wantCalls: []string{"halt op1 person:p7 x"}},
		{name: "resume", method: "POST", path: "/v1/ops/op1/resume", wantStatus: 200, wantCalls: []string{"resume op1 person:p7"}},
		{name: "abort", method: "POST", path: "/v1/ops/op1/abort", body: `{"reason":"wrong"}`, wantStatus: 200, wantCalls: []string{"abort op1 person:p7 wrong"}},
		{name: "mark", method: "POST", path: "/v1/ops/op1/hosts/h2/mark", body: `{"state":"succeeded","reason":"checked"}`, wantStatus: 200,
			wantCalls: []string{"mark op1 h2 run succeeded person:p7 checked"}},
		{name: "mark bad phase", method: "POST", path: "/v1/ops/op1/hosts/h2/mark", body: `{"phase":"x","state":"failed","reason":"r"}`, wantStatus: 400, wantCode: "bad_phase"},
		{name: "policy denies", method: "POST", path: "/v1/ops/op1/abort", body: `{"reason":"x"}`, wantStatus: 403, wantCode: "forbidden"},
		{name: "other op denied", method: "GET", path: "/v1/ops/op2/progress", wantStatus: 403, wantCode: "forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeExec{prog: prog, err: tt.engErr, block: tt.block}
			allow := map[string]bool{"op.get": true, "op.halt": true, "op.resume": true}
			if tt.name != "policy denies" {
				allow["op.abort"] = true
			}
			s, err := New(Config{Authenticator: execAuthn{}, Proofs: execProofs{}, Authorizer: execAuthz{allow}}, ExecRoutes(f))
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(tt.method, "https://api.test"+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Authorization", "DPoP tok")
			req.Header.Set("DPoP", "proof")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.wantStatus >= 400 {
				var p wire.Problem
				if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code != tt.wantCode {
					t.Errorf("problem = %+v, %v; want code %q", p, err, tt.wantCode)
				}
			} else {
				var got wire.OpProgress
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantProg, got); diff != "" {
					t.Errorf("progress (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tt.wantCalls, f.calls); diff != "" {
				t.Errorf("engine calls (-want +got):\n%s", diff)
			}
		})
	}
}

// The real engine satisfies the routes' interface.
var _ ExecEngine = (*exec.Engine)(nil)
