package witness_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/witness"
)

// The witness is checked only with independent code: the log side is
// built from golang.org/x/mod/sumdb/note keys, transparency-dev/merkle's
// reference tree and transparency-dev/formats' checkpoint encoding; the
// cosignatures are verified with transparency-dev/formats/note's
// cosignature/v1 verifier.

const origin = "example.test/log"

type fakeLog struct {
	t      testing.TB
	signer note.Signer
	vkey   string
	tree   *testonly.Tree
}

func newFakeLog(t testing.TB, name string) *fakeLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeLog{t: t, signer: s, vkey: vkey, tree: testonly.New(rfc6962.DefaultHasher)}
}

func (l *fakeLog) grow(n int, salt string) {
	for i := 0; i < n; i++ {
		l.tree.AppendData([]byte(fmt.Sprintf("%s entry %d", salt, l.tree.Size())))
	}
}

// checkpoint signs the checkpoint of the tree at size.
func (l *fakeLog) checkpoint(size uint64) []byte {
	l.t.Helper()
	body := log.Checkpoint{Origin: l.signer.Name(), Size: size, Hash: l.tree.HashAt(size)}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(body)}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return signed
}

func (l *fakeLog) proof(from, to uint64) [][]byte {
	l.t.Helper()
	if from == 0 {
		return nil
	}
	p, err := l.tree.ConsistencyProof(from, to)
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

func body(old uint64, proof [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

type harness struct {
	t     *testing.T
	dir   string
	url   string
	vkey  string
	close func()
	c     *http.Client
}

// startWitness serves a witness over HTTPS (httptest's TLS server) with
// state in dir, trusting the given log keys.
func startWitness(t *testing.T, dir string, logKeys ...string) *harness {
	t.Helper()
	signer, _, err := witness.LoadOrCreateKey(filepath.Join(dir, "witness.key"), "witness.test/w1")
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(witness.Config{Logs: logKeys, StateDir: dir, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(w.Handler())
	t.Cleanup(srv.Close)
	return &harness{t: t, dir: dir, url: srv.URL, vkey: signer.VerifierKey(), close: srv.Close, c: srv.Client()}
}

func (h *harness) post(b []byte) (int, string, string) {
	h.t.Helper()
	resp, err := h.c.Post(h.url+"/add-checkpoint", "text/plain", bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(out)
}

// mustCosign posts and checks the answer is a valid cosignature/v1 by the
// witness on exactly cp's body, verified with independent libraries.
func (h *harness) mustCosign(l *fakeLog, old uint64, cp []byte) {
	h.t.Helper()
	code, _, sigs := h.post(body(old, l.proof(old, cpSize(h.t, l, cp)), cp))
	if code != http.StatusOK {
		h.t.Fatalf("add-checkpoint old %d: status %d: %s", old, code, sigs)
	}
	checkCosigned(h.t, l, h.vkey, cp, sigs)
}

func cpSize(t *testing.T, l *fakeLog, cp []byte) uint64 {
	t.Helper()
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _, err := log.ParseCheckpoint(cp, l.signer.Name(), v)
	if err != nil {
		t.Fatal(err)
	}
	return c.Size
}

func checkCosigned(t *testing.T, l *fakeLog, witnessVKey string, cp []byte, sigs string) {
	t.Helper()
	if !strings.HasPrefix(sigs, "— ") || !strings.HasSuffix(sigs, "\n") {
		t.Fatalf("answer is not note signature lines: %q", sigs)
	}
	wv, err := fnote.NewVerifierForCosignatureV1(witnessVKey)
	if err != nil {
		t.Fatalf("the witness's verifier key does not parse as cosignature/v1: %v", err)
	}
	lv, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	// As the protocol suggests: append the answer to the checkpoint and
	// open it with the witness key.
	n, err := note.Open(append(append([]byte(nil), cp...), sigs...), note.VerifierList(wv, lv))
	if err != nil {
		t.Fatalf("cosigned checkpoint does not verify: %v", err)
	}
	found := false
	for _, s := range n.Sigs {
		if s.Name == wv.Name() && s.Hash == wv.KeyHash() {
			found = true
			ts, err := fnote.CoSigV1Timestamp(s)
			if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
				t.Errorf("cosignature time %v (%v) is not now", ts, err)
			}
		}
	}
	if !found {
		t.Fatalf("no cosignature by %s among %v", wv.Name(), n.Sigs)
	}
}

func TestAddCheckpoint(t *testing.T) {
	l := newFakeLog(t, origin)
	l.grow(9, "a")
	h := startWitness(t, t.TempDir(), l.vkey)

	t.Run("first sight with old 0 is cosigned", func(t *testing.T) { h.mustCosign(l, 0, l.checkpoint(5)) })
	t.Run("first sight did not accept a proof from 0", func(t *testing.T) {
		other := startWitness(t, t.TempDir(), l.vkey)
		code, _, msg := other.post(body(0, [][]byte{make([]byte, 32)}, l.checkpoint(5)))
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("status %d (%s), want 422", code, msg)
		}
	})
	t.Run("a proper extension is cosigned", func(t *testing.T) { h.mustCosign(l, 5, l.checkpoint(9)) })
	t.Run("the same checkpoint again is cosigned", func(t *testing.T) { h.mustCosign(l, 9, l.checkpoint(9)) })

	t.Run("a fork of the same size is refused with 409", func(t *testing.T) {
		fork := newFakeLog(t, origin)
		fork.signer = l.signer // the same log key signs a different history
		fork.grow(9, "b")
		code, ctype, size := h.post(body(9, nil, fork.checkpoint(9)))
		if code != http.StatusConflict || ctype != "text/x.tlog.size" || size != "9\n" {
			t.Fatalf("fork: status %d, %s, %q; want 409 text/x.tlog.size \"9\\n\"", code, ctype, size)
		}
	})
	t.Run("a shorter checkpoint is refused with 409 naming the size", func(t *testing.T) {
		code, ctype, size := h.post(body(3, nil, l.checkpoint(3)))
		if code != http.StatusConflict || ctype != "text/x.tlog.size" || size != "9\n" {
			t.Fatalf("rollback: status %d, %s, %q; want 409 \"9\\n\"", code, ctype, size)
		}
	})
	t.Run("a stale old size is refused with 409 naming the size", func(t *testing.T) {
		l.grow(3, "a")
		code, _, size := h.post(body(5, l.proof(5, 12), l.checkpoint(12)))
		if code != http.StatusConflict || size != "9\n" {
			t.Fatalf("stale old: status %d %q; want 409 \"9\\n\"", code, size)
		}
	})
	t.Run("a bad proof is refused with 422", func(t *testing.T) {
		p := l.proof(9, 12)
		p[0] = bytes.Repeat([]byte{7}, 32)
		code, _, msg := h.post(body(9, p, l.checkpoint(12)))
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("bad proof: status %d (%s); want 422", code, msg)
		}
		// The refusal changed nothing: the good proof still works from 9.
		h.mustCosign(l, 9, l.checkpoint(12))
	})
	t.Run("state survives a restart", func(t *testing.T) {
		h.close()
		again := startWitness(t, h.dir, l.vkey)
		if again.vkey != h.vkey {
			t.Fatalf("the witness key changed across a restart: %s vs %s", again.vkey, h.vkey)
		}
		code, _, size := again.post(body(0, nil, l.checkpoint(12)))
		if code != http.StatusConflict || size != "12\n" {
			t.Fatalf("after restart: status %d %q; want 409 \"12\\n\"", code, size)
		}
		l.grow(1, "a")
		again.mustCosign(l, 12, l.checkpoint(13))
	})
}

func TestAddCheckpointRefusals(t *testing.T) {
	l := newFakeLog(t, origin)
	l.grow(4, "a")
	h := startWitness(t, t.TempDir(), l.vkey)
	stranger := newFakeLog(t, "other.test/log")
	stranger.grow(4, "a")
	impostor := newFakeLog(t, origin) // same origin, a key the witness does not trust
	impostor.tree = l.tree

	for _, tt := range []struct {
		name string
		body []byte
		want int
	}{
		{"unknown origin is 404", body(0, nil, stranger.checkpoint(4)), http.StatusNotFound},
		{"unknown key for a known origin is 403", body(0, nil, impostor.checkpoint(4)), http.StatusForbidden},
		{"old larger than the checkpoint is 400", body(5, nil, l.checkpoint(4)), http.StatusBadRequest},
		{"no old line is 400", []byte("\n" + string(l.checkpoint(4))), http.StatusBadRequest},
		{"leading zero in old is 400", []byte("old 01\n\n" + string(l.checkpoint(4))), http.StatusBadRequest},
		{"proof line not base64 is 400", []byte("old 1\n!!!\n\n" + string(l.checkpoint(4))), http.StatusBadRequest},
		{"no blank line is 400", []byte("old 0\n"), http.StatusBadRequest},
		{"64 proof lines is 400", body(1, bytes.Fields(bytes.Repeat([]byte(strings.Repeat("A", 43)+"= "), 64)), l.checkpoint(4)), http.StatusBadRequest},
		{"an unsigned checkpoint is 403", body(0, nil, []byte(origin+"\n4\n"+base64.StdEncoding.EncodeToString(l.tree.HashAt(4))+"\n\n")), http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, msg := h.post(tt.body)
			if code != tt.want {
				t.Fatalf("status %d (%s), want %d", code, msg, tt.want)
			}
			if code != http.StatusConflict && (len(msg) < 10 || !strings.HasSuffix(strings.TrimSpace(msg), ".")) {
				t.Errorf("refusal %q is not a sentence", msg)
			}
		})
	}
	// None of the refusals recorded anything: first sight still works.
	h.mustCosign(l, 0, l.checkpoint(4))

	t.Run("GET is not a route", func(t *testing.T) {
		resp, err := h.c.Get(h.url + "/add-checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 4 {
			t.Fatalf("GET /add-checkpoint: %d", resp.StatusCode)
		}
	})
}

func TestStateFileTamperingIsRefused(t *testing.T) {
	l := newFakeLog(t, origin)
	l.grow(4, "a")
	dir := t.TempDir()
	h := startWitness(t, dir, l.vkey)
	h.mustCosign(l, 0, l.checkpoint(4))
	path := filepath.Join(dir, "logs", "example.test%2Flog")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
	}
	// Someone with access to the state directory rolls it back to a
	// size of 1 with an unsigned note: the witness refuses to use it.
	if err := os.WriteFile(path, []byte(origin+"\n1\n"+base64.StdEncoding.EncodeToString(l.tree.HashAt(1))+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, _ := h.post(body(1, l.proof(1, 4), l.checkpoint(4)))
	if code == http.StatusOK {
		t.Fatal("the witness cosigned on top of a forged state file")
	}
}

func TestKeyIsPrivateAndNamed(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "witness.key")
	c1, created, err := witness.LoadOrCreateKey(kf, "witness.test/w1")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, _ := os.Stat(kf)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	c2, created, err := witness.LoadOrCreateKey(kf, "")
	if err != nil || created || c2.VerifierKey() != c1.VerifierKey() {
		t.Fatalf("reload: %v %v %s vs %s", created, err, c2.VerifierKey(), c1.VerifierKey())
	}
	if _, _, err := witness.LoadOrCreateKey(kf, "witness.test/other"); err == nil {
		t.Fatal("a different --name was accepted for an existing key")
	}
	if err := os.Chmod(kf, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := witness.LoadOrCreateKey(kf, ""); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
}

// TestConcurrentAddsCannotRollBack: many requests from the same old size
// race; exactly one is cosigned and the state is the one it cosigned, so
// a slower, smaller request can never overwrite a larger tree.
func TestConcurrentAddsCannotRollBack(t *testing.T) {
	l := newFakeLog(t, origin)
	l.grow(40, "a")
	h := startWitness(t, t.TempDir(), l.vkey)
	h.mustCosign(l, 0, l.checkpoint(10))
	type result struct {
		size uint64
		code int
	}
	results := make(chan result, 30)
	for size := uint64(11); size <= 40; size++ {
		b := body(10, l.proof(10, size), l.checkpoint(size))
		go func() {
			code, _, _ := h.post(b)
			results <- result{size, code}
		}()
	}
	var won []uint64
	for i := 0; i < 30; i++ {
		r := <-results
		switch r.code {
		case http.StatusOK:
			won = append(won, r.size)
		case http.StatusConflict:
		default:
			t.Errorf("size %d: status %d", r.size, r.code)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d requests from old 10 were cosigned (%v); exactly one may be", len(won), won)
	}
	code, _, size := h.post(body(0, nil, l.checkpoint(40)))
	if code != http.StatusConflict || size != fmt.Sprintf("%d\n", won[0]) {
		t.Fatalf("state after the race: %d %q, want 409 %d", code, size, won[0])
	}
}

// BenchmarkAddCheckpoint measures one cosigned extension, end to end
// through the handler: parse, verify the log signature and a consistency
// proof, write and fsync the state, cosign.
func BenchmarkAddCheckpoint(b *testing.B) {
	l := newFakeLog(b, origin)
	l.grow(b.N+1, "a")
	dir := b.TempDir()
	signer, _, err := witness.LoadOrCreateKey(filepath.Join(dir, "witness.key"), "witness.test/w1")
	if err != nil {
		b.Fatal(err)
	}
	w, err := witness.New(witness.Config{Logs: []string{l.vkey}, StateDir: dir, Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]witness.Request, b.N)
	for i := range reqs {
		old := uint64(i)
		reqs[i] = witness.Request{OldSize: old, Proof: l.proof(old, old+1), Checkpoint: l.checkpoint(old + 1)}
	}
	b.ResetTimer()
	for i := range reqs {
		if _, err := w.AddCheckpoint(context.Background(), reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
