package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// logAuthn maps a token "<role>-<n>" to a person with that role.
type logAuthn struct{}

func (logAuthn) Authenticate(_ context.Context, token, _ string) (wire.Principal, error) {
	role, _, ok := strings.Cut(token, "-")
	if !ok {
		return wire.Principal{}, errors.New("bad session")
	}
	return wire.Principal{Kind: "person", ID: "p-" + token, Name: token, Roles: []string{role}, MFAAt: time.Now()}, nil
}

type logProofs struct{}

func (logProofs) Verify(_, _, _, _ string, _ time.Time) (string, error) { return "k", nil }

type logSealer struct{}

func (logSealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append([]byte(nil), aad...), p...), nil
}
func (logSealer) Open(s, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(s, aad) {
		return nil, errors.New("wrong aad")
	}
	return s[len(aad):], nil
}

func logServer(t *testing.T) (*api.Server, *audit.Log, *store.DB) {
	t.Helper()
	db := storetest.OpenSQLite(t)
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: logSealer{}, Origin: "interlock.test/log"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 300; i++ {
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: "person:p1", Subject: fmt.Sprintf("thing:%d", i), Time: time.Unix(int64(i), 0),
			Data: map[string]any{"i": i}, Personal: map[string]string{"ip": fmt.Sprintf("203.0.113.%d", i%200)}}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Authenticator: logAuthn{}, Proofs: logProofs{}, Authorizer: api.PolicyAuthorizer(eng)}, api.LogRoutes(l))
	if err != nil {
		t.Fatal(err)
	}
	return s, l, db
}

func logDo(t *testing.T, s *api.Server, token, method, path string, in any) (int, []byte, wire.Problem) {
	t.Helper()
	var body io.Reader = http.NoBody
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, "https://api.test"+path, body)
	if token != "" {
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", "proof")
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var p wire.Problem
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s %s: problem body: %v (%s)", method, path, err, rec.Body)
		}
	}
	return rec.Code, rec.Body.Bytes(), p
}

func TestLogRoutesServeVerifiableProofs(t *testing.T) {
	s, l, _ := logServer(t)
	const viewer = "viewer-1"
	code, body, p := logDo(t, s, viewer, "GET", "/v1/log", nil)
	if code != 200 {
		t.Fatalf("GET /v1/log: %d %s", code, p.Detail)
	}
	var info wire.LogInfo
	json.Unmarshal(body, &info)
	v, err := tlog.NewVerifier(info.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ = logDo(t, s, viewer, "GET", "/v1/log/checkpoint", nil)
	cp, _, err := tlog.OpenCheckpoint(body, v)
	if code != 200 || err != nil || cp.Size != 300 {
		t.Fatalf("checkpoint: %d, %v, size %d", code, err, cp.Size)
	}
	code, body, p = logDo(t, s, viewer, "GET", "/v1/log/entries?start=10&end=13", nil)
	if code != 200 {
		t.Fatalf("entries: %d %s", code, p.Detail)
	}
	var es wire.LogEntries
	json.Unmarshal(body, &es)
	if len(es.Entries) != 3 || es.Entries[0].Personal != nil {
		t.Fatalf("entries = %+v; want 3 without personal data", es.Entries)
	}
	for _, e := range es.Entries {
		code, body, _ := logDo(t, s, viewer, "GET", fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", e.Index, cp.Size), nil)
		var pr wire.LogProof
		json.Unmarshal(body, &pr)
		if err := tlog.VerifyInclusion(e.Index, cp.Size, tlog.LeafHash(e.Leaf), pr.Hashes, cp.Hash); code != 200 || err != nil {
			t.Errorf("inclusion of %d: %d %v", e.Index, code, err)
		}
	}
	code, body, _ = logDo(t, s, viewer, "GET", "/v1/log/tile/0/001.p/44", nil)
	if code != 200 || len(body) != 44*32 {
		t.Errorf("partial tile: %d, %d bytes", code, len(body))
	}
	code, body, _ = logDo(t, s, viewer, "GET", "/v1/log/tile/entries/000", nil)
	if code != 200 || len(body) < 256*100 {
		t.Errorf("entry bundle: %d, %d bytes", code, len(body))
	}
	code, body, _ = logDo(t, s, viewer, "GET", "/v1/log/export?from=5&to=9", nil)
	if _, err := audit.VerifyBundle(body, info.PublicKey); code != 200 || err != nil {
		t.Errorf("export: %d, verify: %v", code, err)
	}

	// Personal data needs log.redact; redaction needs log.redact.
	if code, _, _ := logDo(t, s, viewer, "GET", "/v1/log/entries?start=0&end=1&personal=true", nil); code != 403 {
		t.Errorf("viewer asking for personal data: %d, want 403", code)
	}
	if code, _, _ := logDo(t, s, viewer, "POST", "/v1/log/entries/3/redact", wire.LogRedactRequest{Reason: "gdpr"}); code != 403 {
		t.Errorf("viewer redacting: %d, want 403", code)
	}
	code, body, _ = logDo(t, s, "admin-1", "GET", "/v1/log/entries?start=3&end=4&personal=true", nil)
	json.Unmarshal(body, &es)
	if code != 200 || es.Entries[0].Personal["ip"] != "203.0.113.3" {
		t.Errorf("admin personal data: %d %+v", code, es.Entries)
	}
	if code, _, p := logDo(t, s, "admin-1", "POST", "/v1/log/entries/3/redact", wire.LogRedactRequest{Reason: "gdpr request 7"}); code != 200 {
		t.Fatalf("admin redacting: %d %s", code, p.Detail)
	}
	l.Sync(context.Background())
	code, body, _ = logDo(t, s, "admin-1", "GET", "/v1/log/entries?start=3&end=4&personal=true", nil)
	es = wire.LogEntries{}
	json.Unmarshal(body, &es)
	if code != 200 || es.Entries[0].Personal != nil {
		t.Errorf("after redaction: %d %+v", code, es.Entries)
	}
}

func TestLogRoutesRejectBadInput(t *testing.T) {
	s, _, _ := logServer(t)
	for _, tt := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"unauthenticated", "GET", "/v1/log/checkpoint", nil, 401},
		{"negative start", "GET", "/v1/log/entries?start=-1&end=3", nil, 400},
		{"missing end", "GET", "/v1/log/entries?start=1", nil, 400},
		{"huge range", "GET", "/v1/log/entries?start=0&end=99999999", nil, 400},
		{"start beyond the log", "GET", "/v1/log/entries?start=300&end=301", nil, 404},
		{"not a number", "GET", "/v1/log/proof/inclusion?index=abc&size=3", nil, 400},
		{"index beyond size", "GET", "/v1/log/proof/inclusion?index=7&size=7", nil, 400},
		{"size beyond the tree", "GET", "/v1/log/proof/inclusion?index=0&size=301", nil, 400},
		{"overflowing size", "GET", "/v1/log/proof/inclusion?index=0&size=18446744073709551616", nil, 400},
		{"consistency backwards", "GET", "/v1/log/proof/consistency?from=9&to=3", nil, 400},
		{"consistency beyond", "GET", "/v1/log/proof/consistency?from=3&to=900", nil, 400},
		{"bad tile path", "GET", "/v1/log/tile/0/1", nil, 400},
		{"tile not there yet", "GET", "/v1/log/tile/0/001", nil, 404},
		{"wide partial tile", "GET", "/v1/log/tile/0/001.p/45", nil, 404},
		{"export beyond", "GET", "/v1/log/export?from=0&to=301", nil, 400},
		{"export huge", "GET", "/v1/log/export?from=0&to=9999999999", nil, 400},
		{"redact bad index", "POST", "/v1/log/entries/x/redact", wire.LogRedactRequest{Reason: "r"}, 400},
		{"redact without reason", "POST", "/v1/log/entries/1/redact", wire.LogRedactRequest{}, 400},
		{"redact missing entry", "POST", "/v1/log/entries/9999/redact", wire.LogRedactRequest{Reason: "r"}, 404},
		{"redact unknown field", "POST", "/v1/log/entries/1/redact", map[string]string{"why": "r"}, 400},
		{"cosign garbage", "POST", "/v1/log/cosignatures", wire.LogCosignRequest{Checkpoint: "junk"}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token := "admin-1"
			if tt.name == "unauthenticated" {
				token = ""
			}
			code, _, p := logDo(t, s, token, tt.method, tt.path, tt.body)
			if code != tt.want {
				t.Errorf("%s %s = %d (%s: %s), want %d", tt.method, tt.path, code, p.Code, p.Detail, tt.want)
			}
			if code >= 400 && p.Detail == "" {
				t.Errorf("problem without a detail sentence")
			}
		})
	}
}
