package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/apiclient"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store/storetest"
)

// kmsTestDoer sends calls into an in-process api.Server with the real KMS
// service, store and default policy, as the admin named by *who.
type kmsTestDoer struct {
	s   *api.Server
	who *string
}

func (d kmsTestDoer) Do(_ context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req := httptest.NewRequest(method, "https://api.test"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "DPoP "+*d.who)
	req.Header.Set("DPoP", "proof")
	rec := httptest.NewRecorder()
	d.s.Handler().ServeHTTP(rec, req)
	if rec.Code >= 300 {
		e := &apiclient.Error{Status: rec.Code}
		_ = json.Unmarshal(rec.Body.Bytes(), &e.Problem)
		return e
	}
	if out != nil {
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	return nil
}

type kmsTestAuthn struct{}

func (kmsTestAuthn) Authenticate(_ context.Context, token, _ string) (wire.Principal, error) {
	if !strings.HasPrefix(token, "admin") {
		return wire.Principal{}, errors.New("bad session")
	}
	return wire.Principal{Kind: "person", ID: "p-" + token, Name: token, Roles: []string{"admin"}}, nil
}

type kmsTestProofs struct{}

func (kmsTestProofs) Verify(string, string, string, string, time.Time) (string, error) {
	return "k", nil
}

func kmsCLI(t *testing.T) func(who, stdin string, args ...string) (int, string, string) {
	t.Helper()
	db := storetest.OpenSQLite(t)
	svc, _ := storetest.NewKMS(t, db, nil)
	eng, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Authenticator: kmsTestAuthn{}, Proofs: kmsTestProofs{}, Authorizer: api.PolicyAuthorizer(eng)}, api.KMSRoutes(svc))
	if err != nil {
		t.Fatal(err)
	}
	var who string
	old := kmsClient
	kmsClient = func(*env) (kmsDoer, error) { return kmsTestDoer{s, &who}, nil }
	t.Cleanup(func() { kmsClient = old })
	return func(w, stdin string, args ...string) (int, string, string) {
		who = w
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
		return code, out.String(), errb.String()
	}
}

func TestKMSCommands(t *testing.T) {
	cli := kmsCLI(t)
	ok := func(code int, out, errOut string) string {
		t.Helper()
		if code != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		return out
	}
	out := ok(cli("admin1", "", "kms", "key", "create", "app"))
	if !strings.Contains(out, "Key app: version 1 current") {
		t.Errorf("key create printed %q", out)
	}
	ct := strings.TrimSpace(ok(cli("admin1", "attack at dawn", "kms", "encrypt", "--key", "app", "--context", "tenant=acme")))
	if !strings.HasPrefix(ct, "ilk:v1:app:1:") {
		t.Fatalf("encrypt printed %q", ct)
	}
	if pt := ok(cli("admin1", "", "kms", "decrypt", ct, "--context", "tenant=acme")); pt != "attack at dawn" {
		t.Errorf("decrypt printed %q", pt)
	}
	if pt := ok(cli("admin1", ct+"\n", "kms", "decrypt", "--context", "tenant=acme")); pt != "attack at dawn" {
		t.Errorf("decrypt from stdin printed %q", pt)
	}
	if code, _, errOut := cli("admin1", "", "kms", "decrypt", ct); code == 0 || !strings.Contains(errOut, "encryption context") {
		t.Errorf("decrypt without the context = %d, %q", code, errOut)
	}
	// Batches: JSON Lines in, one answer line per input line, in order,
	// across more items than one call takes.
	var lines strings.Builder
	const n = 1205
	for i := range n {
		fmt.Fprintf(&lines, "{\"plaintext\":%q,\"context\":{\"row\":\"%d\"}}\n", base64.StdEncoding.EncodeToString([]byte(fmt.Sprint("value ", i))), i)
		if i == 3 {
			lines.WriteString("\n")
		}
	}
	encOut := strings.Split(strings.TrimSpace(ok(cli("admin1", lines.String(), "kms", "encrypt-batch", "--key", "app"))), "\n")
	if len(encOut) != n {
		t.Fatalf("encrypt-batch printed %d lines for %d items", len(encOut), n)
	}
	var decIn strings.Builder
	for i, l := range encOut {
		var c wire.KMSBatchCipher
		if err := json.Unmarshal([]byte(l), &c); err != nil || c.Version != 1 {
			t.Fatalf("encrypt-batch line %d = %q (%v)", i+1, l, err)
		}
		fmt.Fprintf(&decIn, "{\"ciphertext\":%q,\"context\":{\"row\":\"%d\"}}\n", c.Ciphertext, i)
	}
	decOut := strings.Split(strings.TrimSpace(ok(cli("admin1", decIn.String(), "kms", "decrypt-batch", "--key", "app"))), "\n")
	for _, i := range []int{0, 999, 1000, n - 1} {
		var p wire.KMSBatchPlain
		_ = json.Unmarshal([]byte(decOut[i]), &p)
		if pt, _ := base64.StdEncoding.DecodeString(p.Plaintext); string(pt) != fmt.Sprint("value ", i) {
			t.Errorf("decrypt-batch line %d = %q, want value %d", i+1, decOut[i], i)
		}
	}
	if code, _, errOut := cli("admin1", "{\"plaintext\":\"eA==\"}\n{\"plaintext\":1}\n", "kms", "encrypt-batch", "--key", "app"); code == 0 ||
		!strings.Contains(errOut, "line 2 is not a batch item") || !strings.Contains(errOut, "nothing from line 1 on was sent") {
		t.Errorf("encrypt-batch with a bad line = %d, %q", code, errOut)
	}
	if code, out, errOut := cli("admin1", decIn.String()[:strings.Index(decIn.String(), "\n")+1]+"{\"ciphertext\":\"ilk:v1:app:1:AAAA\"}\n", "kms", "decrypt-batch", "--key", "app"); code == 0 ||
		out != "" || !strings.Contains(errOut, "lines 1 to 2") || !strings.Contains(errOut, "items[1]") {
		t.Errorf("decrypt-batch with a bad ciphertext = %d, %q, %q", code, out, errOut)
	}
	// A key that rotates every 3 encryptions takes batches of at most 3.
	ok(cli("admin1", "", "kms", "key", "create", "small", "--max-encryptions", "3"))
	five := strings.Repeat("{\"plaintext\":\"eA==\"}\n", 5)
	if code, _, errOut := cli("admin1", five, "kms", "encrypt-batch", "--key", "small"); code == 0 || !strings.Contains(errOut, "at most 3 items") {
		t.Errorf("a batch over the key's rotation count = %d, %q", code, errOut)
	}
	var versions []int
	for _, l := range strings.Split(strings.TrimSpace(ok(cli("admin1", five, "kms", "encrypt-batch", "--key", "small", "--batch-size", "3"))), "\n") {
		var c wire.KMSBatchCipher
		_ = json.Unmarshal([]byte(l), &c)
		versions = append(versions, c.Version)
	}
	if fmt.Sprint(versions) != "[1 1 1 2 2]" {
		t.Errorf("--batch-size 3 over 5 items used versions %v, want [1 1 1 2 2]", versions)
	}
	if code, _, errOut := cli("admin1", five, "kms", "encrypt-batch", "--key", "small", "--batch-size", "501"); code == 0 || !strings.Contains(errOut, "--batch-size") {
		t.Errorf("--batch-size 501 = %d, %q", code, errOut)
	}
	ok(cli("admin1", "", "kms", "key", "rotate", "app"))
	rw := strings.TrimSpace(ok(cli("admin1", "", "kms", "rewrap", ct, "--context", "tenant=acme")))
	if !strings.HasPrefix(rw, "ilk:v1:app:2:") {
		t.Errorf("rewrap printed %q", rw)
	}
	out = ok(cli("admin1", "", "kms", "generate-data-key", "--key", "app"))
	if !strings.Contains(out, "plaintext:  ") || !strings.Contains(out, "ciphertext: ilk:v1:app:2:") {
		t.Errorf("generate-data-key printed %q", out)
	}
	out = ok(cli("admin1", "", "kms", "key", "list"))
	if !strings.Contains(out, "app") || !strings.Contains(out, "NEXT ROTATION") {
		t.Errorf("key list printed %q", out)
	}
	out = ok(cli("admin1", "", "--json", "kms", "key", "show", "app"))
	var k wire.KMSKey
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.CurrentVersion != 2 || len(k.Versions) != 2 {
		t.Errorf("key show --json = %q (%v)", out, err)
	}

	// Secrets, with a critical one that needs a second admin.
	ok(cli("admin1", "", "kms", "key", "create", "secrets"))
	out = ok(cli("admin1", "hunter2", "secret", "put", "prod/db/password", "--critical"))
	if !strings.Contains(out, "version 1") || !strings.Contains(out, "critical") {
		t.Errorf("secret put printed %q", out)
	}
	if code, _, errOut := cli("admin1", "", "secret", "get", "prod/db/password"); code == 0 || !strings.Contains(errOut, "--reason") {
		t.Errorf("secret get without --reason = %d, %q", code, errOut)
	}
	if v := ok(cli("admin1", "", "secret", "get", "prod/db/password", "--reason", "INC-1")); v != "hunter2" {
		t.Errorf("secret get printed %q", v)
	}
	out = ok(cli("admin1", "new value", "secret", "put", "prod/db/password"))
	if !strings.Contains(out, "Nothing changed yet") {
		t.Fatalf("critical put printed %q", out)
	}
	out = ok(cli("admin1", "", "--json", "kms", "request", "list", "--state", "pending"))
	var l wire.KMSRequestList
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Requests) != 1 {
		t.Fatalf("request list = %q (%v)", out, err)
	}
	r := l.Requests[0]
	if code, _, errOut := cli("admin1", "", "kms", "request", "approve", r.ID, "--hash", r.Hash); code == 0 || !strings.Contains(errOut, "second person") {
		t.Errorf("self approval = %d, %q", code, errOut)
	}
	if code, _, errOut := cli("admin2", "", "kms", "request", "approve", r.ID, "--hash", "abc"); code == 0 || !strings.Contains(errOut, "hashes to") {
		t.Errorf("approval with a wrong hash = %d, %q", code, errOut)
	}
	out = ok(cli("admin2", "", "kms", "request", "approve", r.ID, "--hash", r.Hash))
	if !strings.Contains(out, "Approved.") || !strings.Contains(out, "is done") {
		t.Errorf("approve printed %q", out)
	}
	if v := ok(cli("admin2", "", "secret", "get", "prod/db/password", "--reason", "verify")); v != "new value" {
		t.Errorf("value after approval = %q", v)
	}
	out = ok(cli("admin1", "", "secret", "versions", "prod/db/password"))
	if !strings.Contains(out, "version 2") || !strings.Contains(out, "person:p-admin1") {
		t.Errorf("versions printed %q", out)
	}
	out = ok(cli("admin1", "", "secret", "list", "prod/"))
	if !strings.Contains(out, "prod/db/password") {
		t.Errorf("list printed %q", out)
	}
	out = ok(cli("admin1", "", "secret", "delete", "prod/db/password"))
	if !strings.Contains(out, "Nothing changed yet") {
		t.Errorf("critical delete printed %q", out)
	}
	ok(cli("admin1", "tok", "secret", "put", "dev/token"))
	if out := ok(cli("admin1", "", "secret", "delete", "dev/token")); !strings.Contains(out, "Deleted dev/token") {
		t.Errorf("delete printed %q", out)
	}
	out = ok(cli("admin1", "", "kms", "key", "destroy", "app", "--version", "1"))
	if !strings.Contains(out, "waiting period") {
		t.Errorf("destroy printed %q", out)
	}
	out = ok(cli("admin1", "", "kms", "key", "disable", "app"))
	if !strings.Contains(out, "second person") {
		t.Errorf("disable printed %q", out)
	}
	if code, _, errOut := cli("admin1", "", "kms", "encrypt", "--key", "app", "--context", "novalue"); code == 0 || !strings.Contains(errOut, "key=value") {
		t.Errorf("bad --context = %d, %q", code, errOut)
	}
	if code, _, errOut := cli("admin1", "", "kms", "decrypt", "not-a-ciphertext"); code == 0 || !strings.Contains(errOut, "ilk:v1:") {
		t.Errorf("bad ciphertext = %d, %q", code, errOut)
	}
}
