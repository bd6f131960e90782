package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// BenchmarkKMSEncryptHTTPS measures POST /v1/kms/keys/{name}/encrypt over
// HTTPS (TLS 1.3, HTTP/1.1 keep-alive) from many concurrent connections:
// route, strict JSON, a Cedar decision (default policy), envelope
// encryption of 1 KiB, and the audit entry plus usage counter committed
// (SQLite, synchronous=FULL, group commit) before the answer. Session and
// DPoP verification are faked (the identity package's cost). The client is
// a lean keep-alive loop on raw TLS connections; TLS handshakes happen
// before the timer starts. With -kms.external-client the client runs in a
// child process, so req/cpu-s counts the server's CPU alone.
func BenchmarkKMSEncryptHTTPS(b *testing.B) {
	s, _, _ := kmsServer(b)
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.EnableHTTP2 = false
	var newConns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	host := strings.TrimPrefix(srv.URL, "https://")
	conns := kmsBenchConns
	if *externalClient {
		conns = 1 // only to create the key; the child makes its own
	}
	lc, err := newLoadClient(host, tlsCfg, conns)
	if err != nil {
		b.Fatal(err)
	}
	defer lc.close()
	if err := lc.roundTrip(lc.conns[0], lc.request("/v1/kms/keys", `{"name":"bench"}`)); err != nil {
		b.Fatal(err)
	}
	var el, cpu time.Duration
	if *externalClient {
		caFile := filepath.Join(b.TempDir(), "ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKMSHTTPSLoadClient$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KMS_LOAD_HOST="+host, "KMS_LOAD_CA="+caFile, "KMS_LOAD_N="+strconv.Itoa(b.N),
			"KMS_LOAD_CONNS="+strconv.Itoa(kmsBenchConns))
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var cpu0 time.Duration
		var start time.Time
		for sc.Scan() {
			switch strings.TrimSpace(sc.Text()) {
			case "ready":
				b.ResetTimer()
				cpu0, start = cpuTime(), time.Now()
			case "done":
				el, cpu = time.Since(start), cpuTime()-cpu0
			}
		}
		if err := cmd.Wait(); err != nil || el == 0 {
			b.Fatalf("load client: %v (finished: %v)", err, el != 0)
		}
	} else {
		if err := lc.warmUp(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0, start := cpuTime(), time.Now()
		if err := lc.run(b.N); err != nil {
			b.Fatal(err)
		}
		el, cpu = time.Since(start), cpuTime()-cpu0
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(newConns.Load()), "conns")
	// On a shared machine the wall-clock rate says little: requests per
	// CPU-second of this process (server, plus the client unless it is
	// external) says what the code costs.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "req/cpu-s")
}

var externalClient = flag.Bool("kms.external-client", false, "BenchmarkKMSEncryptHTTPS: run the load client in a child process")

// TestKMSHTTPSLoadClient is the child-process load client of
// BenchmarkKMSEncryptHTTPS; it skips unless the benchmark started it.
func TestKMSHTTPSLoadClient(t *testing.T) {
	host := os.Getenv("KMS_LOAD_HOST")
	if host == "" {
		t.Skip("run by BenchmarkKMSEncryptHTTPS -kms.external-client")
	}
	ca, err := os.ReadFile(os.Getenv("KMS_LOAD_CA"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	n, _ := strconv.Atoi(os.Getenv("KMS_LOAD_N"))
	conns, _ := strconv.Atoi(os.Getenv("KMS_LOAD_CONNS"))
	lc, err := newLoadClient(host, &tls.Config{RootCAs: pool, ServerName: "example.com"}, conns)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.close()
	if err := lc.warmUp(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	if err := lc.run(n); err != nil {
		t.Fatal(err)
	}
	fmt.Println("done")
}

// loadClient holds keep-alive TLS connections and sends prebuilt
// HTTP/1.1 requests on them.
type loadClient struct {
	host  string
	conns []loadConn
	enc   []byte
}

type loadConn struct {
	c *tls.Conn
	r *bufio.Reader
}

func newLoadClient(host string, cfg *tls.Config, n int) (*loadClient, error) {
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	lc := &loadClient{host: host}
	for range n {
		c, err := tls.Dial("tcp", host, cfg)
		if err != nil {
			lc.close()
			return nil, err
		}
		lc.conns = append(lc.conns, loadConn{c, bufio.NewReader(c)})
	}
	lc.enc = lc.request("/v1/kms/keys/bench/encrypt",
		fmt.Sprintf(`{"plaintext":%q,"context":{"tenant":"acme"}}`, base64.StdEncoding.EncodeToString(make([]byte, 1024))))
	return lc, nil
}

func (lc *loadClient) close() {
	for _, c := range lc.conns {
		c.c.Close()
	}
}

func (lc *loadClient) request(path, body string) []byte {
	return []byte("POST " + path + " HTTP/1.1\r\nHost: " + lc.host + "\r\nAuthorization: DPoP admin-1\r\nDPoP: proof\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func (lc *loadClient) roundTrip(c loadConn, req []byte) error {
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%d: %s", resp.StatusCode, out)
	}
	return nil
}

// warmUp sends one request per connection so every handshake is done.
func (lc *loadClient) warmUp() error {
	errs := make(chan error, len(lc.conns))
	for _, c := range lc.conns {
		go func() { errs <- lc.roundTrip(c, lc.enc) }()
	}
	var first error
	for range lc.conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// run sends n encrypt requests spread over all connections.
func (lc *loadClient) run(n int) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for _, c := range lc.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := lc.roundTrip(c, lc.enc); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// cpuTime is the user+system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kmsBenchConns is the number of concurrent keep-alive connections of the
// HTTPS benchmark. With group commit, throughput is bounded by about
// connections / commit latency (one fsync), so more connections hide a
// slow disk.
const kmsBenchConns = 512
