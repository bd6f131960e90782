package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// logHandlerDoer sends the CLI's calls straight to an API handler.
type logHandlerDoer struct{ h http.Handler }

func (d logHandlerDoer) serve(method, path string, in any) *httptest.ResponseRecorder {
	var body io.Reader = http.NoBody
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, "https://api.test"+path, body)
	req.Header.Set("Authorization", "DPoP admin-1")
	req.Header.Set("DPoP", "proof")
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, req)
	return rec
}

func (d logHandlerDoer) Do(_ context.Context, method, path string, in, out any) error {
	rec := d.serve(method, path, in)
	if rec.Code >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rec.Body.Bytes(), out)
}

func (d logHandlerDoer) Stream(_ context.Context, method, path string, in any) (io.ReadCloser, error) {
	rec := d.serve(method, path, in)
	if rec.Code >= 300 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	return io.NopCloser(rec.Body), nil
}

type logAllowAll struct{}

func (logAllowAll) Authenticate(context.Context, string, string) (wire.Principal, error) {
	return wire.Principal{Kind: "person", ID: "p-admin", Name: "admin"}, nil
}
func (logAllowAll) Verify(_, _, _, _ string, _ time.Time) (string, error) { return "k", nil }
func (logAllowAll) Authorize(context.Context, wire.Principal, string, api.Resource, map[string]any) (bool, []string, error) {
	return true, []string{"test"}, nil
}

type logPrefixSealer struct{}

func (logPrefixSealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append([]byte(nil), aad...), p...), nil
}
func (logPrefixSealer) Open(s, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(s, aad) {
		return nil, errors.New("wrong aad")
	}
	return s[len(aad):], nil
}

type logFixture struct {
	t   *testing.T
	db  *store.DB
	log *audit.Log
	n   int
}

func (f *logFixture) add(n int) {
	f.t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: "person:p1", Subject: fmt.Sprintf("thing:%d", f.n), Time: time.Unix(int64(f.n), 0),
			Data: map[string]any{"i": f.n}}
		f.n++
		if err := f.db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := f.log.Sync(ctx); err != nil {
		f.t.Fatal(err)
	}
}

func newLogFixture(t *testing.T) *logFixture {
	db := storetest.OpenSQLite(t)
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: logPrefixSealer{}, Origin: "interlock.test/log"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Authenticator: logAllowAll{}, Proofs: logAllowAll{}, Authorizer: logAllowAll{}}, api.LogRoutes(l))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("INTERLOCK_CONFIG_DIR", dir)
	p := &profile{dir: filepath.Join(dir, "profiles", "default"), Server: "https://api.test"}
	if err := p.save(); err != nil {
		t.Fatal(err)
	}
	old := logClient
	logClient = func(e *env) (logDoer, *profile, error) {
		p, err := e.loadProfile()
		return logHandlerDoer{s.Handler()}, p, err
	}
	t.Cleanup(func() { logClient = old })
	f := &logFixture{t: t, db: db, log: l}
	f.add(300)
	return f
}

// insiderWithKeyAndSignerState makes the fixture sign with a second
// signer over the same database that remembers nothing: an insider who
// holds the whole data dir (the root key, hence the log key, and the
// signer's state file), which the server's own signer cannot stop — the
// clients' and witnesses' memories must.
func (f *logFixture) insiderWithKeyAndSignerState() {
	l, err := audit.New(audit.Config{Store: f.db.AuditStore(), Sealer: logPrefixSealer{}, Origin: "interlock.test/log"})
	if err != nil {
		f.t.Fatal(err)
	}
	f.log = l
}

func runLogCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestLogVerifyPinsAndDetectsTampering(t *testing.T) {
	f := newLogFixture(t)
	code, out, errOut := runLogCLI("log", "verify")
	if code != 0 || !strings.Contains(out, "Log OK: 300 entries") || !strings.Contains(errOut, "Pinned the log key") {
		t.Fatalf("first verify = %d\n%s\n%s", code, out, errOut)
	}
	f.add(20)
	if code, out, errOut := runLogCLI("log", "verify", "--full"); code != 0 || !strings.Contains(out, "320 entries") {
		t.Fatalf("verify --full = %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runLogCLI("log", "show", "17"); code != 0 || !strings.Contains(out, "verified with") {
		t.Errorf("show 17 = %d\n%s", code, out)
	}
	if _, err := f.db.Exec(context.Background(), `UPDATE audit_entries SET subject = 'thing:x' WHERE idx = 123`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runLogCLI("log", "verify", "--full", "--json")
	var res logVerifyOutput
	json.Unmarshal([]byte(out), &res)
	if code != 1 || res.OK || res.Index == nil || *res.Index != 123 || !strings.Contains(errOut, "log entry 123") {
		t.Errorf("verify --full after tampering = %d, %+v\n%s", code, res, errOut)
	}
}

func TestLogVerifyDetectsRewrittenHistory(t *testing.T) {
	f := newLogFixture(t)
	if code, _, errOut := runLogCLI("log", "verify"); code != 0 {
		t.Fatalf("verify = %d %s", code, errOut)
	}
	// An insider wipes the log and rebuilds a shorter, different history
	// with the same key.
	for _, q := range []string{`DELETE FROM audit_entries`, `DELETE FROM audit_tiles`, `DELETE FROM audit_tree`, `DELETE FROM audit_actors`, `DELETE FROM audit_checkpoints`} {
		if _, err := f.db.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	f.insiderWithKeyAndSignerState()
	f.add(10)
	code, _, errOut := runLogCLI("log", "verify")
	if code != 1 || !strings.Contains(errOut, "rollback") {
		t.Errorf("verify after a rewrite = %d, %s; want exit 1 naming a rollback", code, errOut)
	}
}

func TestLogExportAndOfflineVerify(t *testing.T) {
	newLogFixture(t)
	file := filepath.Join(t.TempDir(), "bundle.json")
	code, out, errOut := runLogCLI("log", "export", "--from", "10", "--to", "20", "-o", file)
	if code != 0 {
		t.Fatalf("export = %d %s %s", code, out, errOut)
	}
	p, _ := (&env{}).loadProfile()
	code, out, errOut = runLogCLI("log", "verify", "--bundle", file, "--key", p.LogKey)
	if code != 0 || !strings.Contains(out, "Bundle OK: 10 entries") {
		t.Fatalf("verify --bundle = %d %s %s", code, out, errOut)
	}
	b, _ := os.ReadFile(file)
	var bundle map[string]any
	json.Unmarshal(b, &bundle)
	entries := bundle["entries"].([]any)
	e := entries[4].(map[string]any)
	e["inclusion_proof"] = entries[5].(map[string]any)["inclusion_proof"]
	b, _ = json.Marshal(bundle)
	os.WriteFile(file, b, 0o644)
	code, _, errOut = runLogCLI("log", "verify", "--bundle", file, "--key", p.LogKey)
	if code != 1 || !strings.Contains(errOut, "log entry 14") {
		t.Errorf("verify --bundle on a tampered bundle = %d, %s; want exit 1 naming entry 14", code, errOut)
	}
}

func TestLogWitnessCosignsAndRefusesAFork(t *testing.T) {
	f := newLogFixture(t)
	key := filepath.Join(t.TempDir(), "witness.key")
	if code, out, errOut := runLogCLI("log", "witness", "--key", key, "--init"); code != 0 || !strings.Contains(out, "interlock-witness+") {
		t.Fatalf("witness --init = %d %s %s", code, out, errOut)
	}
	code, out, errOut := runLogCLI("log", "witness", "--key", key)
	if code != 0 || !strings.Contains(out, "— interlock-witness ") {
		t.Fatalf("witness = %d %s %s", code, out, errOut)
	}
	f.add(5)
	if code, _, errOut := runLogCLI("log", "witness", "--key", key); code != 0 {
		t.Fatalf("witness after growth = %d %s", code, errOut)
	}
	// Same size, different history: a fork.
	for _, q := range []string{`DELETE FROM audit_entries`, `DELETE FROM audit_tiles`, `DELETE FROM audit_tree`, `DELETE FROM audit_actors`, `DELETE FROM audit_checkpoints`} {
		if _, err := f.db.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	f.n = 1000
	f.insiderWithKeyAndSignerState()
	f.add(305)
	code, _, errOut = runLogCLI("log", "witness", "--key", key)
	if code != 1 || !strings.Contains(errOut, "fork") {
		t.Errorf("witness on a fork = %d, %s; want exit 1 naming the fork", code, errOut)
	}
}

// TestLogTailShowsIntegratedEntriesAtOnce: entries integrated but not yet
// in a signed checkpoint are shown at once, marked unsigned; signed ones
// are shown verified.
func TestLogTailShowsIntegratedEntriesAtOnce(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		e := audit.Entry{Kind: "test.fresh", Version: 1, Actor: "person:p1", Subject: "fresh", Time: time.Unix(int64(f.n), 0)}
		f.n++
		if err := f.db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.log.Integrate(ctx); err != nil { // no checkpoint yet
		t.Fatal(err)
	}
	code, out, errOut := runLogCLI("log", "tail", "-n", "5")
	if code != 0 {
		t.Fatalf("tail = %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "VERIFIED") {
		t.Fatalf("tail printed %d lines, want a header and 5 entries:\n%s", len(lines), out)
	}
	for i, want := range []string{"ok", "ok", "unsigned", "unsigned", "unsigned"} {
		if !strings.HasSuffix(strings.TrimSpace(lines[i+1]), want) {
			t.Errorf("line %d = %q, want it marked %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[5], "test.fresh/v1") {
		t.Errorf("the newest entry is not shown: %q", lines[5])
	}
}

// TestLogTailAndShowVerifyBeforePrinting: an entry changed in the
// database is printed marked FAILED (tail) or UNVERIFIED before its
// content (show), with hex roots in a sentence, and both exit 1.
func TestLogTailAndShowVerifyBeforePrinting(t *testing.T) {
	f := newLogFixture(t)
	if _, err := f.db.Exec(context.Background(), `UPDATE audit_entries SET subject = 'thing:x' WHERE idx = 295`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runLogCLI("log", "tail", "-n", "10")
	if code != 1 || !strings.Contains(errOut, "FAILED: entry 295 is not the entry the signed checkpoint of 300 entries holds") {
		t.Errorf("tail over a tampered entry = %d\n%s\n%s; want exit 1 naming entry 295", code, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "295 ") != strings.Contains(line, "FAILED") {
			t.Errorf("tail line %q: only entry 295 should be marked FAILED", line)
		}
	}
	code, out, errOut = runLogCLI("log", "show", "295")
	if code != 1 || !strings.HasPrefix(out, "Entry 295 (UNVERIFIED") || !strings.HasPrefix(errOut, "FAILED: entry 295") {
		t.Errorf("show of a tampered entry = %d\nstdout: %s\nstderr: %s\nwant the failure first and the entry marked UNVERIFIED", code, out, errOut)
	}
	if !strings.Contains(errOut, "the proof leads to root ") || strings.Contains(errOut, "calculated root") || strings.Contains(errOut, "[") {
		t.Errorf("show's error prints byte arrays instead of hex: %s", errOut)
	}
}

// TestLogVerifyBundleUsesThePinnedKey: no --key needed under a profile
// that pinned the log's key.
func TestLogVerifyBundleUsesThePinnedKey(t *testing.T) {
	newLogFixture(t)
	file := filepath.Join(t.TempDir(), "bundle.json")
	if code, _, errOut := runLogCLI("log", "export", "--from", "0", "--to", "5", "-o", file); code != 0 {
		t.Fatalf("export = %d %s", code, errOut)
	}
	code, out, errOut := runLogCLI("log", "verify", "--bundle", file)
	if code != 0 || !strings.Contains(out, "Bundle OK: 5 entries") || !strings.Contains(errOut, "Using the log key pinned in profile") {
		t.Errorf("verify --bundle without --key = %d\n%s\n%s", code, out, errOut)
	}
	t.Setenv("INTERLOCK_CONFIG_DIR", t.TempDir()) // no profile, no pinned key
	if code, _, errOut := runLogCLI("log", "verify", "--bundle", file); code == 0 || !strings.Contains(errOut, "--bundle needs --key") {
		t.Errorf("verify --bundle without a key anywhere = %d %s", code, errOut)
	}
}
