package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/api"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/store"
)

// publicLogServer serves the log's public routes (and the session routes)
// over HTTPS, with the given per-source rate.
func publicLogServer(t *testing.T, perSecond float64, burst int) (*httptest.Server, *audit.Log, *store.DB) {
	t.Helper()
	_, l, db := logServer(t)
	eng, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Authenticator: logAuthn{}, Proofs: logProofs{}, Authorizer: api.PolicyAuthorizer(eng)},
		api.LogRoutes(l), api.PublicLogRoutes(l, perSecond, burst))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, l, db
}

// TestPublicLogReadByStockClient reads the checkpoint and hash tiles with
// no session, using only independent code: Tessera's tlog-tiles client
// fetches them and builds proofs, formats/log and x/mod's note check the
// checkpoint, and merkle/proof checks the proofs against leaves hashed
// here.
func TestPublicLogReadByStockClient(t *testing.T) {
	ctx := context.Background()
	srv, l, db := publicLogServer(t, 0, 0)
	vkey, err := l.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := url.Parse(srv.URL + api.PublicLogPrefix)
	f, err := client.NewHTTPFetcher(root, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := client.FetchCheckpoint(ctx, f.ReadCheckpoint, v, l.Origin())
	if err != nil {
		t.Fatalf("a stock client cannot read the checkpoint without a session: %v", err)
	}
	if cp.Size != 300 {
		t.Fatalf("checkpoint size %d, want 300", cp.Size)
	}
	raw, err := f.ReadCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := log.ParseCheckpoint(raw, l.Origin(), v); err != nil {
		t.Fatalf("formats/log does not accept the checkpoint: %v", err)
	}

	es, err := l.Entries(ctx, 0, 300)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{0, 1, 255, 256, 299} {
		p, err := pb.InclusionProof(ctx, i)
		if err != nil {
			t.Fatalf("inclusion proof %d from public tiles: %v", i, err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, rfc6962.DefaultHasher.HashLeaf(es[i].Leaf), p, cp.Hash); err != nil {
			t.Errorf("entry %d: inclusion proof from public tiles does not verify: %v", i, err)
		}
	}

	// The log grows; the partial tiles grow with it and a stock client
	// proves the new checkpoint extends the old one.
	for i := 0; i < 20; i++ {
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: "person:p2", Subject: fmt.Sprintf("more:%d", i), Time: time.Unix(int64(1000+i), 0)}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	cp2, _, _, err := client.FetchCheckpoint(ctx, f.ReadCheckpoint, v, l.Origin())
	if err != nil || cp2.Size != 320 {
		t.Fatalf("second checkpoint: %v %v", cp2, err)
	}
	pb2, err := client.NewProofBuilder(ctx, cp2.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := pb2.ConsistencyProof(ctx, cp.Size, cp2.Size)
	if err != nil {
		t.Fatalf("consistency proof from public tiles: %v", err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, cp2.Size, cons, cp.Hash, cp2.Hash); err != nil {
		t.Fatalf("consistency proof 300→320 from public tiles does not verify: %v", err)
	}
}

func TestPublicLogKeepsEntriesBehindASession(t *testing.T) {
	srv, _, _ := publicLogServer(t, 0, 0)
	for _, tt := range []struct {
		path string
		want int
	}{
		{api.PublicLogPrefix + "tile/entries/000", http.StatusUnauthorized},
		{api.PublicLogPrefix + "tile/entries/001.p/44", http.StatusUnauthorized},
		{"/v1/log/tile/entries/001.p/44", http.StatusUnauthorized},
		{"/v1/log/entries?start=0&end=10", http.StatusUnauthorized},
		{"/v1/log/checkpoint", http.StatusUnauthorized},
		{api.PublicLogPrefix + "tile/0/000", http.StatusOK},
		{api.PublicLogPrefix + "tile/0/001.p/44", http.StatusOK},
		{api.PublicLogPrefix + "tile/0/001.p/45", http.StatusNotFound},
		{api.PublicLogPrefix + "tile/0/001", http.StatusNotFound},
		{api.PublicLogPrefix + "tile/0/1", http.StatusBadRequest},
		{api.PublicLogPrefix + "tile/99/000", http.StatusBadRequest},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("GET %s without a session: %d %s, want %d", tt.path, resp.StatusCode, b, tt.want)
			}
		})
	}
}

func TestPublicLogIsRateLimitedPerSource(t *testing.T) {
	srv, _, _ := publicLogServer(t, 0.001, 3)
	get := func() int {
		resp, err := srv.Client().Get(srv.URL + api.PublicLogPrefix + "checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 3; i++ {
		if code := get(); code != http.StatusOK {
			t.Fatalf("read %d within the burst: %d", i+1, code)
		}
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Fatalf("read past the burst: %d, want 429", code)
	}
}
