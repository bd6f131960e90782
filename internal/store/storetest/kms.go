package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// KMSClock is a settable clock for KMS tests.
type KMSClock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *KMSClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *KMSClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// NewKMS returns a kms.Service on db with a fixed root key and a fake
// clock; mod may adjust the configuration.
func NewKMS(t testing.TB, db *store.DB, mod func(*kms.Config)) (*kms.Service, *KMSClock) {
	t.Helper()
	root, err := kms.RootKeyFromBytes(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := &KMSClock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	cfg := kms.Config{Store: db.KMSStore(), Root: root, Now: clock.Now, CacheTTL: time.Hour}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := kms.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if err := svc.CheckRootKey(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc, clock
}

var (
	alice = kms.Caller{Kind: "person", ID: "p-alice"}
	bob   = kms.Caller{Kind: "person", ID: "p-bob"}
	bot   = kms.Caller{Kind: "agent", ID: "h-web-1"}
)

// wantUserErr fails t unless err is a usererr of kind k and code.
func wantUserErr(t *testing.T, what string, err error, k usererr.Kind, code string) {
	t.Helper()
	ue, ok := usererr.As(err)
	if !ok || ue.Kind != k || ue.Code != code {
		t.Fatalf("%s: err = %v, want usererr kind %d code %q", what, err, k, code)
	}
	if ue.Msg == "" || !strings.HasSuffix(strings.TrimSpace(ue.Msg), ".") && !strings.Contains(ue.Msg, " ") {
		t.Errorf("%s: message %q is not a sentence", what, ue.Msg)
	}
}

type auditRow struct {
	Kind     string
	Actor    string
	Subject  string
	Data     map[string]any
	Personal map[string]string
}

func auditRows(t *testing.T, db *store.DB, kindPrefix string) []auditRow {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT kind, actor, subject, data, personal FROM audit_entries ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		var data, personal []byte
		if err := rows.Scan(&r.Kind, &r.Actor, &r.Subject, &data, &personal); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(data, &r.Data)
		// Openings of personal fields, as internal/store keeps them
		// ({name: value}; an older layout was a list of {n, s, v}).
		if json.Unmarshal(personal, &r.Personal) != nil {
			var openings []struct{ N, V string }
			_ = json.Unmarshal(personal, &openings)
			for _, o := range openings {
				if r.Personal == nil {
					r.Personal = map[string]string{}
				}
				r.Personal[o.N] = o.V
			}
		}
		if strings.HasPrefix(r.Kind, kindPrefix) {
			out = append(out, r)
		}
	}
	return out
}

func countRows(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tbl := range []string{"audit_entries", "kms_keys", "kms_key_versions", "kms_secrets", "kms_secret_versions", "kms_requests"} {
		var n int
		if err := db.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tbl] = n
	}
	return out
}

func mustKey(t *testing.T, svc *kms.Service, name string, opt kms.KeyOptions) {
	t.Helper()
	if _, err := svc.CreateKey(context.Background(), alice, name, opt); err != nil {
		t.Fatal(err)
	}
}

func mustEncrypt(t *testing.T, svc *kms.Service, key, pt string, c kms.Context) kms.EncryptResult {
	t.Helper()
	r, err := svc.Encrypt(context.Background(), alice, key, []byte(pt), c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustDecrypt(t *testing.T, svc *kms.Service, ct string, c kms.Context) string {
	t.Helper()
	r, err := svc.Decrypt(context.Background(), alice, ct, "", c)
	if err != nil {
		t.Fatalf("decrypt: %v", err)
	}
	return string(r.Plaintext.Bytes())
}

// flipB64 changes one character of the base64 part of a ciphertext.
func flipB64(ct string, fromEnd int) string {
	b := []byte(ct)
	i := len(b) - 1 - fromEnd
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

var _ = Register("kms", func(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("encrypt and decrypt round trip with audited context hash", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		c := kms.Context{"tenant": "acme-corp-tenant", "purpose": "backup"}
		r := mustEncrypt(t, svc, "app", "attack at dawn", c)
		if !strings.HasPrefix(r.Ciphertext, "ilk:v1:app:1:") || r.Version != 1 {
			t.Errorf("ciphertext %q version %d, want prefix ilk:v1:app:1: and version 1", r.Ciphertext, r.Version)
		}
		if got := mustDecrypt(t, svc, r.Ciphertext, kms.Context{"purpose": "backup", "tenant": "acme-corp-tenant"}); got != "attack at dawn" {
			t.Errorf("decrypt = %q", got)
		}
		if d, err := svc.Decrypt(ctx, alice, r.Ciphertext, "app", c); err != nil || d.Key != "app" || d.Version != 1 {
			t.Errorf("decrypt naming the key = %+v, %v", d, err)
		}
		if fmtd := (kms.DecryptResult{}).Plaintext.String(); fmtd != "[redacted]" {
			t.Errorf("Plaintext prints as %q", fmtd)
		}
		entries := auditRows(t, db, "kms.")
		var kinds []string
		for _, e := range entries {
			kinds = append(kinds, e.Kind)
			raw, _ := json.Marshal(e)
			if bytes.Contains(raw, []byte("acme-corp-tenant")) || bytes.Contains(raw, []byte("attack at dawn")) {
				t.Errorf("audit entry %s holds the context or plaintext: %s", e.Kind, raw)
			}
		}
		if diff := cmp.Diff([]string{"kms.root_key.initialized", "kms.key.created", "kms.encrypt", "kms.decrypt", "kms.decrypt"}, kinds); diff != "" {
			t.Errorf("audit kinds (-want +got):\n%s", diff)
		}
		enc := entries[2]
		h, _ := enc.Data["context_hmac"].(string)
		if enc.Actor != "person:p-alice" || enc.Subject != "key:app" || !strings.HasPrefix(h, "hmac-sha256:") {
			t.Errorf("encrypt entry = %+v", enc)
		}
		if entries[3].Data["context_hmac"] != h {
			t.Error("the same context hashed differently on decrypt")
		}
		other := mustEncrypt(t, svc, "app", "x", kms.Context{"tenant": "other"})
		_ = other
		if last := auditRows(t, db, "kms.encrypt"); last[len(last)-1].Data["context_hmac"] == h {
			t.Error("different contexts gave the same hash")
		}
	})

	t.Run("refusals", func(t *testing.T) {
		db := open(t)
		svc, clock := NewKMS(t, db, func(c *kms.Config) { c.DestroyDelay = -1 })
		mustKey(t, svc, "app", kms.KeyOptions{})
		mustKey(t, svc, "other", kms.KeyOptions{})
		c := kms.Context{"k": "v"}
		v1 := mustEncrypt(t, svc, "app", "old secret", c).Ciphertext
		var v2 string
		for i, k := range []string{"app", "other", "app", "other"} {
			if _, err := svc.RotateKey(ctx, alice, k); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				v2 = mustEncrypt(t, svc, "app", "older secret", c).Ciphertext
			}
		}
		good := mustEncrypt(t, svc, "app", "current", c).Ciphertext
		// Destroy version 1 (approved by a second person; no delay here).
		req, err := svc.DestroyKeyVersion(ctx, alice, "app", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Approve(ctx, bob, req.ID, req.Hash); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if _, err := svc.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		// Version 2 falls below the minimum.
		if _, err := svc.SetMinDecryptionVersion(ctx, alice, "app", 3); err != nil {
			t.Fatal(err)
		}
		v2ct := strings.Replace(good, "ilk:v1:app:3:", "ilk:v1:app:2:", 1)
		renamed := strings.Replace(good, "ilk:v1:app:", "ilk:v1:other:", 1)
		before := countRows(t, db)
		for _, tt := range []struct {
			name    string
			ct      string
			wantKey string
			ctx     kms.Context
			kind    usererr.Kind
			code    string
		}{
			{"tampered body", flipB64(good, 3), "", c, usererr.Invalid, "decrypt_failed"},
			{"tampered wrapped key", flipB64(good, len(good)-len("ilk:v1:app:3:")-5), "", c, usererr.Invalid, "decrypt_failed"},
			{"wrong context", good, "", kms.Context{"k": "w"}, usererr.Invalid, "decrypt_failed"},
			{"missing context", good, "", nil, usererr.Invalid, "decrypt_failed"},
			{"extra context", good, "", kms.Context{"k": "v", "x": "y"}, usererr.Invalid, "decrypt_failed"},
			{"wrong key", renamed, "", c, usererr.Invalid, "decrypt_failed"},
			{"relabelled version", v2ct, "", c, usererr.Forbidden, "version_below_minimum"},
			{"expected another key", good, "other", c, usererr.Invalid, "key_mismatch"},
			{"unknown key", strings.Replace(good, "ilk:v1:app:", "ilk:v1:nokey:", 1), "", c, usererr.NotFound, "unknown_key"},
			{"unknown version", strings.Replace(good, "ilk:v1:app:3:", "ilk:v1:app:9:", 1), "", c, usererr.NotFound, "unknown_key_version"},
			{"destroyed version", v1, "", c, usererr.Conflict, "key_version_destroyed"},
			{"below minimum", v2, "", c, usererr.Forbidden, "version_below_minimum"},
			{"invalid base64", good[:len(good)-4] + "!!!!", "", c, usererr.Invalid, "invalid_ciphertext"},
			{"not ours", "vault:v1:abc", "", c, usererr.Invalid, "invalid_ciphertext"},
			{"future format", strings.Replace(good, "ilk:v1:", "ilk:v9:", 1), "", c, usererr.Invalid, "invalid_ciphertext"},
			{"truncated", good[:len("ilk:v1:app:3:")+20], "", c, usererr.Invalid, "invalid_ciphertext"},
			{"empty", "", "", c, usererr.Invalid, "invalid_ciphertext"},
			{"oversized", "ilk:v1:app:3:" + strings.Repeat("A", kms.MaxCiphertext), "", c, usererr.TooLarge, "ciphertext_too_large"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := svc.Decrypt(ctx, alice, tt.ct, tt.wantKey, tt.ctx)
				wantUserErr(t, "decrypt", err, tt.kind, tt.code)
				// Rewrap never opens the body, so a damaged body passes
				// through it (and still fails to decrypt afterwards).
				if tt.code != "key_mismatch" && tt.name != "tampered body" {
					_, err = svc.Rewrap(ctx, alice, tt.ct, tt.ctx)
					wantUserErr(t, "rewrap", err, tt.kind, tt.code)
				}
			})
		}
		for _, tt := range []struct {
			name string
			key  string
			pt   []byte
			ctx  kms.Context
			kind usererr.Kind
			code string
		}{
			{"unknown key", "nokey", []byte("x"), nil, usererr.NotFound, "unknown_key"},
			{"bad key name", "Bad Name", []byte("x"), nil, usererr.Invalid, "invalid_key_name"},
			{"empty plaintext", "app", nil, nil, usererr.Invalid, "empty_plaintext"},
			{"oversized plaintext", "app", make([]byte, kms.MaxPlaintext+1), nil, usererr.TooLarge, "plaintext_too_large"},
			{"empty context key", "app", []byte("x"), kms.Context{"": "v"}, usererr.Invalid, "invalid_context"},
			{"oversized context value", "app", []byte("x"), kms.Context{"k": strings.Repeat("v", 2000)}, usererr.Invalid, "invalid_context"},
		} {
			t.Run("encrypt "+tt.name, func(t *testing.T) {
				_, err := svc.Encrypt(ctx, alice, tt.key, tt.pt, tt.ctx)
				wantUserErr(t, "encrypt", err, tt.kind, tt.code)
			})
		}
		if diff := cmp.Diff(before, countRows(t, db)); diff != "" {
			t.Errorf("refused calls changed the database (-before +after):\n%s", diff)
		}
		if _, err := kms.ParseContext([]string{"novalue"}); err == nil {
			t.Error("ParseContext accepted a pair without '='")
		}
	})

	t.Run("rotation keeps old ciphertext readable and rewrap moves it to the newest", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		c := kms.Context{"row": "7"}
		old := mustEncrypt(t, svc, "app", "payload", c)
		ki, err := svc.RotateKey(ctx, alice, "app")
		if err != nil || ki.CurrentVersion != 2 {
			t.Fatalf("rotate = %+v, %v", ki, err)
		}
		if got := mustDecrypt(t, svc, old.Ciphertext, c); got != "payload" {
			t.Errorf("old ciphertext after rotation = %q", got)
		}
		if n := mustEncrypt(t, svc, "app", "new", c); n.Version != 2 {
			t.Errorf("encrypt after rotation used version %d, want 2", n.Version)
		}
		svc.RotateKey(ctx, alice, "app")
		rw, err := svc.Rewrap(ctx, alice, old.Ciphertext, c)
		if err != nil {
			t.Fatal(err)
		}
		if rw.Version != 3 || !strings.HasPrefix(rw.Ciphertext, "ilk:v1:app:3:") {
			t.Errorf("rewrap = version %d %q, want version 3", rw.Version, rw.Ciphertext[:20])
		}
		if got := mustDecrypt(t, svc, rw.Ciphertext, c); got != "payload" {
			t.Errorf("rewrapped ciphertext decrypts to %q", got)
		}
		if _, err := svc.Rewrap(ctx, alice, old.Ciphertext, kms.Context{"row": "8"}); err == nil {
			t.Error("rewrap with the wrong context succeeded")
		}
		// Once every version below 3 is shut out, only the rewrapped copy reads.
		if _, err := svc.SetMinDecryptionVersion(ctx, alice, "app", 3); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Decrypt(ctx, alice, old.Ciphertext, "", c); err == nil {
			t.Error("old ciphertext still decrypts below the minimum version")
		}
		if got := mustDecrypt(t, svc, rw.Ciphertext, c); got != "payload" {
			t.Errorf("rewrapped ciphertext after raising the minimum = %q", got)
		}
		got := auditRows(t, db, "kms.rewrap")
		if len(got) != 1 || got[0].Data["from_version"] != float64(1) || got[0].Data["version"] != float64(3) {
			t.Errorf("rewrap audit = %+v", got)
		}
	})

	t.Run("automatic rotation at the encryption limit and on schedule", func(t *testing.T) {
		db := open(t)
		svc, clock := NewKMS(t, db, func(c *kms.Config) { c.MaxEncryptions = 3; c.RotationPeriod = 24 * time.Hour })
		mustKey(t, svc, "app", kms.KeyOptions{})
		var versions []int
		var cts []string
		for i := 0; i < 7; i++ {
			r := mustEncrypt(t, svc, "app", "m", nil)
			versions = append(versions, r.Version)
			cts = append(cts, r.Ciphertext)
		}
		if diff := cmp.Diff([]int{1, 1, 1, 2, 2, 2, 3}, versions); diff != "" {
			t.Errorf("versions used (-want +got):\n%s", diff)
		}
		ki, err := svc.GetKey(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		var counts []int64
		for _, v := range ki.Versions {
			counts = append(counts, v.Encryptions)
		}
		if diff := cmp.Diff([]int64{3, 3, 1}, counts); diff != "" {
			t.Errorf("stored encryption counts (-want +got):\n%s", diff)
		}
		for _, ct := range cts {
			if mustDecrypt(t, svc, ct, nil) != "m" {
				t.Error("ciphertext from before an automatic rotation no longer decrypts")
			}
		}
		rot := auditRows(t, db, "kms.key.rotated")
		if len(rot) != 2 || rot[0].Data["reason"] != "encryption_limit" || rot[0].Actor != "system" {
			t.Errorf("rotation audit = %+v", rot)
		}
		clock.Advance(25 * time.Hour)
		if r := mustEncrypt(t, svc, "app", "m", nil); r.Version != 4 {
			t.Errorf("encrypt after the rotation period used version %d, want 4", r.Version)
		}
		if rot := auditRows(t, db, "kms.key.rotated"); rot[len(rot)-1].Data["reason"] != "schedule" {
			t.Errorf("last rotation reason = %v, want schedule", rot[len(rot)-1].Data["reason"])
		}
		// An idle key rotates from RunDue.
		mustKey(t, svc, "idle", kms.KeyOptions{})
		clock.Advance(25 * time.Hour)
		if _, err := svc.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		if ki, _ := svc.GetKey(ctx, "idle"); ki.CurrentVersion != 2 {
			t.Errorf("idle key version after its period = %d, want 2", ki.CurrentVersion)
		}
		if _, err := svc.CreateKey(ctx, alice, "toolarge", kms.KeyOptions{MaxEncryptions: 1 << 40}); err == nil {
			t.Error("a key with an encryption limit above 2^31 was created")
		}
	})

	t.Run("generate data key", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "files", kms.KeyOptions{})
		c := kms.Context{"file": "backup.tar"}
		dk, err := svc.GenerateDataKey(ctx, alice, "files", c)
		if err != nil {
			t.Fatal(err)
		}
		if len(dk.Plaintext.Bytes()) != kms.DataKeySize || bytes.Equal(dk.Plaintext.Bytes(), make([]byte, kms.DataKeySize)) {
			t.Errorf("data key is %d bytes: %x", len(dk.Plaintext.Bytes()), dk.Plaintext.Bytes())
		}
		d, err := svc.Decrypt(ctx, alice, dk.Ciphertext, "files", c)
		if err != nil || !bytes.Equal(d.Plaintext.Bytes(), dk.Plaintext.Bytes()) {
			t.Errorf("decrypting the wrapped data key = %x, %v; want the data key", d.Plaintext.Bytes(), err)
		}
		if got := auditRows(t, db, "kms.datakey"); len(got) != 1 {
			t.Errorf("datakey audit entries = %d, want 1", len(got))
		}
	})

	t.Run("dual control: disable", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		ct := mustEncrypt(t, svc, "app", "v", nil).Ciphertext
		if _, err := svc.DisableKey(ctx, bot, "app"); err == nil {
			t.Error("an agent asked to disable a key")
		}
		req, err := svc.DisableKey(ctx, alice, "app")
		if err != nil {
			t.Fatal(err)
		}
		if req.State != kms.StatePending || req.RequestedBy != "p-alice" || len(req.Hash) != 64 {
			t.Errorf("request = %+v", req)
		}
		mustDecrypt(t, svc, ct, nil) // nothing changed yet
		before := countRows(t, db)
		_, err = svc.Approve(ctx, alice, req.ID, req.Hash)
		wantUserErr(t, "self approval", err, usererr.Forbidden, "self_approval")
		_, err = svc.Approve(ctx, kms.Caller{Kind: "person", ID: "p-alice"}, req.ID, req.Hash)
		wantUserErr(t, "self approval under another session", err, usererr.Forbidden, "self_approval")
		_, err = svc.Approve(ctx, bot, req.ID, req.Hash)
		wantUserErr(t, "agent approval", err, usererr.Forbidden, "person_required")
		_, err = svc.Approve(ctx, bob, req.ID, strings.Repeat("0", 64))
		wantUserErr(t, "wrong hash", err, usererr.Conflict, "hash_mismatch")
		_, err = svc.Approve(ctx, bob, "kreq_nope", req.Hash)
		wantUserErr(t, "unknown request", err, usererr.NotFound, "unknown_request")
		if diff := cmp.Diff(before, countRows(t, db)); diff != "" {
			t.Errorf("refused approvals changed the database (-before +after):\n%s", diff)
		}
		mustDecrypt(t, svc, ct, nil)
		done, err := svc.Approve(ctx, bob, req.ID, req.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if done.State != kms.StateDone || done.ApprovedBy != "p-bob" {
			t.Errorf("approved request = %+v", done)
		}
		_, err = svc.Decrypt(ctx, alice, ct, "", nil)
		wantUserErr(t, "decrypt with a disabled key", err, usererr.Conflict, "key_disabled")
		_, err = svc.Encrypt(ctx, alice, "app", []byte("x"), nil)
		wantUserErr(t, "encrypt with a disabled key", err, usererr.Conflict, "key_disabled")
		_, err = svc.Approve(ctx, bob, req.ID, req.Hash)
		wantUserErr(t, "second approval", err, usererr.Conflict, "request_not_pending")
		if _, err := svc.EnableKey(ctx, alice, "app"); err != nil {
			t.Fatal(err)
		}
		mustDecrypt(t, svc, ct, nil)
		var kinds []string
		for _, e := range auditRows(t, db, "kms.") {
			kinds = append(kinds, e.Kind)
		}
		want := []string{"kms.root_key.initialized", "kms.key.created", "kms.encrypt", "kms.request.created", "kms.decrypt", "kms.decrypt",
			"kms.request.approved", "kms.key.disabled", "kms.key.enabled", "kms.decrypt"}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("audit kinds (-want +got):\n%s", diff)
		}
	})

	t.Run("dual control: destroy a version after the waiting period", func(t *testing.T) {
		db := open(t)
		svc, clock := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		ct := mustEncrypt(t, svc, "app", "doomed", nil).Ciphertext
		_, err := svc.DestroyKeyVersion(ctx, alice, "app", 1)
		wantUserErr(t, "destroy current", err, usererr.Conflict, "destroy_current_version")
		svc.RotateKey(ctx, alice, "app")
		_, err = svc.DestroyKeyVersion(ctx, alice, "app", 7)
		wantUserErr(t, "destroy missing", err, usererr.NotFound, "unknown_key_version")
		// A cancelled request does nothing.
		c1, _ := svc.DestroyKeyVersion(ctx, alice, "app", 1)
		if _, err := svc.Cancel(ctx, bob, c1.ID); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Approve(ctx, bob, c1.ID, c1.Hash)
		wantUserErr(t, "approve cancelled", err, usererr.Conflict, "request_not_pending")

		req, err := svc.DestroyKeyVersion(ctx, alice, "app", 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := svc.Approve(ctx, bob, req.ID, req.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != kms.StateScheduled || !got.ExecuteAfter.Equal(clock.Now().Add(kms.DefaultDestroyDelay)) {
			t.Errorf("approved destroy = %s after %v, want scheduled 7 days out", got.State, got.ExecuteAfter)
		}
		clock.Advance(kms.DefaultDestroyDelay - time.Minute)
		if n, err := svc.RunDue(ctx); err != nil || n != 0 {
			t.Errorf("RunDue before the delay = %d, %v; want nothing done", n, err)
		}
		mustDecrypt(t, svc, ct, nil)
		clock.Advance(time.Minute)
		if n, err := svc.RunDue(ctx); err != nil || n != 1 {
			t.Errorf("RunDue after the delay = %d, %v; want 1", n, err)
		}
		_, err = svc.Decrypt(ctx, alice, ct, "", nil)
		wantUserErr(t, "decrypt destroyed", err, usererr.Conflict, "key_version_destroyed")
		// Even a fresh service (no cache) cannot read it: the key is gone.
		svc2, _ := NewKMS(t, db, nil)
		_, err = svc2.Decrypt(ctx, alice, ct, "", nil)
		wantUserErr(t, "decrypt destroyed, fresh service", err, usererr.Conflict, "key_version_destroyed")
		ki, _ := svc.GetKey(ctx, "app")
		if !ki.Versions[0].Destroyed || ki.Versions[1].Destroyed {
			t.Errorf("versions after destroy = %+v", ki.Versions)
		}
		var wrapped []byte
		if err := db.QueryRow(ctx, `SELECT wrapped FROM kms_key_versions WHERE key_name = 'app' AND version = 1`).Scan(&wrapped); err != nil {
			t.Fatal(err)
		}
		if len(bytes.Trim(wrapped, "\x00")) != 0 {
			t.Errorf("destroyed version still stores %d non-zero bytes", len(bytes.Trim(wrapped, "\x00")))
		}
		d := auditRows(t, db, "kms.key.version_destroyed")
		if len(d) != 1 || d[0].Actor != "system" || d[0].Data["approved_by"] != "person:p-bob" || d[0].Data["requested_by"] != "person:p-alice" {
			t.Errorf("destroy audit = %+v", d)
		}
	})

	t.Run("dual control: lowering the minimum decryption version", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		ct := mustEncrypt(t, svc, "app", "v1 data", nil).Ciphertext
		svc.RotateKey(ctx, alice, "app")
		if r, err := svc.SetMinDecryptionVersion(ctx, alice, "app", 2); err != nil || r != nil {
			t.Fatalf("raising the minimum = %v, %v; want immediate", r, err)
		}
		_, err := svc.SetMinDecryptionVersion(ctx, alice, "app", 3)
		wantUserErr(t, "minimum above current", err, usererr.Invalid, "invalid_min_version")
		req, err := svc.SetMinDecryptionVersion(ctx, alice, "app", 1)
		if err != nil || req == nil {
			t.Fatalf("lowering = %v, %v; want a pending request", req, err)
		}
		if _, err := svc.Decrypt(ctx, alice, ct, "", nil); err == nil {
			t.Error("lowering took effect before approval")
		}
		_, err = svc.Approve(ctx, alice, req.ID, req.Hash)
		wantUserErr(t, "self approval", err, usererr.Forbidden, "self_approval")
		if _, err := svc.Approve(ctx, bob, req.ID, req.Hash); err != nil {
			t.Fatal(err)
		}
		if got := mustDecrypt(t, svc, ct, nil); got != "v1 data" {
			t.Errorf("decrypt after approved lowering = %q", got)
		}
		// A request that drifted (the minimum moved since) is refused.
		svc.SetMinDecryptionVersion(ctx, alice, "app", 2)
		stale, _ := svc.SetMinDecryptionVersion(ctx, alice, "app", 1)
		svc.RotateKey(ctx, alice, "app")
		svc.SetMinDecryptionVersion(ctx, alice, "app", 3)
		_, err = svc.Approve(ctx, bob, stale.ID, stale.Hash)
		wantUserErr(t, "drifted request", err, usererr.Conflict, "request_drifted")
	})

	t.Run("secrets: put, get with a reason, versions, list, delete", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		_, err := svc.PutSecret(ctx, alice, "prod/db/password", []byte("x"), kms.PutOptions{})
		wantUserErr(t, "put without the default key", err, usererr.NotFound, "unknown_key")
		mustKey(t, svc, "secrets", kms.KeyOptions{})
		for _, v := range []string{"hunter2", "correct horse"} {
			r, err := svc.PutSecret(ctx, alice, "prod/db/password", []byte(v), kms.PutOptions{})
			if err != nil || r.Pending != nil {
				t.Fatalf("put = %+v, %v", r, err)
			}
		}
		svc.PutSecret(ctx, alice, "prod/api/token", []byte("tok"), kms.PutOptions{})
		svc.PutSecret(ctx, alice, "staging/api/token", []byte("tok2"), kms.PutOptions{})
		_, err = svc.GetSecret(ctx, alice, "prod/db/password", 0, "  ")
		wantUserErr(t, "get without a reason", err, usererr.Invalid, "reason_required")
		got, err := svc.GetSecret(ctx, alice, "prod/db/password", 0, "INC-42 restore")
		if err != nil || string(got.Value.Bytes()) != "correct horse" || got.Version != 2 {
			t.Fatalf("get = %+v %q, %v", got, got.Value.Bytes(), err)
		}
		if v1, _ := svc.GetSecret(ctx, alice, "prod/db/password", 1, "compare"); string(v1.Value.Bytes()) != "hunter2" {
			t.Errorf("version 1 = %q", v1.Value.Bytes())
		}
		_, err = svc.GetSecret(ctx, alice, "prod/db/password", 5, "r")
		wantUserErr(t, "missing version", err, usererr.NotFound, "unknown_secret_version")
		_, err = svc.GetSecret(ctx, alice, "prod/../etc", 0, "r")
		wantUserErr(t, "bad path", err, usererr.Invalid, "invalid_secret_path")
		reads := auditRows(t, db, "secret.read")
		if len(reads) != 2 || reads[0].Personal["reason"] != "INC-42 restore" || reads[0].Subject != "secret:prod/db/password" {
			t.Errorf("read audit = %+v", reads)
		}
		if _, ok := reads[0].Data["reason"]; ok {
			t.Error("the reason is in public audit data; it belongs in Personal")
		}
		list, err := svc.ListSecrets(ctx, "prod/")
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, s := range list {
			paths = append(paths, s.Path)
		}
		if diff := cmp.Diff([]string{"prod/api/token", "prod/db/password"}, paths); diff != "" {
			t.Errorf("list prod/ (-want +got):\n%s", diff)
		}
		_, vs, err := svc.SecretVersions(ctx, "prod/db/password")
		if err != nil || len(vs) != 2 || vs[1].Version != 2 || vs[0].CreatedBy != "person:p-alice" {
			t.Errorf("versions = %+v, %v", vs, err)
		}
		// A stored value cannot be moved to another path.
		var ct string
		db.QueryRow(ctx, `SELECT ciphertext FROM kms_secret_versions WHERE path = 'prod/api/token'`).Scan(&ct)
		if _, err := db.Exec(ctx, `UPDATE kms_secret_versions SET ciphertext = $1 WHERE path = 'staging/api/token'`, ct); err != nil {
			t.Fatal(err)
		}
		_, err = svc.GetSecret(ctx, alice, "staging/api/token", 0, "r")
		wantUserErr(t, "moved ciphertext", err, usererr.Invalid, "decrypt_failed")
		if r, err := svc.DeleteSecret(ctx, alice, "prod/db/password"); err != nil || r != nil {
			t.Fatalf("delete = %v, %v", r, err)
		}
		_, err = svc.GetSecret(ctx, alice, "prod/db/password", 0, "r")
		wantUserErr(t, "get deleted", err, usererr.NotFound, "unknown_secret")
		var n int
		db.QueryRow(ctx, `SELECT COUNT(*) FROM kms_secret_versions WHERE path = 'prod/db/password'`).Scan(&n)
		if n != 0 {
			t.Errorf("%d stored versions remain after delete", n)
		}
		if r, err := svc.PutSecret(ctx, alice, "prod/db/password", []byte("again"), kms.PutOptions{}); err != nil || r.Secret.CurrentVersion != 3 {
			t.Errorf("put after delete = %+v, %v; want version 3", r, err)
		}
		for _, tt := range []struct {
			name string
			val  []byte
			kind usererr.Kind
			code string
		}{
			{"empty", nil, usererr.Invalid, "empty_secret"},
			{"oversized", make([]byte, kms.MaxPlaintext+1), usererr.TooLarge, "secret_too_large"},
		} {
			_, err := svc.PutSecret(ctx, alice, "prod/x", tt.val, kms.PutOptions{})
			wantUserErr(t, "put "+tt.name, err, tt.kind, tt.code)
		}
	})

	t.Run("dual control: critical secrets", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "secrets", kms.KeyOptions{})
		yes, no := true, false
		if r, err := svc.PutSecret(ctx, alice, "prod/root", []byte("first"), kms.PutOptions{Critical: &yes}); err != nil || r.Pending != nil || !r.Secret.Critical {
			t.Fatalf("creating a critical secret = %+v, %v; want immediate", r, err)
		}
		r, err := svc.PutSecret(ctx, alice, "prod/root", []byte("second"), kms.PutOptions{})
		if err != nil || r.Pending == nil {
			t.Fatalf("changing a critical secret = %+v, %v; want a pending request", r, err)
		}
		if bytes.Contains(r.Pending.Content, []byte("second")) {
			t.Error("the request content holds the new value")
		}
		if g, _ := svc.GetSecret(ctx, bob, "prod/root", 0, "check"); string(g.Value.Bytes()) != "first" {
			t.Errorf("value before approval = %q, want first", g.Value.Bytes())
		}
		_, err = svc.PutSecret(ctx, bot, "prod/root", []byte("x"), kms.PutOptions{})
		wantUserErr(t, "agent changes a critical secret", err, usererr.Forbidden, "person_required")
		_, err = svc.Approve(ctx, alice, r.Pending.ID, r.Pending.Hash)
		wantUserErr(t, "self approval", err, usererr.Forbidden, "self_approval")
		if _, err := svc.Approve(ctx, bob, r.Pending.ID, r.Pending.Hash); err != nil {
			t.Fatal(err)
		}
		if g, _ := svc.GetSecret(ctx, bob, "prod/root", 0, "check"); string(g.Value.Bytes()) != "second" || g.Version != 2 {
			t.Errorf("value after approval = %q v%d, want second v2", g.Value.Bytes(), g.Version)
		}
		// Two competing requests: the second drifts once the first lands.
		a, _ := svc.PutSecret(ctx, alice, "prod/root", []byte("third"), kms.PutOptions{})
		b, _ := svc.PutSecret(ctx, bob, "prod/root", []byte("fourth"), kms.PutOptions{})
		if _, err := svc.Approve(ctx, bob, a.Pending.ID, a.Pending.Hash); err != nil {
			t.Fatal(err)
		}
		_, err = svc.Approve(ctx, alice, b.Pending.ID, b.Pending.Hash)
		wantUserErr(t, "drifted put", err, usererr.Conflict, "request_drifted")
		// Clearing the mark is a change; so is deleting.
		un, _ := svc.PutSecret(ctx, alice, "prod/root", []byte("fifth"), kms.PutOptions{Critical: &no})
		if un.Pending == nil {
			t.Fatal("un-marking a critical secret did not need approval")
		}
		del, err := svc.DeleteSecret(ctx, alice, "prod/root")
		if err != nil || del == nil {
			t.Fatalf("delete critical = %v, %v; want a request", del, err)
		}
		if _, err := svc.Approve(ctx, bob, del.ID, del.Hash); err != nil {
			t.Fatal(err)
		}
		_, err = svc.GetSecret(ctx, alice, "prod/root", 0, "r")
		wantUserErr(t, "get deleted critical", err, usererr.NotFound, "unknown_secret")
		_, err = svc.Approve(ctx, bob, un.Pending.ID, un.Pending.Hash)
		wantUserErr(t, "approve put after delete", err, usererr.Conflict, "request_drifted")
		reqs, _ := svc.ListRequests(ctx, kms.StatePending)
		if len(reqs) != 2 {
			t.Errorf("pending requests = %d, want 2 (the drifted ones)", len(reqs))
		}
	})

	t.Run("requests expire", func(t *testing.T) {
		db := open(t)
		svc, clock := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		req, _ := svc.DisableKey(ctx, alice, "app")
		clock.Advance(kms.DefaultRequestTTL)
		_, err := svc.Approve(ctx, bob, req.ID, req.Hash)
		wantUserErr(t, "approve expired", err, usererr.Conflict, "request_expired")
		if n, err := svc.RunDue(ctx); err != nil || n != 1 {
			t.Errorf("RunDue = %d, %v; want the request expired", n, err)
		}
		if got, _ := svc.GetRequest(ctx, req.ID); got.State != kms.StateExpired {
			t.Errorf("state = %s, want expired", got.State)
		}
	})

	t.Run("root key check refuses another root key", func(t *testing.T) {
		db := open(t)
		NewKMS(t, db, nil)
		other, _ := kms.NewRootKey(nil)
		svc, err := kms.New(kms.Config{Store: db.KMSStore(), Root: other})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		if err := svc.CheckRootKey(ctx); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Errorf("CheckRootKey with another root key = %v", err)
		}
	})

	t.Run("concurrent calls share audit transactions and count exactly", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil)
		mustKey(t, svc, "app", kms.KeyOptions{})
		const n = 64
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := svc.Encrypt(ctx, alice, "app", []byte("m"), nil)
				if err == nil {
					_, err = svc.Decrypt(ctx, alice, r.Ciphertext, "", nil)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ki, _ := svc.GetKey(ctx, "app")
		if v := ki.Versions[0]; v.Encryptions != n || v.Decryptions != n {
			t.Errorf("counts = %d encryptions, %d decryptions; want %d each", v.Encryptions, v.Decryptions, n)
		}
		if got := len(auditRows(t, db, "kms.encrypt")) + len(auditRows(t, db, "kms.decrypt")); got != 2*n {
			t.Errorf("audit entries = %d, want %d", got, 2*n)
		}
	})

	t.Run("a disable committed elsewhere stops cached keys at commit", func(t *testing.T) {
		db := open(t)
		svc, _ := NewKMS(t, db, nil) // CacheTTL of an hour: the cache is stale
		mustKey(t, svc, "app", kms.KeyOptions{})
		ct := mustEncrypt(t, svc, "app", "v", nil).Ciphertext
		other, _ := NewKMS(t, db, nil) // another server
		req, _ := other.DisableKey(ctx, alice, "app")
		if _, err := other.Approve(ctx, bob, req.ID, req.Hash); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Decrypt(ctx, alice, ct, "", nil)
		wantUserErr(t, "decrypt on the stale server", err, usererr.Conflict, "key_disabled")
		_, err = svc.Encrypt(ctx, alice, "app", []byte("x"), nil)
		wantUserErr(t, "encrypt on the stale server", err, usererr.Conflict, "key_disabled")
	})

	_ = errors.New
})

// Several servers share one database: these behaviours must hold when two
// Services race on the same rows (PostgreSQL runs them truly in parallel).
var _ = Register("kms concurrency", func(t *testing.T, open Opener) {
	ctx := context.Background()

	t.Run("racing rotations make consecutive versions", func(t *testing.T) {
		db := open(t)
		a, _ := NewKMS(t, db, nil)
		b, _ := NewKMS(t, db, nil)
		mustKey(t, a, "app", kms.KeyOptions{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, conflicts := 0, 0
		for i := 0; i < 8; i++ {
			svc := a
			if i%2 == 1 {
				svc = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.RotateKey(ctx, alice, "app")
				mu.Lock()
				defer mu.Unlock()
				if ue, isUE := usererr.As(err); isUE && ue.Code == "key_changed" {
					conflicts++
				} else if err != nil {
					t.Errorf("rotate: %v", err)
				} else {
					ok++
				}
			}()
		}
		wg.Wait()
		ki, err := a.GetKey(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if ki.CurrentVersion != 1+ok || len(ki.Versions) != 1+ok {
			t.Errorf("after %d successful rotations (%d conflicts): current %d, %d versions", ok, conflicts, ki.CurrentVersion, len(ki.Versions))
		}
		if n := len(auditRows(t, db, "kms.key.rotated")); n != ok {
			t.Errorf("rotation audit entries = %d, want %d", n, ok)
		}
	})

	t.Run("racing approvals carry a request out once", func(t *testing.T) {
		db := open(t)
		a, _ := NewKMS(t, db, nil)
		b, _ := NewKMS(t, db, nil)
		mustKey(t, a, "secrets", kms.KeyOptions{})
		yes := true
		a.PutSecret(ctx, alice, "prod/root", []byte("v1"), kms.PutOptions{Critical: &yes})
		r, err := a.PutSecret(ctx, alice, "prod/root", []byte("v2"), kms.PutOptions{})
		if err != nil || r.Pending == nil {
			t.Fatalf("put = %+v, %v", r, err)
		}
		carol := kms.Caller{Kind: "person", ID: "p-carol"}
		errs := make(chan error, 2)
		go func() { _, err := a.Approve(ctx, bob, r.Pending.ID, r.Pending.Hash); errs <- err }()
		go func() { _, err := b.Approve(ctx, carol, r.Pending.ID, r.Pending.Hash); errs <- err }()
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) {
			t.Fatalf("approvals = %v, %v; want exactly one to succeed", e1, e2)
		}
		loser := e1
		if loser == nil {
			loser = e2
		}
		wantUserErr(t, "losing approval", loser, usererr.Conflict, "request_not_pending")
		_, vs, _ := a.SecretVersions(ctx, "prod/root")
		if len(vs) != 2 {
			t.Errorf("versions = %d, want 2", len(vs))
		}
	})

	t.Run("racing puts of one secret never fail with a server error", func(t *testing.T) {
		db := open(t)
		a, _ := NewKMS(t, db, nil)
		b, _ := NewKMS(t, db, nil)
		mustKey(t, a, "secrets", kms.KeyOptions{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		stored := 0
		for i := 0; i < 8; i++ {
			svc := a
			if i%2 == 1 {
				svc = b
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.PutSecret(ctx, alice, "prod/racy", []byte("v"), kms.PutOptions{})
				mu.Lock()
				defer mu.Unlock()
				if ue, isUE := usererr.As(err); isUE && ue.Code == "secret_changed" {
					return
				}
				if err != nil {
					t.Errorf("put: %v", err)
					return
				}
				stored++
			}()
		}
		wg.Wait()
		_, vs, err := a.SecretVersions(ctx, "prod/racy")
		if err != nil || len(vs) != stored {
			t.Errorf("%d versions stored, %d puts succeeded (%v)", len(vs), stored, err)
		}
	})
})
