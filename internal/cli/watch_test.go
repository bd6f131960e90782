package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
)

// fakeOpsAPI answers progress polls from a script and records every call.
type fakeOpsAPI struct {
	fail   []error // answered, in order, before the script
	script []wire.OpProgress
	calls  []string
	bodies []string
}

func (f *fakeOpsAPI) Do(ctx context.Context, method, path string, in, out any) error {
	f.calls = append(f.calls, method+" "+path)
	if in != nil {
		b, _ := json.Marshal(in)
		f.bodies = append(f.bodies, string(b))
	}
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return err
	}
	p := f.script[0]
	if len(f.script) > 1 {
		f.script = f.script[1:]
	}
	*(out.(*wire.OpProgress)) = p
	return nil
}

func progress(state string, version int64, h2 string) wire.OpProgress {
	terminal := state != "running"
	return wire.OpProgress{OpID: "op1", State: state, Version: version, CurrentWave: 2, Terminal: terminal,
		Detail: map[bool]string{true: "Halted in wave 2: 1 host(s) failed."}[state == "halted"],
		Waves: []wire.OpWaveProgress{
			{Number: 1, Hosts: []wire.OpHostProgress{{HostID: "h1", State: "succeeded", ExitCode: 0}}},
			{Number: 2, Hosts: []wire.OpHostProgress{{HostID: "h2", State: h2, ExitCode: -1}}},
		}}
}

func runCLI(t *testing.T, f *fakeOpsAPI, args ...string) (int, string, string) {
	t.Helper()
	old := execClient
	execClient = func(*env) (execDoer, error) { return f, nil }
	t.Cleanup(func() { execClient = old })
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestOpsWatch(t *testing.T) {
	script := []wire.OpProgress{progress("running", 3, "pending"), progress("running", 5, "dispatched"), progress("halted", 7, "failed")}

	t.Run("json lines until terminal", func(t *testing.T) {
		f := &fakeOpsAPI{script: append([]wire.OpProgress(nil), script...)}
		code, out, errOut := runCLI(t, f, "ops", "watch", "op1", "--json")
		if code != 1 || !strings.Contains(errOut, "operation op1 is halted: Halted in wave 2") {
			t.Errorf("exit %d, stderr %q; want 1 with the halt detail", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("got %d JSON lines, want 3:\n%s", len(lines), out)
		}
		var last wire.OpProgress
		if err := json.Unmarshal([]byte(lines[2]), &last); err != nil || last.State != "halted" {
			t.Errorf("last line = %s (%v), want the halted progress", lines[2], err)
		}
		want := []string{
			"GET /v1/ops/op1/progress?wait=20s",
			"GET /v1/ops/op1/progress?wait=20s&since=3",
			"GET /v1/ops/op1/progress?wait=20s&since=5",
		}
		if diff := cmp.Diff(want, f.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})

	t.Run("lines for people", func(t *testing.T) {
		f := &fakeOpsAPI{script: append([]wire.OpProgress(nil), script...)}
		_, out, _ := runCLI(t, f, "ops", "watch", "op1")
		for _, want := range []string{"wave 1  h1", "succeeded (exit 0)", "wave 2  h2", "failed", "Operation op1 halted."} {
			if !strings.Contains(out, want) {
				t.Errorf("output does not contain %q:\n%s", want, out)
			}
		}
		if n := strings.Count(out, "wave 1  h1"); n != 1 {
			t.Errorf("h1 printed %d times, want once:\n%s", n, out)
		}
	})

	t.Run("succeeded exits 0", func(t *testing.T) {
		f := &fakeOpsAPI{script: []wire.OpProgress{progress("succeeded", 9, "succeeded")}}
		if code, _, errOut := runCLI(t, f, "ops", "watch", "op1"); code != 0 {
			t.Errorf("exit %d (%s), want 0", code, errOut)
		}
	})
}

func TestOpsControl(t *testing.T) {
	f := &fakeOpsAPI{script: []wire.OpProgress{progress("halted", 9, "succeeded")}}
	code, out, errOut := runCLI(t, f, "ops", "halt", "op1", "--reason", "INC-9")
	if code != 0 || !strings.Contains(out, "Halted op1: it is now halted.") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	runCLI(t, f, "ops", "mark", "op1", "h2", "--state", "succeeded", "--reason", "checked")
	// h2 is one of the operation's hosts by ID: the progress read confirms
	// it, no host list is needed.
	wantCalls := []string{"POST /v1/ops/op1/halt", "GET /v1/ops/op1/progress", "POST /v1/ops/op1/hosts/h2/mark"}
	if diff := cmp.Diff(wantCalls, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	wantBodies := []string{`{"reason":"INC-9"}`, `{"phase":"run","state":"succeeded","reason":"checked"}`}
	if diff := cmp.Diff(wantBodies, f.bodies); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
}

func TestProgressBar(t *testing.T) {
	got := progressBar(progress("running", 1, "dispatched"), 80)
	if !strings.HasPrefix(got, "[") || !strings.Contains(got, "] 1/2 hosts · wave 2/2 · running") {
		t.Errorf("progressBar = %q", got)
	}
}

// TestOpsWatchReconnects: a watch whose server goes away (connection
// refused, a 503 while it restarts) says so on stderr, waits and asks
// again from the last version it saw; an answer that will not change (a
// 404) ends it.
func TestOpsWatchReconnects(t *testing.T) {
	old := watchBackoff
	watchBackoff = func(int) time.Duration { return time.Millisecond }
	t.Cleanup(func() { watchBackoff = old })

	refused := fmt.Errorf("GET /v1/ops/op1/progress: %w", syscall.ECONNREFUSED)
	// One answer, then the server goes away (refused, then 503 while it
	// starts), then it answers again.
	answers := []any{progress("running", 3, "dispatched"), refused, &apiclient.Error{Status: 503}, progress("succeeded", 8, "succeeded")}
	var calls []string
	wrapped := doerFunc(func(ctx context.Context, method, path string, in, out any) error {
		calls = append(calls, method+" "+path)
		a := answers[0]
		answers = answers[1:]
		if err, ok := a.(error); ok {
			return err
		}
		*(out.(*wire.OpProgress)) = a.(wire.OpProgress)
		return nil
	})
	old2 := execClient
	execClient = func(*env) (execDoer, error) { return wrapped, nil }
	t.Cleanup(func() { execClient = old2 })
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"ops", "watch", "op1"}, strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "server went away; reconnecting") || strings.Count(errOut.String(), "server went away") != 1 {
		t.Errorf("stderr does not say once that the server went away:\n%s", errOut.String())
	}
	want := []string{"GET /v1/ops/op1/progress?wait=20s", "GET /v1/ops/op1/progress?wait=20s&since=3", "GET /v1/ops/op1/progress?wait=20s&since=3", "GET /v1/ops/op1/progress?wait=20s&since=3"}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	gone := &fakeOpsAPI{fail: []error{&apiclient.Error{Status: 404}}, script: []wire.OpProgress{progress("running", 1, "pending")}}
	if code, _, errOut := runCLI(t, gone, "ops", "watch", "op1"); code == 0 || strings.Contains(errOut, "reconnecting") {
		t.Errorf("a 404: exit %d, stderr %q; want a failure without reconnecting", code, errOut)
	}
}

type doerFunc func(ctx context.Context, method, path string, in, out any) error

func (f doerFunc) Do(ctx context.Context, method, path string, in, out any) error {
	return f(ctx, method, path, in, out)
}
