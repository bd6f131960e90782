package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/app"
	"github.com/interlock-dev/interlock/internal/cli"
	"github.com/interlock-dev/interlock/internal/config"
	"github.com/interlock-dev/interlock/internal/store"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type witnessProc struct {
	URL            string `json:"url"`
	VerifierKey    string `json:"verifier_key"`
	TLSCertificate string `json:"tls_certificate"`
	stop           func()
}

// runWitness runs `interlock witness serve` (the real command) until the
// test ends or stop is called, and returns what it printed at start.
func runWitness(t *testing.T, name, logKey string) *witnessProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--json", "witness", "serve", "--log-key", logKey, "--state", filepath.Join(t.TempDir(), "state"),
			"--listen", "127.0.0.1:0", "--name", name}, strings.NewReader(""), &out, &errb)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	var w witnessProc
	deadline := time.Now().Add(10 * time.Second)
	for json.Unmarshal([]byte(out.String()), &w) != nil {
		select {
		case code := <-done:
			t.Fatalf("witness serve exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("witness serve printed nothing: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(w.URL, "https://") {
		t.Fatalf("the witness does not serve HTTPS by default: %s", w.URL)
	}
	w.stop = stop
	return &w
}

// startWitnessedServer starts the control plane on dir's data with the
// given --log-witness values. Checkpoints are published only when the
// test calls Audit.Sync, so each step sees the checkpoint it expects.
func startWitnessedServer(t *testing.T, dir string, witnesses, cas []string) *quickstart {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, config.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"), CheckpointInterval: time.Hour, MetricsTokenSHA256: scrapeTokenHashes,
		LogWitnesses: witnesses, LogWitnessCAFiles: cas}, app.Options{})
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	readyc := make(chan app.Ready, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(r app.Ready) { readyc <- r }) }()
	var ready app.Ready
	select {
	case ready = <-readyc:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	t.Setenv("INTERLOCK_CONFIG_DIR", filepath.Join(dir, "config"))
	return &quickstart{t: t, ctx: ctx, app: a, ready: ready, dir: dir, otpAt: map[string]int64{}, secret: map[string]string{}}
}

// logKeyOf creates the log key in dir's data (as a first `serve` would).
func logKeyOf(t *testing.T, dir string) string {
	t.Helper()
	a, err := app.New(context.Background(), config.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "data")}, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	k, err := a.Audit.PublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publicCheckpoint reads /log/checkpoint without a session and returns
// the note, its size (formats/log) and the witnesses among vkeys whose
// cosignatures verify (formats/note's cosignature/v1 verifier).
func (q *quickstart) publicCheckpoint(vkeys ...string) ([]byte, uint64, []string) {
	q.t.Helper()
	resp, err := q.httpClient().Get(q.ready.URL + "/log/checkpoint")
	if err != nil {
		q.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		q.t.Fatalf("GET /log/checkpoint without a session: %d %s", resp.StatusCode, b)
	}
	lv, err := note.NewVerifier(q.ready.LogKey)
	if err != nil {
		q.t.Fatal(err)
	}
	cp, _, _, err := log.ParseCheckpoint(b, lv.Name(), lv)
	if err != nil {
		q.t.Fatalf("formats/log rejects the public checkpoint: %v\n%s", err, b)
	}
	var ok []string
	for _, k := range vkeys {
		wv, err := fnote.NewVerifierForCosignatureV1(k)
		if err != nil {
			q.t.Fatal(err)
		}
		if n, err := note.Open(b, note.VerifierList(lv, wv)); err == nil {
			for _, s := range n.Sigs {
				if s.Name == wv.Name() && s.Hash == wv.KeyHash() {
					ok = append(ok, wv.Name())
				}
			}
		}
	}
	return b, cp.Size, ok
}

// TestWitnessedLogEndToEnd: two real witnesses (`interlock witness serve`
// over HTTPS) cosign every checkpoint the server pushes; a third is
// configured but down. `log verify` demands K of the named witnesses and
// says which are missing; a cosignature forged in the database does not
// count; the dead witness shows in /metrics and does not stop the log.
func TestWitnessedLogEndToEnd(t *testing.T) {
	dir := t.TempDir()
	logKey := logKeyOf(t, dir)
	w1 := runWitness(t, "w1.test/witness", logKey)
	w2 := runWitness(t, "w2.test/witness", logKey)
	w3 := runWitness(t, "w3.test/witness", logKey)
	w3.stop() // configured on the server, but down
	var flags []string
	for _, w := range []*witnessProc{w1, w2, w3} {
		flags = append(flags, w.URL+"+"+w.VerifierKey)
	}
	q := startWitnessedServer(t, dir, flags, []string{w1.TLSCertificate, w2.TLSCertificate})
	if q.ready.LogKey != logKey {
		t.Fatalf("log key changed: %s vs %s", q.ready.LogKey, logKey)
	}
	secretFile := filepath.Join(q.dir, "admin.totp")
	q.must(password+"\n", append([]string{"bootstrap", "--code", q.ready.BootstrapCode, "--user", "admin", "--password-stdin", "--totp-secret-out", secretFile}, q.serverFlags()...)...)
	q.readSecret("admin", secretFile)
	q.login("admin")

	waitWitnessed := func() uint64 {
		t.Helper()
		cp, err := q.app.Audit.Sync(q.ctx)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, size, got := q.publicCheckpoint(w1.VerifierKey, w2.VerifierKey, w3.VerifierKey)
			if size == cp.Size && len(got) == 2 {
				return size
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint %d: served size %d cosigned by %v; want %d by w1 and w2", cp.Size, size, got, cp.Size)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	size1 := waitWitnessed()
	if size1 < 3 {
		t.Fatalf("checkpoint of %d entries after bootstrap and login", size1)
	}
	all := []string{"--witness", w1.VerifierKey, "--witness", w2.VerifierKey, "--witness", w3.VerifierKey}

	t.Run("2 of 3 passes", func(t *testing.T) {
		out := q.mustAs("admin", append(append([]string{"log", "verify"}, all...), "--min-witnesses", "2")...)
		if !strings.Contains(out, "cosigned by w1.test/witness, w2.test/witness") {
			t.Fatalf("verify output does not name the cosigners: %s", out)
		}
	})
	t.Run("3 of 3 fails with a sentence naming the missing witness", func(t *testing.T) {
		code, _, errs := q.as("admin", append(append([]string{"log", "verify"}, all...), "--min-witnesses", "3")...)
		if code != 1 || !strings.Contains(errs, "only 2 of the 3 named witnesses cosigned") || !strings.Contains(errs, "no valid cosignature from w3.test/witness") {
			t.Fatalf("exit %d: %s", code, errs)
		}
	})
	t.Run("by default every named witness must have cosigned", func(t *testing.T) {
		code, _, errs := q.as("admin", "log", "verify", "--witness", w1.VerifierKey, "--witness", w3.VerifierKey)
		if code != 1 || !strings.Contains(errs, "fewer than the 2 required") {
			t.Fatalf("exit %d: %s", code, errs)
		}
		q.mustAs("admin", "log", "verify", "--witness", w1.VerifierKey, "--witness", w2.VerifierKey)
	})
	t.Run("the log grows and stays witnessed, with consistency proofs", func(t *testing.T) {
		q.mustAs("admin", "user", "invite", "viewer1", "--role", "viewer")
		size2 := waitWitnessed()
		if size2 <= size1 {
			t.Fatalf("no growth: %d then %d", size1, size2)
		}
		var out struct {
			OK        bool     `json:"ok"`
			Size      uint64   `json:"size"`
			Witnesses []string `json:"witnesses"`
		}
		mustJSON(t, q.mustAs("admin", append(append([]string{"--json", "log", "verify"}, all...), "--min-witnesses", "2")...), &out)
		if !out.OK || out.Size != size2 || strings.Join(out.Witnesses, ",") != "w1.test/witness,w2.test/witness" {
			t.Fatalf("verify --json: %+v", out)
		}
	})
	t.Run("an export bundle carries the cosignatures for offline K-of-N", func(t *testing.T) {
		file := filepath.Join(q.dir, "audit.bundle")
		q.mustAs("admin", "log", "export", "--from", "0", "--to", "2", "-o", file)
		q.must("", append(append([]string{"log", "verify", "--bundle", file, "--key", logKey}, all...), "--min-witnesses", "2")...)
		code, _, errs := q.run("", append(append([]string{"log", "verify", "--bundle", file, "--key", logKey}, all...), "--min-witnesses", "3")...)
		if code != 1 || !strings.Contains(errs, "no valid cosignature from w3.test/witness") {
			t.Fatalf("offline 3 of 3: exit %d: %s", code, errs)
		}
	})
	t.Run("a cosignature forged in the database does not count", func(t *testing.T) {
		db, err := store.Open(context.Background(), store.Config{DataDir: filepath.Join(dir, "data")})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		parts := strings.SplitN(w3.VerifierKey, "+", 3)
		hash, _ := strconv.ParseUint(parts[1], 16, 32)
		sig := binary.BigEndian.AppendUint32(nil, uint32(hash))
		sig = binary.BigEndian.AppendUint64(sig, uint64(time.Now().Unix()))
		junk := make([]byte, 64)
		_, _ = rand.Read(junk)
		line := "— w3.test/witness " + base64.StdEncoding.EncodeToString(append(sig, junk...)) + "\n"
		if _, err := db.Exec(context.Background(), `INSERT INTO audit_cosignatures (checkpoint_id, witness, line)
			SELECT MAX(id), 'w3.test/witness', $1 FROM audit_checkpoints`, line); err != nil {
			t.Fatal(err)
		}
		if b, _, _ := q.publicCheckpoint(); !bytes.Contains(b, []byte(line)) {
			t.Fatalf("the forged line is not served, so this test proves nothing:\n%s", b)
		}
		code, _, errs := q.as("admin", append(append([]string{"log", "verify"}, all...), "--min-witnesses", "3")...)
		if code != 1 || !strings.Contains(errs, "no valid cosignature from w3.test/witness") {
			t.Fatalf("with a forged w3 cosignature: exit %d: %s", code, errs)
		}
		q.mustAs("admin", append(append([]string{"log", "verify"}, all...), "--min-witnesses", "2")...)
	})
	t.Run("a witness that is down is a metric, not an outage", func(t *testing.T) {
		resp, err := q.httpClient().Do(scrapeRequest(t, q.ready.URL))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`interlock_log_witness_failures_total\{witness="w3.test/witness"\} (\d+)`).FindSubmatch(b)
		if m == nil || string(m[1]) == "0" {
			t.Fatalf("no failures counted for the dead witness:\n%s", grepLines(string(b), "interlock_log_witness"))
		}
		if !regexp.MustCompile(`interlock_log_witness_failures_total\{witness="w1.test/witness"\} 0\n`).Match(b) {
			t.Fatalf("failures counted for a healthy witness:\n%s", grepLines(string(b), "interlock_log_witness"))
		}
	})
}
