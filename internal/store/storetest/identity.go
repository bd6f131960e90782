package storetest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/usererr"
)

var _ = Register("identity", IdentityCases)

// IdentityTestPassword passes the password policy.
const IdentityTestPassword = "violet-harbour-tractor-41"

// IdentitySealer is an AES-256-GCM Sealer with a fixed key, for tests that
// must not depend on internal/kms.
type IdentitySealer struct{ aead cipher.AEAD }

// NewIdentitySealer returns a test Sealer.
func NewIdentitySealer() *IdentitySealer {
	b, _ := aes.NewCipher(make([]byte, 32))
	a, _ := cipher.NewGCMWithRandomNonce(b)
	return &IdentitySealer{a}
}

func (s *IdentitySealer) Seal(pt, aad []byte) ([]byte, error) {
	return s.aead.Seal(nil, nil, pt, aad), nil
}
func (s *IdentitySealer) Open(ct, aad []byte) ([]byte, error) { return s.aead.Open(nil, nil, ct, aad) }

// IdentityEnv is an identity.Service over a real store with a settable clock.
type IdentityEnv struct {
	T   testing.TB
	DB  *store.DB
	Svc *identity.Service

	mu  sync.Mutex
	now time.Time
}

// NewIdentityEnv builds a Service on db with a clock starting at a fixed
// time and cheap Argon2 parameters.
func NewIdentityEnv(t testing.TB, db *store.DB) *IdentityEnv {
	t.Helper()
	e := &IdentityEnv{T: t, DB: db, now: time.Date(2026, 11, 29, 2, 0, 5, 0, time.UTC)}
	svc, err := identity.New(identity.Config{
		Store: db.IdentityStore(), Sealer: NewIdentitySealer(), Now: e.Now,
		Argon2: identity.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Svc = svc
	return e
}

// Now is the env's clock.
func (e *IdentityEnv) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// Advance moves the clock.
func (e *IdentityEnv) Advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// OTP returns the current TOTP code of an enrollment.
func (e *IdentityEnv) OTP(enr identity.Enrollment) string {
	c, err := identity.TOTPCode(enr.TOTPSecret.Reveal(), e.Now())
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// IdentityDevice is a device key pair with its JWK and RFC 7638 thumbprint,
// computed here by hand so that storetest need not import internal/dpop.
type IdentityDevice struct {
	Key ed25519.PrivateKey
	JWK string
	JKT string
}

// NewIdentityDevice makes a device key.
func NewIdentityDevice(t testing.TB) IdentityDevice {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(pub)
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return IdentityDevice{Key: priv, JWK: `{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}`, JKT: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// Bootstrap creates the first admin and returns its enrollment.
func (e *IdentityEnv) Bootstrap(username string) identity.Enrollment {
	e.T.Helper()
	code, _, ok, err := e.Svc.EnsureBootstrapCode(context.Background())
	if err != nil || !ok {
		e.T.Fatalf("EnsureBootstrapCode = %v, %v", ok, err)
	}
	enr, err := e.Svc.Bootstrap(context.Background(), code.Reveal(), username, IdentityTestPassword)
	if err != nil {
		e.T.Fatalf("Bootstrap: %v", err)
	}
	return enr
}

// Invite invites username with role as by and accepts the invitation.
func (e *IdentityEnv) Invite(by wire.Principal, username, role string) identity.Enrollment {
	e.T.Helper()
	inv, err := e.Svc.Invite(context.Background(), by, username, role)
	if err != nil {
		e.T.Fatalf("Invite %s: %v", username, err)
	}
	enr, err := e.Svc.Accept(context.Background(), inv.Code.Reveal(), IdentityTestPassword)
	if err != nil {
		e.T.Fatalf("Accept %s: %v", username, err)
	}
	return enr
}

// Login signs in with the enrollment's current code, then moves the clock
// one TOTP step so the next login has a fresh code.
func (e *IdentityEnv) Login(enr identity.Enrollment, dev IdentityDevice) (identity.Session, wire.Principal) {
	e.T.Helper()
	s, err := e.Svc.Login(context.Background(), e.LoginRequest(enr, dev))
	if err != nil {
		e.T.Fatalf("Login %s: %v", enr.Username, err)
	}
	p, err := e.Svc.Authenticate(context.Background(), s.Token.Reveal(), dev.JKT)
	if err != nil {
		e.T.Fatalf("Authenticate %s: %v", enr.Username, err)
	}
	e.Advance(30 * time.Second)
	return s, p
}

// LoginRequest is a correct sign-in request for enr on dev.
func (e *IdentityEnv) LoginRequest(enr identity.Enrollment, dev IdentityDevice) identity.LoginRequest {
	return identity.LoginRequest{Username: enr.Username, Password: IdentityTestPassword, OTP: e.OTP(enr),
		DeviceJKT: dev.JKT, DevicePublicJWK: dev.JWK, DeviceName: "laptop", SourceIP: "192.0.2.1"}
}

// AuditKinds lists the kinds of the audit entries, oldest first.
func (e *IdentityEnv) AuditKinds() []string {
	e.T.Helper()
	rows, err := e.DB.Query(context.Background(), `SELECT kind FROM audit_entries ORDER BY id`)
	if err != nil {
		e.T.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			e.T.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// identityTables are the tables whose contents the "bad input" case compares.
var identityTables = []string{"persons", "bootstrap_codes", "invitations", "devices", "login_sessions", "audit_entries"}

// Snapshot returns a printable dump of the identity tables.
func (e *IdentityEnv) Snapshot() string {
	e.T.Helper()
	var b strings.Builder
	for _, tbl := range identityTables {
		rows, err := e.DB.Query(context.Background(), `SELECT * FROM `+tbl)
		if err != nil {
			e.T.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.T.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%v", vals))
		}
		rows.Close()
		slices.Sort(lines)
		fmt.Fprintf(&b, "%s:\n%s\n", tbl, strings.Join(lines, "\n"))
	}
	return b.String()
}

// errCode returns the usererr code of err, "" for nil.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	if ue, ok := usererr.As(err); ok {
		return ue.Code
	}
	return "internal: " + err.Error()
}

// IdentityCases is the identity group of the suite. internal/identity's
// own tests run it on SQLite too.
func IdentityCases(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("bootstrap code is single-use, expires and is replaced on restart", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		first, _, ok, err := e.Svc.EnsureBootstrapCode(ctx)
		if err != nil || !ok || !strings.HasPrefix(first.Reveal(), identity.BootstrapCodePrefix) {
			t.Fatalf("EnsureBootstrapCode = %v, %v (code prefix ok: %v)", ok, err, strings.HasPrefix(first.Reveal(), identity.BootstrapCodePrefix))
		}
		second, _, _, err := e.Svc.EnsureBootstrapCode(ctx) // a server restart
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Svc.Bootstrap(ctx, first.Reveal(), "admin", IdentityTestPassword)
		if got := errCode(err); got != "bootstrap_code_invalid" {
			t.Errorf("Bootstrap with the replaced code: %q, want bootstrap_code_invalid", got)
		}
		e.Advance(61 * time.Minute)
		_, err = e.Svc.Bootstrap(ctx, second.Reveal(), "admin", IdentityTestPassword)
		if got := errCode(err); got != "bootstrap_code_invalid" {
			t.Errorf("Bootstrap with an expired code: %q, want bootstrap_code_invalid", got)
		}
		third, _, _, _ := e.Svc.EnsureBootstrapCode(ctx)
		e.Advance(59 * time.Minute)
		enr, err := e.Svc.Bootstrap(ctx, third.Reveal(), "admin", IdentityTestPassword)
		if err != nil {
			t.Fatalf("Bootstrap within the hour: %v", err)
		}
		if enr.Username != "admin" || enr.TOTPSecret == "" || !strings.HasPrefix(enr.TOTPURI.Reveal(), "otpauth://totp/") {
			t.Errorf("enrollment = %+v / %s", enr, enr.TOTPURI.Reveal())
		}
		_, err = e.Svc.Bootstrap(ctx, third.Reveal(), "admin2", IdentityTestPassword)
		if got := errCode(err); got != "already_bootstrapped" && got != "bootstrap_code_invalid" {
			t.Errorf("second Bootstrap with the same code: %q, want a refusal", got)
		}
		if _, _, ok, err := e.Svc.EnsureBootstrapCode(ctx); ok || err != nil {
			t.Errorf("EnsureBootstrapCode after bootstrap = %v, %v; want no code", ok, err)
		}
		users, err := e.Svc.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []identity.User{{Username: "admin", Roles: []string{"admin"}, Status: "active"}}
		if diff := cmp.Diff(want, users, cmpopts.IgnoreFields(identity.User{}, "ID", "CreatedAt")); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
		wantKinds := []string{"identity.bootstrap_code_issued", "identity.bootstrap_code_issued", "identity.bootstrap_code_issued", "identity.bootstrapped"}
		if diff := cmp.Diff(wantKinds, e.AuditKinds()); diff != "" {
			t.Errorf("audit kinds (-want +got):\n%s", diff)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		code, _, _, _ := e.Svc.EnsureBootstrapCode(ctx)
		before := e.Snapshot()
		for _, tt := range []struct {
			name, code, user, password, want string
		}{
			{"short password", code.Reveal(), "admin", "short", "password_too_short"},
			{"common password", code.Reveal(), "admin", "Password1234!", "password_common"},
			{"repeated word", code.Reveal(), "admin", "qwertyqwerty", "password_common"},
			{"leet password", code.Reveal(), "admin", "P@ssw0rd2024!", "password_common"},
			{"password with username", code.Reveal(), "marguerite", "marguerite-is-great", "password_contains_username"},
			{"bad username", code.Reveal(), "Admin!", IdentityTestPassword, "invalid_username"},
			{"wrong code", "ilk_boot_nope", "admin", IdentityTestPassword, "bootstrap_code_invalid"},
			{"code without prefix", "nope", "admin", IdentityTestPassword, "bootstrap_code_invalid"},
		} {
			_, err := e.Svc.Bootstrap(ctx, tt.code, tt.user, tt.password)
			if got := errCode(err); got != tt.want {
				t.Errorf("%s: Bootstrap = %q, want %q", tt.name, got, tt.want)
			}
		}
		enr := e.Bootstrap("admin")
		_, admin := e.Login(enr, NewIdentityDevice(t))
		before = e.Snapshot()
		if _, err := e.Svc.Invite(ctx, admin, "op1", "superuser"); errCode(err) != "invalid_role" {
			t.Errorf("Invite with an unknown role = %v, want invalid_role", err)
		}
		if _, err := e.Svc.Invite(ctx, admin, "admin", "operator"); errCode(err) != "user_exists" {
			t.Errorf("Invite of an existing user = %v, want user_exists", err)
		}
		if _, err := e.Svc.Accept(ctx, "ilk_inv_nope", IdentityTestPassword); errCode(err) != "invitation_code_invalid" {
			t.Errorf("Accept with a wrong code = %v, want invitation_code_invalid", err)
		}
		if err := e.Svc.DisableUser(ctx, admin, "nobody"); errCode(err) != "user_not_found" {
			t.Errorf("DisableUser of nobody = %v, want user_not_found", err)
		}
		if err := e.Svc.RevokeDevice(ctx, admin, "dev_nope"); errCode(err) != "device_not_found" {
			t.Errorf("RevokeDevice of no device = %v, want device_not_found", err)
		}
		req := e.LoginRequest(enr, NewIdentityDevice(t))
		req.DeviceJKT = NewIdentityDevice(t).JKT
		if _, err := e.Svc.Login(ctx, req); errCode(err) != "device_key_mismatch" {
			t.Errorf("Login with a JKT that is not the JWK's = %v, want device_key_mismatch", err)
		}
		if diff := cmp.Diff(before, e.Snapshot()); diff != "" {
			t.Errorf("rejected requests changed the database (-before +after):\n%s", diff)
		}
	})

	t.Run("login, authenticate, expiry and logout", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		loginAt := e.Now()
		s, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s.Token.Reveal(), identity.SessionTokenPrefix) || len(s.Token.Reveal()) != len(identity.SessionTokenPrefix)+43 {
			t.Errorf("token %q is not ilk_sess_ + 256 bits", s.Token.Reveal())
		}
		if fmt.Sprint(s.Token) != "[redacted]" || fmt.Sprintf("%v %+v", s, s) == "" || strings.Contains(fmt.Sprintf("%v %+v %#v", s, s, s), s.Token.Reveal()) {
			t.Errorf("a session prints its token")
		}
		if !s.ExpiresAt.Equal(loginAt.Add(12 * time.Hour)) {
			t.Errorf("session expires at %v, want 12 h after %v", s.ExpiresAt, loginAt)
		}
		p, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev.JKT)
		if err != nil {
			t.Fatal(err)
		}
		want := wire.Principal{Kind: "person", ID: enr.PersonID, Name: "admin", Roles: []string{"admin"}, DeviceID: s.DeviceID, SessionID: s.ID, MFAAt: loginAt}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("principal (-want +got):\n%s", diff)
		}
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), NewIdentityDevice(t).JKT); errCode(err) != "device_mismatch" {
			t.Errorf("token with another device's key = %v, want device_mismatch", err)
		}
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal()+"x", dev.JKT); errCode(err) != "session_invalid" {
			t.Errorf("altered token = %v, want session_invalid", err)
		}
		e.Advance(12*time.Hour - time.Second)
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev.JKT); err != nil {
			t.Errorf("just before expiry: %v", err)
		}
		e.Advance(time.Second)
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev.JKT); errCode(err) != "session_expired" {
			t.Errorf("at expiry = %v, want session_expired", err)
		}
		s2, p2 := e.Login(enr, dev) // the same device signs in again
		if s2.DeviceID != s.DeviceID || s2.NewDevice {
			t.Errorf("second login on the same key made device %s (new %v), want %s", s2.DeviceID, s2.NewDevice, s.DeviceID)
		}
		if err := e.Svc.Logout(ctx, p2); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Svc.Authenticate(ctx, s2.Token.Reveal(), dev.JKT); errCode(err) != "session_ended" {
			t.Errorf("after logout = %v, want session_ended", err)
		}
		kinds := e.AuditKinds()
		for _, k := range []string{"identity.device_registered", "identity.login", "identity.logout"} {
			if !slices.Contains(kinds, k) {
				t.Errorf("audit has no %s entry: %v", k, kinds)
			}
		}
	})

	t.Run("a TOTP code works once", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		req := e.LoginRequest(enr, dev)
		if _, err := e.Svc.Login(ctx, req); err != nil {
			t.Fatal(err)
		}
		e.Advance(10 * time.Second) // same or next step: the code is still within the window
		if _, err := e.Svc.Login(ctx, req); errCode(err) != "login_failed" {
			t.Errorf("replayed code = %v, want login_failed", err)
		}
		e.Advance(30 * time.Second)
		if _, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev)); err != nil {
			t.Errorf("next step's code: %v", err)
		}
		if kinds := e.AuditKinds(); !slices.Contains(kinds, "identity.login_failed") {
			t.Errorf("the replay was not audited: %v", kinds)
		}
	})

	t.Run("concurrent logins with one TOTP code: exactly one wins", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		req := e.LoginRequest(enr, NewIdentityDevice(t))
		const n = 6
		errs := make(chan error, n)
		for range n {
			r := req
			d := NewIdentityDevice(t) // each from its own machine
			r.DeviceJKT, r.DevicePublicJWK = d.JKT, d.JWK
			go func() {
				_, err := e.Svc.Login(ctx, r)
				errs <- err
			}()
		}
		var ok int
		for range n {
			if err := <-errs; err == nil {
				ok++
			} else if errCode(err) != "login_failed" {
				t.Errorf("a losing login = %v, want login_failed", err)
			}
		}
		if ok != 1 {
			t.Errorf("%d logins succeeded with one code, want exactly 1", ok)
		}
	})

	t.Run("ten failures lock the account for the window, whether or not it exists", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		var codes [2][]string
		for i, user := range []string{"admin", "ghost"} {
			start := e.Now()
			for range 10 {
				req := e.LoginRequest(enr, dev)
				req.Username, req.Password = user, "wrong-password-123"
				_, err := e.Svc.Login(ctx, req)
				codes[i] = append(codes[i], errCode(err))
				e.Advance(time.Minute)
			}
			req := e.LoginRequest(enr, dev)
			req.Username = user
			_, err := e.Svc.Login(ctx, req)
			codes[i] = append(codes[i], errCode(err))
			if ue, ok := usererr.As(err); !ok || ue.Kind != usererr.RateLimited {
				t.Errorf("%s: 11th attempt = %v, want RateLimited", user, err)
			}
			// The first failure leaves the window 30 min after it happened.
			e.Advance(start.Add(30*time.Minute).Sub(e.Now()) - time.Second)
			req = e.LoginRequest(enr, dev)
			req.Username = user
			_, err = e.Svc.Login(ctx, req)
			if errCode(err) != "account_locked" {
				t.Errorf("just inside the window = %v, want account_locked", err)
			}
			e.Advance(2 * time.Second)
		}
		if diff := cmp.Diff(codes[0], codes[1]); diff != "" {
			t.Errorf("an existing and a missing user answer differently (-admin +ghost):\n%s", diff)
		}
		if codes[0][0] != "login_failed" || codes[0][10] != "account_locked" {
			t.Errorf("codes = %v", codes[0])
		}
		if _, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev)); err != nil {
			t.Errorf("once a failure left the window: %v", err)
		}
	})

	t.Run("concurrent guesses cannot pass the lockout limit", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		const n = 40
		codes := make(chan string, n)
		for range n {
			req := e.LoginRequest(enr, NewIdentityDevice(t))
			req.Password = "wrong-password-123"
			go func() {
				_, err := e.Svc.Login(ctx, req)
				codes <- errCode(err)
			}()
		}
		count := map[string]int{}
		for range n {
			count[<-codes]++
		}
		if count["login_failed"] > 10 || count["login_failed"]+count["account_locked"] != n {
			t.Errorf("answers to %d concurrent wrong guesses: %v; want at most 10 checked, the rest account_locked", n, count)
		}
	})

	t.Run("invitation, roles, disable and revoke", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		_, admin := e.Login(e.Bootstrap("admin"), NewIdentityDevice(t))
		inv, err := e.Svc.Invite(ctx, admin, "operator1", "operator")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(inv.Code.Reveal(), identity.InvitationCodePrefix) {
			t.Errorf("invitation code %q lacks its prefix", inv.Code.Reveal())
		}
		enr, err := e.Svc.Accept(ctx, inv.Code.Reveal(), IdentityTestPassword)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Svc.Accept(ctx, inv.Code.Reveal(), "another-long-passphrase-9"); errCode(err) != "invitation_code_invalid" {
			t.Errorf("second Accept = %v, want invitation_code_invalid", err)
		}
		dev := NewIdentityDevice(t)
		s, op := e.Login(enr, dev)
		if diff := cmp.Diff([]string{"operator"}, op.Roles); diff != "" {
			t.Errorf("operator roles (-want +got):\n%s", diff)
		}

		// An invitation expires.
		late, err := e.Svc.Invite(ctx, admin, "approver1", "approver")
		if err != nil {
			t.Fatal(err)
		}
		e.Advance(72 * time.Hour)
		if _, err := e.Svc.Accept(ctx, late.Code.Reveal(), IdentityTestPassword); errCode(err) != "invitation_code_invalid" {
			t.Errorf("expired invitation = %v, want invitation_code_invalid", err)
		}
		again, err := e.Svc.Invite(ctx, admin, "approver1", "approver") // re-inviting replaces it
		if err != nil {
			t.Fatalf("re-invite: %v", err)
		}
		if _, err := e.Svc.Accept(ctx, again.Code.Reveal(), IdentityTestPassword); err != nil {
			t.Errorf("accept re-invitation: %v", err)
		}
		s, op = e.Login(enr, dev)

		// A person may revoke only their own devices unless admin.
		devices, err := e.Svc.ListDevices(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(devices) != 2 {
			t.Fatalf("devices = %+v, want 2", devices)
		}
		if err := e.Svc.RevokeDevice(ctx, op, admin.DeviceID); errCode(err) != "not_your_device" {
			t.Errorf("operator revoking the admin's device = %v, want not_your_device", err)
		}
		if err := e.Svc.RevokeDevice(ctx, admin, op.DeviceID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev.JKT); errCode(err) != "device_revoked" {
			t.Errorf("next request from the revoked device = %v, want device_revoked", err)
		}
		if _, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev)); errCode(err) != "device_revoked" {
			t.Errorf("login with the revoked key = %v, want device_revoked", err)
		}
		e.Advance(30 * time.Second)
		dev2 := NewIdentityDevice(t)
		s, _ = e.Login(enr, dev2)
		mine, err := e.Svc.ListDevices(ctx, enr.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) != 2 || mine[0].RevokedAt.IsZero() || !mine[1].RevokedAt.IsZero() || mine[1].Username != "operator1" {
			t.Errorf("operator's devices = %+v, want the revoked one and the new one", mine)
		}

		// Disabling ends sessions at once and refuses sign-in.
		if err := e.Svc.DisableUser(ctx, admin, "admin"); errCode(err) != "cannot_disable_self" {
			t.Errorf("disabling oneself = %v, want cannot_disable_self", err)
		}
		if err := e.Svc.DisableUser(ctx, admin, "operator1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev2.JKT); errCode(err) != "session_ended" {
			t.Errorf("disabled user's next request = %v, want session_ended", err)
		}
		if _, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev2)); errCode(err) != "login_failed" {
			t.Errorf("disabled user's login = %v, want login_failed", err)
		}
		users, _ := e.Svc.ListUsers(ctx)
		var got []string
		for _, u := range users {
			got = append(got, u.Username+":"+u.Status+":"+strings.Join(u.Roles, ","))
		}
		if diff := cmp.Diff([]string{"admin:active:admin", "approver1:active:approver", "operator1:disabled:operator"}, got); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
		kinds := e.AuditKinds()
		for _, k := range []string{"identity.invited", "identity.accepted", "identity.device_revoked", "identity.user_disabled"} {
			if !slices.Contains(kinds, k) {
				t.Errorf("audit has no %s entry", k)
			}
		}
	})

	t.Run("step-up MFA refreshes the session and is single-use", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		s, p := e.Login(enr, dev)
		e.Advance(time.Hour)
		code := e.OTP(enr)
		at, err := e.Svc.VerifyOTP(ctx, p, code)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev.JKT)
		if err != nil {
			t.Fatal(err)
		}
		if !p2.MFAAt.Equal(at) || !at.Equal(e.Now()) {
			t.Errorf("MFAAt = %v, want %v", p2.MFAAt, e.Now())
		}
		if _, err := e.Svc.VerifyOTP(ctx, p, code); errCode(err) != "otp_wrong" {
			t.Errorf("replayed step-up code = %v, want otp_wrong", err)
		}
		e.Advance(30 * time.Second)
		if _, err := e.Svc.VerifyOTP(ctx, p, wrongCode(e.OTP(enr))); errCode(err) != "otp_wrong" {
			t.Errorf("wrong step-up code = %v, want otp_wrong", err)
		}
	})

	t.Run("a locked sign-in does not stop a signed-in person's step-up, which has its own lockout", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		_, p := e.Login(enr, dev)
		// Anyone can lock the username's sign-in by guessing.
		for range 11 {
			req := e.LoginRequest(enr, NewIdentityDevice(t))
			req.Password = "wrong-password-123"
			_, _ = e.Svc.Login(ctx, req)
		}
		if _, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev)); errCode(err) != "account_locked" {
			t.Fatalf("sign-in after 11 wrong guesses = %v, want account_locked", err)
		}
		if _, err := e.Svc.VerifyOTP(ctx, p, e.OTP(enr)); err != nil {
			t.Fatalf("step-up of a signed-in person while sign-in is locked: %v", err)
		}
		// Guessing codes on a session locks step-up, not sign-in.
		e.Advance(31 * time.Minute) // the sign-in failures leave the window
		for range 10 {
			e.Advance(30 * time.Second)
			if _, err := e.Svc.VerifyOTP(ctx, p, wrongCode(e.OTP(enr))); errCode(err) != "otp_wrong" {
				t.Fatalf("wrong step-up code = %v, want otp_wrong", err)
			}
		}
		e.Advance(30 * time.Second)
		_, err := e.Svc.VerifyOTP(ctx, p, e.OTP(enr))
		if ue, ok := usererr.As(err); !ok || ue.Code != "account_locked" || !strings.Contains(ue.Msg, "second factor") {
			t.Errorf("step-up after 10 wrong codes = %v, want account_locked about the second factor", err)
		}
		if _, err := e.Svc.Login(ctx, e.LoginRequest(enr, dev)); err != nil {
			t.Errorf("sign-in while only step-up is locked: %v", err)
		}
	})

	t.Run("a locked account's refusals write one log entry per lock", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		for range 25 {
			req := e.LoginRequest(enr, NewIdentityDevice(t))
			req.Password = "wrong-password-123"
			_, _ = e.Svc.Login(ctx, req)
		}
		count := func(kind string) (n int) {
			for _, k := range e.AuditKinds() {
				if k == kind {
					n++
				}
			}
			return n
		}
		if n := count("identity.login_locked"); n != 1 {
			t.Errorf("15 refusals of a locked account wrote %d identity.login_locked entries, want 1", n)
		}
		e.Advance(31 * time.Minute)
		for range 12 {
			req := e.LoginRequest(enr, NewIdentityDevice(t))
			req.Password = "wrong-password-123"
			_, _ = e.Svc.Login(ctx, req)
		}
		if n := count("identity.login_locked"); n != 2 {
			t.Errorf("after a second lock: %d identity.login_locked entries, want 2", n)
		}
	})

	t.Run("a username that cannot exist is refused before the lockout counts it", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		before := e.Snapshot()
		for _, name := range []string{"step-up:per_x", "Admin", "a b", "correct horse 42!"} {
			req := e.LoginRequest(enr, NewIdentityDevice(t))
			req.Username = name
			if _, err := e.Svc.Login(ctx, req); errCode(err) != "invalid_username" {
				t.Errorf("sign-in as %q = %v, want invalid_username", name, err)
			}
		}
		if diff := cmp.Diff(before, e.Snapshot()); diff != "" {
			t.Errorf("refused sign-ins changed the store (-before +after):\n%s", diff)
		}
	})

	t.Run("a failed sign-in for no such account keeps no username", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		req := e.LoginRequest(enr, NewIdentityDevice(t))
		req.Username = "hunter-two-password"
		_, _ = e.Svc.Login(ctx, req)
		var personal string
		if err := e.DB.QueryRow(ctx, `SELECT personal FROM audit_entries WHERE kind = 'identity.login_failed'`).Scan(&personal); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(personal, "hunter-two-password") {
			t.Errorf("the unknown username is in the audit entry: %s", personal)
		}
	})

	t.Run("a code older than the last one used is refused", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		e.Advance(30 * time.Second)
		next := e.OTP(enr)
		e.Advance(-30 * time.Second)
		current := e.OTP(enr)
		req := e.LoginRequest(enr, dev)
		req.OTP = next // the next step's code is within the window
		if _, err := e.Svc.Login(ctx, req); err != nil {
			t.Fatalf("sign-in with the next step's code: %v", err)
		}
		req.OTP = current
		if _, err := e.Svc.Login(ctx, req); errCode(err) != "login_failed" {
			t.Errorf("sign-in with a code older than the last used = %v, want login_failed", err)
		}
	})

	t.Run("a disabled account's session is refused even if it was not revoked", func(t *testing.T) {
		e := NewIdentityEnv(t, open(t))
		enr := e.Bootstrap("admin")
		dev := NewIdentityDevice(t)
		s, p := e.Login(enr, dev)
		if _, err := e.DB.Exec(ctx, `UPDATE persons SET status = 'disabled' WHERE id = $1`, p.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Svc.Authenticate(ctx, s.Token.Reveal(), dev.JKT); errCode(err) != "account_disabled" {
			t.Errorf("Authenticate for a disabled account = %v, want account_disabled", err)
		}
	})
}

// wrongCode is a six-digit code that is not code.
func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}
