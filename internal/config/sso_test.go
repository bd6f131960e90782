package config

import (
	"strings"
	"testing"
	"time"
)

func TestSSOConfigIsChecked(t *testing.T) {
	good := SSOIssuer{Name: "corp", Issuer: "https://corp.example/oauth2", ClientID: "interlock", ClientSecret: "secret:oidc/corp",
		Roles: []SSORoleRule{{Claim: "groups", Value: "sre", Role: "operator"}}}
	if err := (Config{SSO: []SSOIssuer{good}}).Validate(); err != nil {
		t.Fatalf("a good issuer: %v", err)
	}
	for _, tt := range []struct {
		edit func(*SSOIssuer)
		want string
	}{
		{func(i *SSOIssuer) { i.ClientSecret = "hunter2-the-secret-itself" }, "must be a reference"},
		{func(i *SSOIssuer) { i.ClientSecret = "env:" }, "must be a reference"},
		{func(i *SSOIssuer) { i.Issuer = "http://corp.example" }, "must be an https:// URL"},
		{func(i *SSOIssuer) { i.Name = "a b" }, "name must be"},
		{func(i *SSOIssuer) { i.ClientID = "" }, "client_id is required"},
		{func(i *SSOIssuer) { i.Roles = nil }, "role_rules is empty"},
		{func(i *SSOIssuer) { i.Roles = []SSORoleRule{{Claim: "groups", Value: "x", Role: "root"}} }, "needs a claim, a value and a role"},
	} {
		is := good
		tt.edit(&is)
		err := (Config{SSO: []SSOIssuer{is}}).Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: Validate = %v, want %q", is, err, tt.want)
		}
	}
	loop := good
	loop.Issuer = "http://127.0.0.1:9000/oidc"
	if err := (Config{SSO: []SSOIssuer{loop, loop}}).Validate(); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("two issuers with one name: %v", err)
	}
}

func TestSSOSessionTTLIsBounded(t *testing.T) {
	is := SSOIssuer{Name: "corp", Issuer: "https://corp.example", ClientID: "c", ClientSecret: "env:X",
		Roles: []SSORoleRule{{Claim: "groups", Value: "sre", Role: "operator"}}, SessionTTL: time.Minute}
	if err := (Config{SSO: []SSOIssuer{is}}).Validate(); err == nil || !strings.Contains(err.Error(), "at least 5m") {
		t.Errorf("a 1m session_ttl: %v", err)
	}
}
