package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/interlock-dev/interlock/internal/dpop"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// TestService runs the identity use cases of the store conformance suite
// on SQLite, so that `go test ./internal/identity` exercises the Service.
func TestService(t *testing.T) {
	storetest.IdentityCases(t, func(t *testing.T) *store.DB { return storetest.OpenSQLite(t) })
}

// TestLoginWithDPoPProof goes the way the API does: the login request's
// DPoP proof is verified, and its jkt binds the session.
func TestLoginWithDPoPProof(t *testing.T) {
	ctx := context.Background()
	e := storetest.NewIdentityEnv(t, storetest.OpenSQLite(t))
	enr := e.Bootstrap("admin")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	pub := key.Public().(ed25519.PublicKey)
	jwk, err := dpop.PublicJWK(pub)
	if err != nil {
		t.Fatal(err)
	}
	v := dpop.NewVerifier(dpop.VerifierConfig{})
	const loginURL = "https://127.0.0.1:8443/v1/login"
	proof, err := dpop.NewProof(key, "POST", loginURL, "", e.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := v.Verify(proof, "POST", loginURL, "", e.Now())
	if err != nil {
		t.Fatal(err)
	}
	dev := storetest.IdentityDevice{Key: key, JWK: jwk, JKT: jkt}
	if want, _ := dpop.Thumbprint(pub); jkt != want {
		t.Fatalf("jkt %s != thumbprint %s", jkt, want)
	}
	s, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev))
	if err != nil {
		t.Fatal(err)
	}
	const whoami = "https://127.0.0.1:8443/v1/whoami"
	proof, _ = dpop.NewProof(key, "GET", whoami, s.Token.Reveal(), e.Now(), rand.Reader)
	jkt2, err := v.Verify(proof, "GET", whoami, s.Token.Reveal(), e.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), jkt2)
	if err != nil || p.Name != "admin" {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	// The hand-computed thumbprint in storetest agrees with go-jose's.
	if d := storetest.NewIdentityDevice(t); func() string { j, _ := dpop.ThumbprintJWK(d.JWK); return j }() != d.JKT {
		t.Error("storetest's thumbprint differs from RFC 7638 as go-jose computes it")
	}
}
