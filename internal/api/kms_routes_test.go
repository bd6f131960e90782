package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// kmsAuthn maps a session token "<role>-<n>" to person p-<role>-<n> with
// that role. Authentication is the identity package's business; these
// tests exercise the KMS routes, real Cedar policy and the real store.
type kmsAuthn struct{}

func (kmsAuthn) Authenticate(_ context.Context, token, jkt string) (wire.Principal, error) {
	role, _, ok := strings.Cut(token, "-")
	if !ok {
		return wire.Principal{}, errors.New("bad session")
	}
	return wire.Principal{Kind: "person", ID: "p-" + token, Name: token, Roles: []string{role}, MFAAt: time.Now()}, nil
}

type kmsProofs struct{}

func (kmsProofs) Verify(proof, method, url, token string, now time.Time) (string, error) {
	return "k", nil
}

func kmsServer(t testing.TB) (*api.Server, *kms.Service, *store.DB) {
	t.Helper()
	db := storetest.OpenSQLite(t)
	svc, _ := storetest.NewKMS(t, db, nil)
	eng, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Authenticator: kmsAuthn{}, Proofs: kmsProofs{}, Authorizer: api.PolicyAuthorizer(eng)}, api.KMSRoutes(svc))
	if err != nil {
		t.Fatal(err)
	}
	return s, svc, db
}

func kmsDo(t *testing.T, s *api.Server, token, method, path string, in, out any) (int, wire.Problem) {
	t.Helper()
	var body io.Reader = http.NoBody
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, "https://api.test"+path, body)
	req.Header.Set("Authorization", "DPoP "+token)
	req.Header.Set("DPoP", "proof")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var p wire.Problem
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s %s: problem body: %v (%s)", method, path, err, rec.Body)
		}
	} else if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: answer: %v (%s)", method, path, err, rec.Body)
		}
	}
	return rec.Code, p
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestKMSRoutes(t *testing.T) {
	s, _, _ := kmsServer(t)
	const admin, admin2, viewer = "admin-1", "admin-2", "viewer-1"
	must := func(code int, p wire.Problem, want int) {
		t.Helper()
		if code != want {
			t.Fatalf("status %d (%s: %s), want %d", code, p.Code, p.Detail, want)
		}
	}
	var key wire.KMSKey
	code, p := kmsDo(t, s, admin, "POST", "/v1/kms/keys", wire.KMSKeyCreateRequest{Name: "app"}, &key)
	must(code, p, 201)
	if key.Name != "app" || key.CurrentVersion != 1 || key.RotationPeriodS != 90*86400 {
		t.Errorf("created key = %+v", key)
	}
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys", wire.KMSKeyCreateRequest{Name: "secrets"}, nil)
	must(code, p, 201)

	ctx := map[string]string{"tenant": "acme"}
	var enc wire.KMSEncryptResponse
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/encrypt", wire.KMSEncryptRequest{Plaintext: b64("hello"), Context: ctx}, &enc)
	must(code, p, 200)
	var dec wire.KMSDecryptResponse
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/decrypt", wire.KMSDecryptRequest{Ciphertext: enc.Ciphertext, Context: ctx}, &dec)
	must(code, p, 200)
	if dec.Plaintext != b64("hello") {
		t.Errorf("decrypt = %q", dec.Plaintext)
	}
	// A batch: ciphertexts in request order, each as good as a single call's.
	var eb wire.KMSEncryptBatchResponse
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/encrypt-batch", wire.KMSEncryptBatchRequest{Items: []wire.KMSEncryptRequest{
		{Plaintext: b64("first"), Context: ctx}, {Plaintext: b64("second")}}}, &eb)
	must(code, p, 200)
	if eb.Key != "app" || len(eb.Items) != 2 {
		t.Fatalf("encrypt-batch = %+v", eb)
	}
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/decrypt", wire.KMSDecryptRequest{Ciphertext: eb.Items[0].Ciphertext, Context: ctx}, &dec)
	must(code, p, 200)
	if dec.Plaintext != b64("first") {
		t.Errorf("items[0] decrypts to %q", dec.Plaintext)
	}
	var db wire.KMSDecryptBatchResponse
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/decrypt-batch", wire.KMSDecryptBatchRequest{Items: []wire.KMSDecryptRequest{
		{Ciphertext: eb.Items[1].Ciphertext}, {Ciphertext: enc.Ciphertext, Context: ctx}}}, &db)
	must(code, p, 200)
	if len(db.Items) != 2 || db.Items[0].Plaintext != b64("second") || db.Items[1].Plaintext != b64("hello") {
		t.Errorf("decrypt-batch = %+v", db)
	}
	var dk wire.KMSDataKeyResponse
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/datakey", wire.KMSDataKeyRequest{}, &dk)
	must(code, p, 200)
	if raw, _ := base64.StdEncoding.DecodeString(dk.Plaintext); len(raw) != 32 {
		t.Errorf("data key is %d bytes", len(raw))
	}
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/rotate", nil, &key)
	must(code, p, 200)
	var rw wire.KMSEncryptResponse
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/keys/app/rewrap", wire.KMSRewrapRequest{Ciphertext: enc.Ciphertext, Context: ctx}, &rw)
	must(code, p, 200)
	if rw.Version != 2 {
		t.Errorf("rewrap version = %d, want 2", rw.Version)
	}

	// Secrets.
	var put wire.SecretPutResponse
	yes := true
	code, p = kmsDo(t, s, admin, "PUT", "/v1/secrets/value/prod/db/password", wire.SecretPutRequest{Value: b64("hunter2"), Critical: &yes}, &put)
	must(code, p, 200)
	var sv wire.SecretValue
	code, p = kmsDo(t, s, admin, "POST", "/v1/secrets/read/prod/db/password", wire.SecretReadRequest{Reason: "INC-1"}, &sv)
	must(code, p, 200)
	if sv.Value != b64("hunter2") || sv.Path != "prod/db/password" {
		t.Errorf("read = %+v", sv)
	}
	var list wire.SecretList
	code, p = kmsDo(t, s, admin, "GET", "/v1/secrets?prefix=prod/", nil, &list)
	must(code, p, 200)
	if len(list.Secrets) != 1 {
		t.Errorf("list = %+v", list)
	}
	var vers wire.SecretVersions
	code, p = kmsDo(t, s, admin, "GET", "/v1/secrets/versions/prod/db/password", nil, &vers)
	must(code, p, 200)
	if len(vers.Versions) != 1 {
		t.Errorf("versions = %+v", vers)
	}
	// Critical: a change is pending until a second admin approves it.
	code, p = kmsDo(t, s, admin, "PUT", "/v1/secrets/value/prod/db/password", wire.SecretPutRequest{Value: b64("new")}, &put)
	must(code, p, 202)
	if put.Pending == nil || put.Pending.State != "pending" {
		t.Fatalf("critical put = %+v", put)
	}
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/requests/"+put.Pending.ID+"/approve", wire.KMSApproveRequest{Hash: put.Pending.Hash}, nil)
	if code != 403 || p.Code != "self_approval" {
		t.Errorf("self approval = %d %s", code, p.Code)
	}
	code, p = kmsDo(t, s, viewer, "POST", "/v1/kms/requests/"+put.Pending.ID+"/approve", wire.KMSApproveRequest{Hash: put.Pending.Hash}, nil)
	if code != 403 || p.Code != "forbidden" {
		t.Errorf("approval by a viewer = %d %s, want policy's 403", code, p.Code)
	}
	var done wire.KMSRequest
	code, p = kmsDo(t, s, admin2, "POST", "/v1/kms/requests/"+put.Pending.ID+"/approve", wire.KMSApproveRequest{Hash: put.Pending.Hash}, &done)
	must(code, p, 200)
	if done.State != "done" || done.ApprovedBy != "p-admin-2" {
		t.Errorf("approved = %+v", done)
	}
	code, p = kmsDo(t, s, admin, "POST", "/v1/secrets/read/prod/db/password", wire.SecretReadRequest{Reason: "check"}, &sv)
	must(code, p, 200)
	if sv.Value != b64("new") {
		t.Errorf("value after approval = %q", sv.Value)
	}
	// Min version: raising is immediate, lowering pending.
	var ch wire.KMSChange
	code, p = kmsDo(t, s, admin, "PUT", "/v1/kms/keys/app/min-decryption-version", wire.KMSSetMinVersionRequest{Version: 2}, &ch)
	must(code, p, 200)
	code, p = kmsDo(t, s, admin, "PUT", "/v1/kms/keys/app/min-decryption-version", wire.KMSSetMinVersionRequest{Version: 1}, &ch)
	must(code, p, 202)
	var rl wire.KMSRequestList
	code, p = kmsDo(t, s, viewer, "GET", "/v1/kms/requests?state=pending", nil, &rl)
	must(code, p, 200)
	if len(rl.Requests) != 1 || rl.Requests[0].Action != "kms.key.set_min_version" {
		t.Errorf("pending = %+v", rl)
	}
	code, p = kmsDo(t, s, admin, "POST", "/v1/kms/requests/"+rl.Requests[0].ID+"/cancel", nil, nil)
	must(code, p, 200)

	for _, tt := range []struct {
		name, token, method, path string
		in                        any
		status                    int
		code                      string
	}{
		{"viewer cannot encrypt", viewer, "POST", "/v1/kms/keys/app/encrypt", wire.KMSEncryptRequest{Plaintext: b64("x")}, 403, "forbidden"},
		{"unknown key", admin, "POST", "/v1/kms/keys/nokey/encrypt", wire.KMSEncryptRequest{Plaintext: b64("x")}, 404, "unknown_key"},
		{"invalid base64", admin, "POST", "/v1/kms/keys/app/encrypt", wire.KMSEncryptRequest{Plaintext: "!!"}, 400, "invalid_base64"},
		{"viewer cannot encrypt a batch", viewer, "POST", "/v1/kms/keys/app/encrypt-batch", wire.KMSEncryptBatchRequest{Items: []wire.KMSEncryptRequest{{Plaintext: b64("x")}}}, 403, "forbidden"},
		{"viewer cannot decrypt a batch", viewer, "POST", "/v1/kms/keys/app/decrypt-batch", wire.KMSDecryptBatchRequest{Items: []wire.KMSDecryptRequest{{Ciphertext: rw.Ciphertext, Context: ctx}}}, 403, "forbidden"},
		{"empty batch", admin, "POST", "/v1/kms/keys/app/encrypt-batch", wire.KMSEncryptBatchRequest{}, 400, "empty_batch"},
		{"invalid base64 in a batch", admin, "POST", "/v1/kms/keys/app/encrypt-batch", wire.KMSEncryptBatchRequest{Items: []wire.KMSEncryptRequest{{Plaintext: b64("x")}, {Plaintext: "!!"}}}, 400, "invalid_base64"},
		{"batch item of another key", admin, "POST", "/v1/kms/keys/secrets/decrypt-batch", wire.KMSDecryptBatchRequest{Items: []wire.KMSDecryptRequest{{Ciphertext: rw.Ciphertext, Context: ctx}}}, 400, "key_mismatch"},
		{"batch item with the wrong context", admin, "POST", "/v1/kms/keys/app/decrypt-batch", wire.KMSDecryptBatchRequest{Items: []wire.KMSDecryptRequest{{Ciphertext: rw.Ciphertext}}}, 400, "decrypt_failed"},
		{"batch on an unknown key", admin, "POST", "/v1/kms/keys/nokey/encrypt-batch", wire.KMSEncryptBatchRequest{Items: []wire.KMSEncryptRequest{{Plaintext: b64("x")}}}, 404, "unknown_key"},
		{"empty plaintext", admin, "POST", "/v1/kms/keys/app/encrypt", wire.KMSEncryptRequest{Plaintext: ""}, 400, "empty_plaintext"},
		{"oversized plaintext", admin, "POST", "/v1/kms/keys/app/encrypt", wire.KMSEncryptRequest{Plaintext: b64(strings.Repeat("x", kms.MaxPlaintext+1))}, 413, "plaintext_too_large"},
		{"ciphertext of another key", admin, "POST", "/v1/kms/keys/secrets/decrypt", wire.KMSDecryptRequest{Ciphertext: rw.Ciphertext, Context: ctx}, 400, "key_mismatch"},
		{"rewrap under another key", admin, "POST", "/v1/kms/keys/secrets/rewrap", wire.KMSRewrapRequest{Ciphertext: rw.Ciphertext, Context: ctx}, 400, "key_mismatch"},
		{"wrong context", admin, "POST", "/v1/kms/keys/app/decrypt", wire.KMSDecryptRequest{Ciphertext: rw.Ciphertext}, 400, "decrypt_failed"},
		{"below minimum", admin, "POST", "/v1/kms/keys/app/decrypt", wire.KMSDecryptRequest{Ciphertext: enc.Ciphertext, Context: ctx}, 403, "version_below_minimum"},
		{"garbage ciphertext", admin, "POST", "/v1/kms/keys/app/decrypt", wire.KMSDecryptRequest{Ciphertext: "ilk:v1:app:2:%%%"}, 400, "invalid_ciphertext"},
		{"read without reason", admin, "POST", "/v1/secrets/read/prod/db/password", wire.SecretReadRequest{}, 400, "reason_required"},
		{"unknown secret", admin, "POST", "/v1/secrets/read/prod/nothing", wire.SecretReadRequest{Reason: "r"}, 404, "unknown_secret"},
		{"bad version", admin, "POST", "/v1/kms/keys/app/versions/zero/destroy", nil, 400, "invalid_key_version"},
		{"destroy current", admin, "POST", "/v1/kms/keys/app/versions/2/destroy", nil, 409, "destroy_current_version"},
		{"duplicate key", admin, "POST", "/v1/kms/keys", wire.KMSKeyCreateRequest{Name: "app"}, 409, "key_exists"},
		{"bad key name", admin, "POST", "/v1/kms/keys", wire.KMSKeyCreateRequest{Name: "Bad Name"}, 400, "invalid_key_name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, p := kmsDo(t, s, tt.token, tt.method, tt.path, tt.in, nil)
			if code != tt.status || p.Code != tt.code {
				t.Errorf("got %d %q (%s), want %d %q", code, p.Code, p.Detail, tt.status, tt.code)
			}
		})
	}
}
