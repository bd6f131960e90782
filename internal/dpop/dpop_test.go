package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/usererr"
)

var t0 = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign makes a JWS with arbitrary claims and options, for proofs that
// NewProof would never make.
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, c any, opts *jose.SignerOptions) string {
	t.Helper()
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func code(err error) string {
	if err == nil {
		return ""
	}
	if ue, ok := usererr.As(err); ok {
		return ue.Code
	}
	return "not a usererr: " + err.Error()
}

func TestVerify(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const u = "https://interlock.example:8443/v1/whoami"
	const tok = "ilk_sess_abc"
	good := claims{JTI: "j1", HTM: "GET", HTU: u, IAT: t0.Unix(), ATH: AccessTokenHash(tok)}
	embed := func() *jose.SignerOptions { return (&jose.SignerOptions{EmbedJWK: true}).WithType(typ) }
	proof := func(key ed25519.PrivateKey, method, url, token string) string {
		p, err := NewProof(key, method, url, token, t0, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	with := func(f func(*claims)) claims { c := good; f(&c); return c }

	for _, tt := range []struct {
		name     string
		proof    string
		method   string
		url      string
		token    string
		now      time.Time
		wantCode string
	}{
		{name: "valid", proof: proof(key, "GET", u, tok)},
		{name: "valid without token", proof: proof(key, "POST", u, ""), method: "POST", token: "-"},
		{name: "query and fragment ignored, host case and default port normalized",
			proof: proof(key, "GET", "https://Interlock.Example/v1/x?a=1#f", tok), url: "https://interlock.example:443/v1/x?b=2"},
		{name: "iat 59s in the past", proof: proof(key, "GET", u, tok), now: t0.Add(59 * time.Second)},
		{name: "iat 61s in the past", proof: proof(key, "GET", u, tok), now: t0.Add(61 * time.Second), wantCode: "dpop_invalid"},
		{name: "iat 61s in the future", proof: proof(key, "GET", u, tok), now: t0.Add(-61 * time.Second), wantCode: "dpop_invalid"},
		{name: "missing", proof: "", wantCode: "dpop_missing"},
		{name: "garbage", proof: "a.b.c", wantCode: "dpop_invalid"},
		{name: "oversized", proof: strings.Repeat("a", MaxProofSize+1), wantCode: "dpop_invalid"},
		{name: "other method", proof: proof(key, "POST", u, tok), wantCode: "dpop_invalid"},
		{name: "other path", proof: proof(key, "GET", "https://interlock.example:8443/v1/users", tok), wantCode: "dpop_invalid"},
		{name: "other host", proof: proof(key, "GET", "https://evil.example:8443/v1/whoami", tok), wantCode: "dpop_invalid"},
		{name: "other token", proof: proof(key, "GET", u, "ilk_sess_other"), wantCode: "dpop_invalid"},
		{name: "token sent but proof has no ath", proof: proof(key, "GET", u, ""), wantCode: "dpop_invalid"},
		{name: "ath but no token sent", proof: proof(key, "GET", u, tok), token: "-", wantCode: "dpop_invalid"},
		{name: "wrong typ", proof: sign(t, key, jose.EdDSA, good, (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT")), wantCode: "dpop_invalid"},
		{name: "no typ", proof: sign(t, key, jose.EdDSA, good, &jose.SignerOptions{EmbedJWK: true}), wantCode: "dpop_invalid"},
		{name: "no jwk", proof: sign(t, key, jose.EdDSA, good, (&jose.SignerOptions{}).WithType(typ)), wantCode: "dpop_invalid"},
		{name: "ES256 refused", proof: sign(t, ec, jose.ES256, good, embed()), wantCode: "dpop_invalid"},
		{name: "empty jti", proof: sign(t, key, jose.EdDSA, with(func(c *claims) { c.JTI = "" }), embed()), wantCode: "dpop_invalid"},
		{name: "signature by another key than the embedded one", proof: func() string {
			a := strings.Split(proof(key, "GET", u, tok), ".")
			b := strings.Split(proof(other, "GET", u, tok), ".")
			return a[0] + "." + a[1] + "." + b[2]
		}(), wantCode: "dpop_invalid"},
		{name: "payload swapped", proof: func() string {
			a := strings.Split(proof(key, "GET", u, tok), ".")
			b := strings.Split(sign(t, key, jose.EdDSA, with(func(c *claims) { c.HTM = "POST" }), embed()), ".")
			return a[0] + "." + b[1] + "." + a[2]
		}(), wantCode: "dpop_invalid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(VerifierConfig{})
			method, url, token, now := "GET", u, tok, t0
			if tt.method != "" {
				method = tt.method
			}
			if tt.url != "" {
				url = tt.url
			}
			if tt.token == "-" {
				token = ""
			} else if tt.token != "" {
				token = tt.token
			}
			if !tt.now.IsZero() {
				now = tt.now
			}
			jkt, err := v.Verify(tt.proof, method, url, token, now)
			if diff := cmp.Diff(tt.wantCode, code(err)); diff != "" {
				t.Fatalf("Verify error code (-want +got):\n%s\nerr: %v", diff, err)
			}
			if err == nil {
				want, _ := Thumbprint(key.Public().(ed25519.PublicKey))
				if jkt != want {
					t.Errorf("jkt = %q, want %q", jkt, want)
				}
			}
		})
	}
}

func TestReplay(t *testing.T) {
	key := newKey(t)
	v := NewVerifier(VerifierConfig{})
	const u = "https://h/v1/whoami"
	p, err := NewProof(key, "GET", u, "", t0, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(p, "GET", u, "", t0); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := v.Verify(p, "GET", u, "", t0.Add(time.Second)); code(err) != "dpop_replayed" {
		t.Fatalf("second use: err = %v, want dpop_replayed", err)
	}
	// Past the skew the proof is too old anyway; its cache entry is purged
	// on a later insert.
	if _, err := v.Verify(p, "GET", u, "", t0.Add(61*time.Second)); code(err) != "dpop_invalid" {
		t.Fatalf("use after skew: err = %v, want dpop_invalid", err)
	}
	later := t0.Add(2 * time.Minute)
	p2, _ := NewProof(key, "GET", u, "", later, rand.Reader)
	if _, err := v.Verify(p2, "GET", u, "", later); err != nil {
		t.Fatal(err)
	}
	if got := v.Len(); got != 1 {
		t.Errorf("replay cache holds %d entries, want 1 (the expired one purged)", got)
	}
}

func TestReplayCacheFullFailsClosed(t *testing.T) {
	key := newKey(t)
	v := NewVerifier(VerifierConfig{MaxEntries: 2})
	const u = "https://h/v1/whoami"
	for i := range 2 {
		p, _ := NewProof(key, "GET", u, "", t0, rand.Reader)
		if _, err := v.Verify(p, "GET", u, "", t0); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	p, _ := NewProof(key, "GET", u, "", t0, rand.Reader)
	if _, err := v.Verify(p, "GET", u, "", t0); code(err) != "dpop_busy" {
		t.Fatalf("third proof with a full cache: err = %v, want dpop_busy", err)
	}
	// Once the first two expire there is room again.
	later := t0.Add(2 * time.Minute)
	p, _ = NewProof(key, "GET", u, "", later, rand.Reader)
	if _, err := v.Verify(p, "GET", u, "", later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
}

// TestCheckRecordsNothingUntilRemember: Check accepts a proof without
// taking room in the replay cache; Remember records it once.
func TestCheckRecordsNothingUntilRemember(t *testing.T) {
	key := newKey(t)
	v := NewVerifier(VerifierConfig{MaxEntries: 1})
	const u = "https://h/v1/whoami"
	p, _ := NewProof(key, "GET", u, "", t0, rand.Reader)
	for range 3 {
		if _, _, err := v.Check(p, "GET", u, "", t0); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	if v.Len() != 0 {
		t.Fatalf("Check recorded %d proofs, want none", v.Len())
	}
	jkt, seen, err := v.Check(p, "GET", u, "", t0)
	if err != nil || jkt == "" {
		t.Fatalf("Check = %q, %v", jkt, err)
	}
	if err := v.Remember(seen, t0); err != nil {
		t.Fatalf("Remember: %v", err)
	}
	if err := v.Remember(seen, t0); code(err) != "dpop_replayed" {
		t.Errorf("second Remember = %v, want dpop_replayed", err)
	}
	if _, err := v.Verify(p, "GET", u, "", t0); code(err) != "dpop_replayed" {
		t.Errorf("Verify after Remember = %v, want dpop_replayed", err)
	}
	if err := v.Remember(Seen{}, t0); code(err) != "dpop_invalid" {
		t.Errorf("Remember of an unchecked proof = %v, want dpop_invalid", err)
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
	const jwk = `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	got, err := ThumbprintJWK(jwk)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	j, err := PublicJWK(pub)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ThumbprintJWK(j)
	b, _ := Thumbprint(pub)
	if a != b {
		t.Errorf("ThumbprintJWK(PublicJWK(k)) = %s, Thumbprint(k) = %s", a, b)
	}
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key})
	if _, err := ThumbprintJWK(string(priv)); err == nil {
		t.Error("ThumbprintJWK accepted a private key")
	}
}

// TestProofFromBeforeStartIsRefused is a replay across a restart: the new
// process's cache is empty, so a proof whose iat is not after NotBefore is
// refused even though it is within the skew and was never seen.
func TestProofFromBeforeStartIsRefused(t *testing.T) {
	key := newKey(t)
	const u = "https://h/v1/whoami"
	started := t0.Add(500 * time.Millisecond)
	for _, tt := range []struct {
		name     string
		made     time.Time
		wantCode string
	}{
		{"made a second before the start", t0.Add(-time.Second), "dpop_before_start"},
		{"made in the second of the start, before it", t0, "dpop_before_start"},
		{"made a second after the start", t0.Add(time.Second), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifier(VerifierConfig{NotBefore: started})
			p, err := NewProof(key, "GET", u, "", tt.made, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(p, "GET", u, "", t0.Add(2*time.Second))
			if got := code(err); got != tt.wantCode {
				t.Fatalf("Verify: code %q (%v), want %q", got, err, tt.wantCode)
			}
		})
	}
}
