package sso

import (
	"slices"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/config"
)

func TestMapRoles(t *testing.T) {
	rules := []config.SSORoleRule{
		{Claim: "groups", Value: "sre", Role: "operator"},
		{Claim: "groups", Value: "board", Role: "approver"},
		{Claim: "department", Value: "platform", Role: "operator"},
		{Claim: "is_admin", Value: "true", Role: "admin"},
	}
	for _, tt := range []struct {
		name   string
		claims map[string]any
		want   []string
	}{
		{"a group in a list", map[string]any{"groups": []any{"everyone", "sre"}}, []string{"operator"}},
		{"two rules, one role once", map[string]any{"groups": []any{"sre"}, "department": "platform"}, []string{"operator"}},
		{"a string claim", map[string]any{"groups": "board"}, []string{"approver"}},
		{"a boolean claim", map[string]any{"is_admin": true}, []string{"admin"}},
		{"false is not true", map[string]any{"is_admin": false}, nil},
		{"a prefix is not the group", map[string]any{"groups": []any{"sre-readonly", "boards"}}, nil},
		{"a list inside a list is not a group", map[string]any{"groups": []any{[]any{"sre"}}}, nil},
		{"no claims", map[string]any{}, nil},
	} {
		if got := MapRoles(rules, tt.claims); !slices.Equal(got, tt.want) {
			t.Errorf("%s: MapRoles = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRedirectMustBeLoopback(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:53682/callback": true,
		"http://[::1]:53682/callback":     true,
		"http://localhost:8080/cb":        true,
		"http://127.0.0.1/callback":       false, // no port
		"https://127.0.0.1:443/callback":  false,
		"http://evil.example:80/callback": false,
		"http://127.0.0.1.evil.example:1": false,
		"http://u:p@127.0.0.1:1/callback": false,
		"http://127.0.0.1:1/cb#frag":      false,
		"":                                false,
	} {
		if err := checkRedirect(raw); (err == nil) != ok {
			t.Errorf("checkRedirect(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}

func TestMFAOnlyWhenTheIdPSaysSo(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	is := config.SSOIssuer{MFAACRs: []string{"urn:corp:mfa"}}
	for _, tt := range []struct {
		name string
		c    idClaims
		want time.Time
	}{
		{"password only", idClaims{AuthTime: at, AMR: []string{"pwd"}}, time.Time{}},
		{"otp", idClaims{AuthTime: at, AMR: []string{"pwd", "otp"}}, at},
		{"a configured acr", idClaims{AuthTime: at, ACR: "urn:corp:mfa"}, at},
		{"another acr", idClaims{AuthTime: at, ACR: "urn:corp:pwd"}, time.Time{}},
		{"mfa without auth_time", idClaims{AMR: []string{"mfa"}}, time.Time{}},
		{"auth_time in the future", idClaims{AuthTime: now.Add(time.Hour), AMR: []string{"mfa"}}, time.Time{}},
	} {
		if got := tt.c.mfaAt(is, now); !got.Equal(tt.want) {
			t.Errorf("%s: mfaAt = %v, want %v", tt.name, got, tt.want)
		}
	}
}
