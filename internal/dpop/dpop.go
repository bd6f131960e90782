// Package dpop owns Interlock's proof of possession for device keys: DPoP
// proofs (RFC 9449) signed with Ed25519 device keys, and their JWK SHA-256
// thumbprints (RFC 7638), which is how a session is bound to one device.
//
// The CLI (through internal/apiclient) makes a proof for every request with
// [NewProof]; the server checks it with a [Verifier] before it looks at the
// session token. JOSE encoding and signature checks are go-jose's, not ours.
//
// This package is imported by both the server and the client, so it MUST
// NOT import the store, the server or any SQL driver.
package dpop

import (
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/interlock-dev/interlock/internal/usererr"
)

// Header is the HTTP header that carries a proof.
const Header = "DPoP"

// AuthScheme is the Authorization scheme for DPoP-bound tokens:
// "Authorization: DPoP ilk_sess_…".
const AuthScheme = "DPoP"

// typ is the JOSE "typ" header of every proof (RFC 9449 §4.2).
const typ = "dpop+jwt"

// MaxProofSize is the largest proof Verify will parse.
const MaxProofSize = 4096

// claims is the payload of a proof.
type claims struct {
	JTI string `json:"jti"`
	HTM string `json:"htm"`
	HTU string `json:"htu"`
	IAT int64  `json:"iat"`
	ATH string `json:"ath,omitempty"`
}

// NewProof returns a compact JWS proving possession of key for one request:
// method and url are the request's; accessToken, when not empty, is bound
// through the "ath" claim. rand supplies the jti (16 bytes).
func NewProof(key ed25519.PrivateKey, method, rawURL, accessToken string, now time.Time, rand io.Reader) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", errors.New("dpop: device key is not an Ed25519 private key")
	}
	htu, err := normalizeURL(rawURL)
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := io.ReadFull(rand, jti[:]); err != nil {
		return "", fmt.Errorf("dpop: read random jti: %w", err)
	}
	c := claims{
		JTI: base64.RawURLEncoding.EncodeToString(jti[:]),
		HTM: method,
		HTU: htu,
		IAT: now.Unix(),
	}
	if accessToken != "" {
		c.ATH = AccessTokenHash(accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("dpop: encode claims: %w", err)
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(typ)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("dpop: new signer: %w", err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	return obj.CompactSerialize()
}

// AccessTokenHash is the "ath" value for token: base64url(SHA-256(token)).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint (base64url, no
// padding) of an Ed25519 public key: the "jkt" a session is bound to.
func Thumbprint(pub ed25519.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	return thumbprint(&jwk)
}

// PublicJWK returns the JSON Web Key of an Ed25519 public key.
func PublicJWK(pub ed25519.PublicKey) (string, error) {
	b, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		return "", fmt.Errorf("dpop: encode jwk: %w", err)
	}
	return string(b), nil
}

// ThumbprintJWK parses a public Ed25519 JWK and returns its thumbprint. It
// refuses private keys and other key types.
func ThumbprintJWK(jwkJSON string) (string, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(jwkJSON), &jwk); err != nil {
		return "", fmt.Errorf("dpop: parse jwk: %w", err)
	}
	if _, ok := jwk.Key.(ed25519.PublicKey); !ok {
		return "", errors.New("dpop: jwk is not an Ed25519 public key")
	}
	return thumbprint(&jwk)
}

func thumbprint(jwk *jose.JSONWebKey) (string, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// normalizeURL is the "htu" form of a URL (RFC 9449 §4.3): scheme and host
// lower-cased, default port dropped, query and fragment removed, empty path
// as "/".
func normalizeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("dpop: parse url: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("dpop: url %q is not absolute", raw)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// VerifierConfig tunes a Verifier. The zero value is usable.
type VerifierConfig struct {
	// Skew is how far a proof's iat may lie from the server's clock, either
	// way. Zero means 60 s.
	Skew time.Duration
	// MaxEntries bounds the replay cache. Zero means 100,000. When the cache
	// is full of unexpired entries, Verify refuses new proofs (fail closed)
	// rather than forget one that could then be replayed.
	MaxEntries int
	// NotBefore, if set, refuses every proof whose iat is not after it. A
	// server sets it to when its process started: the replay cache lives
	// in memory, so without it a proof captured shortly before a restart
	// could be replayed once more within its skew window after it. iat
	// counts whole seconds, so a proof made in the second the server
	// started is refused too (a fresh one a second later passes), and a
	// client whose clock runs behind the server's by d has its proofs
	// refused for the first d after a start (d is at most Skew). Zero
	// means no such floor.
	NotBefore time.Time
}

// Verifier checks DPoP proofs and remembers the ones it has accepted until
// they expire, so that each proof is accepted once.
//
// The replay cache is in this process's memory. Several servers behind one
// address would each accept a proof once, so a scaled-out deployment MUST
// give them a shared cache (e.g. a PostgreSQL table keyed by jkt and jti, or
// server-issued DPoP nonces) before it relies on replay refusal across
// servers. A Verifier is safe for concurrent use.
type Verifier struct {
	skew      time.Duration
	max       int
	notBefore time.Time

	mu        sync.Mutex
	seen      map[string]time.Time // jkt + " " + jti → when the entry may be forgotten
	lastPurge time.Time
}

// NewVerifier returns a Verifier with an empty replay cache.
func NewVerifier(cfg VerifierConfig) *Verifier {
	v := &Verifier{skew: cfg.Skew, max: cfg.MaxEntries, notBefore: cfg.NotBefore, seen: map[string]time.Time{}}
	if v.skew <= 0 {
		v.skew = 60 * time.Second
	}
	if v.max <= 0 {
		v.max = 100_000
	}
	return v
}

func invalid(format string, args ...any) error {
	return usererr.New(usererr.Unauthenticated, "dpop_invalid", "The request's DPoP proof is not valid: "+format+".", args...)
}

// Verify checks proof for a request with the given method and URL and, when
// accessToken is not empty, its binding to that token. It returns the JWK
// thumbprint (jkt) of the key that signed the proof. It checks the
// signature (EdDSA only, key embedded as a public JWK), typ, htm, htu
// (without query and fragment), iat within the skew of now, ath, and that
// the proof's jti has not been accepted before. Errors are usererr errors
// of kind Unauthenticated.
func (v *Verifier) Verify(proof, method, rawURL, accessToken string, now time.Time) (string, error) {
	jkt, seen, err := v.Check(proof, method, rawURL, accessToken, now)
	if err != nil {
		return "", err
	}
	return jkt, v.Remember(seen, now)
}

// Seen identifies an accepted proof in the replay cache.
type Seen struct {
	key     string
	expires time.Time
}

// Check is Verify without the replay check: the caller authenticates the
// request (the session bound to jkt and the access token) and then calls
// Remember, which refuses a replay. Recording only proofs of requests that
// authenticated keeps anyone without a session from filling the cache with
// throwaway keys and junk tokens, which would otherwise refuse every
// request, the kill switch included, as dpop_busy.
func (v *Verifier) Check(proof, method, rawURL, accessToken string, now time.Time) (jkt string, seen Seen, err error) {
	jkt, key, expires, err := v.check(proof, method, rawURL, accessToken, now)
	return jkt, Seen{key: key, expires: expires}, err
}

// Remember records a checked proof, refusing it if it was recorded before.
func (v *Verifier) Remember(s Seen, now time.Time) error {
	if s.key == "" {
		return invalid("it was not checked")
	}
	return v.remember(s.key, s.expires, now)
}

func (v *Verifier) check(proof, method, rawURL, accessToken string, now time.Time) (jkt, key string, expires time.Time, err error) {
	fail := func(err error) (string, string, time.Time, error) { return "", "", time.Time{}, err }
	if proof == "" {
		return fail(usererr.New(usererr.Unauthenticated, "dpop_missing", "The request carries no DPoP proof; sign in again with interlock login."))
	}
	if len(proof) > MaxProofSize {
		return fail(invalid("it is longer than %d bytes", MaxProofSize))
	}
	obj, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return fail(usererr.Wrap(err, usererr.Unauthenticated, "dpop_invalid", "The request's DPoP proof is not valid: it is not a compact JWS signed with EdDSA."))
	}
	if len(obj.Signatures) != 1 {
		return fail(invalid("it must carry exactly one signature"))
	}
	h := obj.Signatures[0].Protected
	if h.Algorithm != string(jose.EdDSA) {
		return fail(invalid("its alg must be EdDSA"))
	}
	if t, _ := h.ExtraHeaders[jose.HeaderType].(string); t != typ {
		return fail(invalid("its typ must be %s", typ))
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return fail(invalid("it must embed the device's public key as jwk"))
	}
	pub, ok := h.JSONWebKey.Key.(ed25519.PublicKey)
	if !ok {
		return fail(invalid("its jwk must be an Ed25519 key"))
	}
	payload, err := obj.Verify(pub)
	if err != nil {
		return fail(usererr.Wrap(err, usererr.Unauthenticated, "dpop_invalid", "The request's DPoP proof is not valid: its signature does not verify."))
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return fail(invalid("its claims are not JSON"))
	}
	if c.JTI == "" || len(c.JTI) > 128 {
		return fail(invalid("its jti must be 1 to 128 characters"))
	}
	if c.HTM != method {
		return fail(invalid("it was made for method %q, not %q", c.HTM, method))
	}
	want, err := normalizeURL(rawURL)
	if err != nil {
		return fail(err)
	}
	got, err := normalizeURL(c.HTU)
	if err != nil || got != want {
		return fail(invalid("it was made for another URL"))
	}
	iat := time.Unix(c.IAT, 0)
	if iat.Before(now.Add(-v.skew)) || iat.After(now.Add(v.skew)) {
		return fail(invalid("its time (iat) is more than %s away from the server's clock; check this machine's clock", v.skew))
	}
	if !v.notBefore.IsZero() && c.IAT <= v.notBefore.Unix() {
		return fail(usererr.New(usererr.Unauthenticated, "dpop_before_start",
			"The request's DPoP proof was made at %s, before this server started (%s), so it cannot be checked for replay; send the request again with a fresh proof (if this keeps happening, this machine's clock is behind the server's).",
			iat.UTC().Format(time.RFC3339), v.notBefore.UTC().Format(time.RFC3339)))
	}
	switch {
	case accessToken == "" && c.ATH != "":
		return fail(invalid("it binds an access token, but none was sent"))
	case accessToken != "" && subtle.ConstantTimeCompare([]byte(c.ATH), []byte(AccessTokenHash(accessToken))) != 1:
		return fail(invalid("it was not made for this access token (ath)"))
	}
	jkt, err = thumbprint(h.JSONWebKey)
	if err != nil {
		return fail(invalid("its jwk has no thumbprint"))
	}
	// A proof with this iat is refused once now passes iat+skew, so its
	// cache entry can go then.
	return jkt, jkt + " " + c.JTI, iat.Add(v.skew), nil
}

func (v *Verifier) remember(key string, expires, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if exp, ok := v.seen[key]; ok && !now.After(exp) {
		return usererr.New(usererr.Unauthenticated, "dpop_replayed", "The request's DPoP proof was already used; every request needs a fresh proof.")
	}
	if len(v.seen) >= v.max || now.Sub(v.lastPurge) > v.skew {
		for k, exp := range v.seen {
			if now.After(exp) {
				delete(v.seen, k)
			}
		}
		v.lastPurge = now
	}
	if len(v.seen) >= v.max {
		return usererr.New(usererr.RateLimited, "dpop_busy", "The server is handling too many requests to check proofs for replay; try again in a minute.")
	}
	v.seen[key] = expires
	return nil
}

// Len reports how many proofs the replay cache holds (for metrics and tests).
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}
