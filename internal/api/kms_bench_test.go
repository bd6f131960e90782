package api_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
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
)

// The HTTPS benchmarks measure the KMS data plane as a client sees it:
// TLS 1.3, HTTP/1.1 keep-alive on kmsBenchConns connections, and on every
// call the route, strict JSON, a Cedar decision (default policy), envelope
// encryption and the audit entry plus usage counter committed (SQLite,
// synchronous=FULL, group commit) before the answer. Session and DPoP
// verification are faked (the identity package's cost). The client is a
// lean keep-alive loop on raw TLS connections; handshakes happen before
// the timer starts. With -kms.external-client the client runs in a child
// process, so req/cpu-s counts the server's CPU alone.
//
//	go test ./internal/api -run xxx -bench HTTPS -benchtime 30000x -args -kms.external-client

// BenchmarkKMSEncryptHTTPS is one 1 KiB encryption per request.
func BenchmarkKMSEncryptHTTPS(b *testing.B) {
	s, _, _ := kmsServer(b)
	benchHTTPS(b, s.Handler(), 1, "/v1/kms/keys/bench/encrypt", encryptBody(1024))
}

// BenchmarkKMSEncryptBatchHTTPS is n 1 KiB encryptions per request, one
// decision and one audit entry per request; items/s is encryptions.
func BenchmarkKMSEncryptBatchHTTPS(b *testing.B) {
	for _, n := range []int{8, 32} {
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			s, _, _ := kmsServer(b)
			items := make([]string, n)
			for i := range items {
				items[i] = encryptBody(1024)
			}
			benchHTTPS(b, s.Handler(), n, "/v1/kms/keys/bench/encrypt-batch", `{"items":[`+strings.Join(items, ",")+`]}`)
		})
	}
}

// BenchmarkHTTPSFloor is the same load against a handler that only reads
// the body and writes a 1.4 KB answer: what any Go HTTPS request costs on
// this machine, the ceiling for one call per request.
func BenchmarkHTTPSFloor(b *testing.B) {
	answer := []byte(`{"ciphertext":"` + strings.Repeat("A", 1400) + `"}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	benchHTTPS(b, h, 1, "/v1/kms/keys/bench/encrypt", encryptBody(1024))
}

func encryptBody(size int) string {
	return fmt.Sprintf(`{"plaintext":%q,"context":{"tenant":"acme"}}`, base64.StdEncoding.EncodeToString(make([]byte, size)))
}

// benchHTTPS serves h over TLS, creates key "bench", and sends b.N
// requests of body to path; each request carries perRequest operations.
func benchHTTPS(b *testing.B, h http.Handler, perRequest int, path, body string) {
	srv := httptest.NewUnstartedServer(h)
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
	lc, err := newLoadClient(host, tlsCfg, conns, path, body)
	if err != nil {
		b.Fatal(err)
	}
	defer lc.close()
	if err := lc.roundTrip(lc.conns[0], lc.request("/v1/kms/keys", `{"name":"bench"}`)); err != nil {
		b.Fatal(err)
	}
	var el, cpu time.Duration
	if *externalClient {
		dir := b.TempDir()
		caFile, bodyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "body.json")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(bodyFile, []byte(body), 0o600); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestKMSHTTPSLoadClient$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KMS_LOAD_HOST="+host, "KMS_LOAD_CA="+caFile, "KMS_LOAD_N="+strconv.Itoa(b.N),
			"KMS_LOAD_CONNS="+strconv.Itoa(kmsBenchConns), "KMS_LOAD_PATH="+path, "KMS_LOAD_BODY="+bodyFile)
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
	if perRequest > 1 {
		b.ReportMetric(float64(b.N*perRequest)/el.Seconds(), "items/s")
	}
	b.ReportMetric(float64(newConns.Load()), "conns")
	// On a shared machine the wall-clock rate says little: requests per
	// CPU-second of this process (server, plus the client unless it is
	// external) says what the code costs.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "req/cpu-s")
}

var externalClient = flag.Bool("kms.external-client", false, "HTTPS benchmarks: run the load client in a child process")

// TestKMSHTTPSLoadClient is the child-process load client of the HTTPS
// benchmarks; it skips unless a benchmark started it.
func TestKMSHTTPSLoadClient(t *testing.T) {
	host := os.Getenv("KMS_LOAD_HOST")
	if host == "" {
		t.Skip("run by the HTTPS benchmarks with -kms.external-client")
	}
	ca, err := os.ReadFile(os.Getenv("KMS_LOAD_CA"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(os.Getenv("KMS_LOAD_BODY"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	n, _ := strconv.Atoi(os.Getenv("KMS_LOAD_N"))
	conns, _ := strconv.Atoi(os.Getenv("KMS_LOAD_CONNS"))
	lc, err := newLoadClient(host, &tls.Config{RootCAs: pool, ServerName: "example.com"}, conns, os.Getenv("KMS_LOAD_PATH"), string(body))
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

// loadClient holds keep-alive TLS connections and sends one prebuilt
// HTTP/1.1 request on them.
type loadClient struct {
	host  string
	conns []loadConn
	req   []byte
}

type loadConn struct {
	c *tls.Conn
	r *bufio.Reader
}

func newLoadClient(host string, cfg *tls.Config, n int, path, body string) (*loadClient, error) {
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
	lc.req = lc.request(path, body)
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
		go func() { errs <- lc.roundTrip(c, lc.req) }()
	}
	var first error
	for range lc.conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// run sends n requests spread over all connections.
func (lc *loadClient) run(n int) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for _, c := range lc.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := lc.roundTrip(c, lc.req); err != nil {
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
// HTTPS benchmarks. With group commit, throughput is bounded by about
// connections / commit latency (one fsync), so more connections hide a
// slow disk.
const kmsBenchConns = 512
