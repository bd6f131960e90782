package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// fakeUserAPI records calls and answers from a table keyed by "METHOD path".
type fakeUserAPI struct {
	calls   []string
	bodies  []string
	answers map[string]any
}

func (f *fakeUserAPI) Do(_ context.Context, method, path string, in, out any) error {
	f.calls = append(f.calls, method+" "+path)
	b, _ := json.Marshal(in)
	f.bodies = append(f.bodies, string(b))
	if a, ok := f.answers[method+" "+path]; ok && out != nil {
		b, _ := json.Marshal(a)
		return json.Unmarshal(b, out)
	}
	return nil
}

func TestUserAndDeviceCommands(t *testing.T) {
	at := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	fake := &fakeUserAPI{answers: map[string]any{
		"POST /v1/users/invitations": wire.Invitation{Code: "ilk_inv_abc", Username: "operator1", Role: "operator", ExpiresAt: at},
		"GET /v1/users":              wire.UserList{Users: []wire.User{{ID: "p_1", Username: "admin", Roles: []string{"admin"}, Status: "active", CreatedAt: at}}},
		"GET /v1/devices?all=true":   wire.DeviceList{Devices: []wire.Device{{ID: "dev_1", Username: "admin", Name: "laptop", CreatedAt: at}}},
	}}
	oldUser, oldAnon := userClient, anonUserClient
	userClient = func(*env) (userDoer, error) { return fake, nil }
	anonUserClient = func(_ *env, server, fp string) (userDoer, error) { return fake, nil }
	t.Cleanup(func() { userClient, anonUserClient = oldUser, oldAnon })

	for _, tt := range []struct {
		name     string
		args     []string
		stdin    string
		wantCall string
		wantBody string
		wantOut  []string // substrings of stdout
		wantCode int
	}{
		{name: "invite", args: []string{"user", "invite", "operator1", "--role", "operator"},
			wantCall: "POST /v1/users/invitations", wantBody: `{"username":"operator1","role":"operator"}`, wantOut: []string{"ilk_inv_abc", "interlock user accept"}},
		{name: "invite needs a role", args: []string{"user", "invite", "operator1"}, wantCode: 1},
		{name: "list", args: []string{"user", "list"}, wantCall: "GET /v1/users", wantBody: "null", wantOut: []string{"USER", "admin", "active"}},
		{name: "list json", args: []string{"user", "list", "--json"}, wantCall: "GET /v1/users", wantBody: "null", wantOut: []string{`"username": "admin"`}},
		{name: "disable", args: []string{"user", "disable", "op/1"}, wantCall: "POST /v1/users/op%2F1/disable", wantBody: "null", wantOut: []string{"Disabled op/1"}},
		{name: "accept", args: []string{"user", "accept", "--server", "https://h:8443", "--ca-fingerprint", "SHA256:x", "--code", "ilk_inv_abc", "--password-stdin", "--json"},
			stdin: "violet-harbour-tractor-41\n", wantCall: "POST /v1/invitations/accept", wantBody: `{"code":"ilk_inv_abc","password":"violet-harbour-tractor-41"}`},
		{name: "device list all", args: []string{"device", "list", "--all"}, wantCall: "GET /v1/devices?all=true", wantBody: "null", wantOut: []string{"dev_1", "laptop", "active"}},
		{name: "device revoke", args: []string{"device", "revoke", "dev_1"}, wantCall: "POST /v1/devices/dev_1/revoke", wantBody: "null", wantOut: []string{"Revoked device dev_1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake.calls, fake.bodies = nil, nil
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if tt.wantCall == "" {
				if len(fake.calls) != 0 {
					t.Errorf("calls = %v, want none", fake.calls)
				}
				return
			}
			if diff := cmp.Diff([]string{tt.wantCall}, fake.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tt.wantBody}, fake.bodies); diff != "" {
				t.Errorf("bodies (-want +got):\n%s", diff)
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}
