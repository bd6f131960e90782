package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/store"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// fakeSealer "seals" by prefixing the aad, so a wrong aad fails to open.
type fakeSealer struct{}

func (fakeSealer) Seal(p, aad []byte) ([]byte, error) {
	return append(append(append([]byte(nil), aad...), 0), p...), nil
}

func (fakeSealer) Open(s, aad []byte) ([]byte, error) {
	pre := append(append([]byte(nil), aad...), 0)
	if !bytes.HasPrefix(s, pre) {
		return nil, errors.New("fake sealer: wrong aad")
	}
	return s[len(pre):], nil
}

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func openLog(t testing.TB) (*store.DB, *audit.Log, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log",
		Now: func() time.Time { return t0 }, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return db, l, filepath.Join(dir, "interlock.db")
}

func appendN(t testing.TB, db *store.DB, n int, personal bool) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		e := audit.Entry{Kind: "test.event", Version: 1, Actor: fmt.Sprintf("person:%d", i%3), Subject: fmt.Sprintf("thing:%d", i), Time: t0.Add(time.Duration(i)), Data: map[string]any{"i": i}}
		if personal {
			e.Personal = map[string]string{"ip": fmt.Sprintf("198.51.100.%d", i%250), "name": fmt.Sprintf("Jane Example %d", i)}
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLogEndToEnd(t *testing.T) {
	ctx := context.Background()
	db, l, _ := openLog(t)
	appendN(t, db, 250, true) // three batches of ≤100
	cp, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 250 {
		t.Fatalf("checkpoint size = %d, want 250", cp.Size)
	}
	vkey, err := l.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := tlog.NewVerifier(vkey)
	signed, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := tlog.OpenCheckpoint(signed.Note, v)
	if err != nil {
		t.Fatal(err)
	}
	if !tlog.SameTree(got, cp) || !got.Time.Equal(t0) {
		t.Errorf("published checkpoint %+v, Sync returned %+v", got, cp)
	}
	es, err := l.Entries(ctx, 100, 110)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 10 || es[0].Index != 100 || len(es[0].Personal) != 2 {
		t.Fatalf("Entries(100,110) = %d entries starting at %d", len(es), es[0].Index)
	}
	for _, e := range es {
		p, err := l.InclusionProof(ctx, e.Index, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.VerifyInclusion(e.Index, cp.Size, tlog.LeafHash(e.Leaf), p, cp.Hash); err != nil {
			t.Errorf("inclusion of %d: %v", e.Index, err)
		}
	}
	leaf, err := audit.ParseLeaf(es[1].Leaf)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Actor != "person:2" || leaf.ActorSeq != 34 || leaf.ActorPrev == "" {
		t.Errorf("entry 101: actor %s seq %d prev %q; want person:2, 34th entry, chained", leaf.Actor, leaf.ActorSeq, leaf.ActorPrev)
	}

	// Grow, then prove consistency with the old checkpoint.
	appendN(t, db, 37, false)
	cp2, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cproof, err := l.ConsistencyProof(ctx, cp.Size, cp2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckExtension(&cp, cp2, cproof); err != nil {
		t.Errorf("CheckExtension: %v", err)
	}
	if _, err := l.Verify(ctx, true); err != nil {
		t.Fatalf("Verify(full) = %v", err)
	}

	// Bundles verify offline; a changed byte is named.
	b, err := l.Export(ctx, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jsonMarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyBundle(raw, vkey)
	if err != nil || rep.Entries != 10 {
		t.Fatalf("VerifyBundle = %+v, %v", rep, err)
	}
	b.Entries[3].Leaf = bytes.Replace(b.Entries[3].Leaf, []byte(`"i":13`), []byte(`"i":99`), 1)
	raw, _ = jsonMarshal(b)
	var ve *audit.VerifyError
	if _, err := audit.VerifyBundle(raw, vkey); !errors.As(err, &ve) || ve.Index != 13 {
		t.Errorf("VerifyBundle(tampered) = %v, want a VerifyError at 13", err)
	}
}

func TestReadRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	db, l, _ := openLog(t)
	appendN(t, db, 5, false)
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		call func() error
		kind usererr.Kind
	}{
		{"empty range", func() error { _, err := l.Entries(ctx, 3, 3); return err }, usererr.Invalid},
		{"huge range", func() error { _, err := l.Entries(ctx, 0, 1<<40); return err }, usererr.Invalid},
		{"beyond log", func() error { _, err := l.Entries(ctx, 5, 6); return err }, usererr.NotFound},
		{"index beyond size", func() error { _, err := l.InclusionProof(ctx, 5, 5); return err }, usererr.Invalid},
		{"size beyond tree", func() error { _, err := l.InclusionProof(ctx, 0, 6); return err }, usererr.Invalid},
		{"consistency backwards", func() error { _, err := l.ConsistencyProof(ctx, 4, 2); return err }, usererr.Invalid},
		{"consistency beyond", func() error { _, err := l.ConsistencyProof(ctx, 2, 9); return err }, usererr.Invalid},
		{"tile not there", func() error { _, err := l.Tile(ctx, tlog.Tile{Level: 0, Index: 0, Width: 6}); return err }, usererr.NotFound},
		{"export beyond", func() error { _, err := l.Export(ctx, 0, 6); return err }, usererr.Invalid},
		{"redact without reason", func() error { return l.Redact(ctx, 0, "person:1", " ") }, usererr.Invalid},
		{"redact missing", func() error { return l.Redact(ctx, 99, "person:1", "erasure request") }, usererr.NotFound},
		{"redact nothing personal", func() error { return l.Redact(ctx, 1, "person:1", "erasure request") }, usererr.Conflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			ue, ok := usererr.As(err)
			if !ok || ue.Kind != tt.kind {
				t.Errorf("error = %v, want a usererr of kind %d", err, tt.kind)
			}
		})
	}
}

func TestRedactErasesPersonalDataFromTheFile(t *testing.T) {
	ctx := context.Background()
	db, l, path := openLog(t)
	appendN(t, db, 40, true)
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	secret := []byte("Jane Example 17")
	if err := l.Redact(ctx, 17, "person:admin", "erasure request 42"); err != nil {
		t.Fatal(err)
	}
	cp, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 41 {
		t.Errorf("size after redaction = %d, want 41 (the redaction is an entry)", cp.Size)
	}
	es, err := l.Entries(ctx, 17, 18)
	if err != nil {
		t.Fatal(err)
	}
	if len(es[0].Personal) != 0 {
		t.Errorf("entry 17 still has personal openings %v", es[0].Personal)
	}
	for i := uint64(0); i < cp.Size; i++ {
		es, _ := l.Entries(ctx, i, i+1)
		p, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.VerifyInclusion(i, cp.Size, tlog.LeafHash(es[0].Leaf), p, cp.Hash); err != nil {
			t.Errorf("entry %d no longer verifies after redaction: %v", i, err)
		}
	}
	if _, err := l.Verify(ctx, true); err != nil {
		t.Errorf("Verify(full) after redaction = %v", err)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, secret) {
			t.Errorf("%s still contains %q after redaction", filepath.Base(f), secret)
		}
		if !bytes.Contains(b, []byte("Jane Example 18")) && f == path {
			t.Errorf("%s lost the personal data of entry 18 too (or the search is broken)", filepath.Base(f))
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	db, _, _ := openLog(t)
	e := audit.Entry{Kind: "test.event", Version: 1, Actor: "system", Time: t0, IdempotencyKey: "op:1:approved"}
	if err := db.InTx(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) }); err != nil {
		t.Fatal(err)
	}
	err := db.InTx(ctx, func(tx *store.Tx) error {
		if err := audit.Append(ctx, tx, e); !errors.Is(err, audit.ErrDuplicate) {
			return fmt.Errorf("second Append = %v, want ErrDuplicate", err)
		}
		// The transaction is still usable.
		e.IdempotencyKey = "op:2:approved"
		return audit.Append(ctx, tx, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := db.AuditStore().PendingCount(ctx)
	if n != 2 {
		t.Errorf("pending entries = %d, want 2", n)
	}
}

func TestAppenderGroupsCallers(t *testing.T) {
	ctx := context.Background()
	db, l, _ := openLog(t)
	a := audit.NewAppender(db.InTx, audit.AppenderConfig{})
	defer a.Close()
	var wg sync.WaitGroup
	errs := make([]error, 200)
	failed := errors.New("change refused")
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := audit.Entry{Kind: "test.event", Version: 1, Actor: "system", Time: t0, Data: map[string]any{"i": i}}
			switch i % 3 {
			case 0:
				errs[i] = a.Append(ctx, e)
			case 1:
				errs[i] = a.Do(ctx, func(tx *store.Tx) error { return audit.Append(ctx, tx, e) })
			case 2: // a change that fails after its Append: only it rolls back
				errs[i] = a.Do(ctx, func(tx *store.Tx) error {
					if err := audit.Append(ctx, tx, e); err != nil {
						return err
					}
					return failed
				})
			}
		}()
	}
	wg.Wait()
	want := 0
	for i, err := range errs {
		if i%3 == 2 {
			if !errors.Is(err, failed) {
				t.Errorf("caller %d: %v, want its own error", i, err)
			}
			continue
		}
		want++
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	cp, err := l.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != uint64(want) {
		t.Errorf("log size = %d, want %d (failed callers' entries must roll back, the others commit)", cp.Size, want)
	}
}

func TestLogKeyIsSealedAndReused(t *testing.T) {
	ctx := context.Background()
	db, l, _ := openLog(t)
	k1, err := l.PublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealed, vkey, err := db.AuditStore().LogKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vkey != k1 || bytes.Contains(sealed, []byte("PRIVATE+KEY")) && !bytes.HasPrefix(sealed, []byte("audit/log-key:interlock.test/log")) {
		t.Errorf("stored key not as expected")
	}
	l2, _ := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log"})
	k2, err := l2.PublicKey(ctx)
	if err != nil || k2 != k1 {
		t.Errorf("second Log's key = %q, %v; want the stored %q", k2, err, k1)
	}
	if diff := cmp.Diff(k1, k2); diff != "" {
		t.Error(diff)
	}
}

func TestLeafMarshalMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"d", `back\slash`, "<html>&", "tab\tnew\nline", "ünïcödé", "\u2028\u2029", "bad\xffutf8", "\x01\x1f\x7f"} {
		l := audit.LeafV1{Format: audit.LeafFormatV1, Kind: s, Version: 3, Actor: s, ActorSeq: 9, ActorPrev: s, Subject: s,
			TimeUnixNano: -5, IdempotencyKey: s, Data: []byte(`{"a":"\u003cb\u003e"}`), Personal: []byte(`{}`)}
		got, err := l.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		want, err := jsonMarshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Marshal(%q):\n got %s\nwant %s", s, got, want)
		}
	}
}

func TestWitnessCosignaturesAreStoredBesideTheCheckpoint(t *testing.T) {
	ctx := context.Background()
	w, err := tlog.NewCosigner("witness.test", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	db, _, _ := openLog(t)
	l, err := audit.New(audit.Config{Store: db.AuditStore(), Sealer: fakeSealer{}, Origin: "interlock.test/log", Witnesses: []string{w.VerifierKey()}})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 3, false)
	if _, err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	vkey, _ := l.PublicKey(ctx)
	logV, _ := tlog.NewVerifier(vkey)
	cp, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, _, err := tlog.Cosign(cp.Note, logV, w)
	if err != nil {
		t.Fatal(err)
	}
	// A stranger's cosignature is refused.
	other, _ := tlog.NewCosigner("stranger", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)))
	strange, _, _ := tlog.Cosign(cp.Note, logV, other)
	if err := l.AddCosignature(ctx, strange); err == nil {
		t.Error("AddCosignature accepted a cosignature from an unknown witness")
	}
	if err := l.AddCosignature(ctx, cosigned); err != nil {
		t.Fatal(err)
	}
	cp2, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wv, _ := tlog.NewVerifier(w.VerifierKey())
	_, n, err := tlog.OpenCheckpoint(cp2.Note, logV, wv)
	if err != nil || len(n.Sigs) != 2 {
		t.Errorf("served checkpoint: %v, %d verified signatures; want the log's and the witness's", err, len(n.Sigs))
	}
}

func TestAppenderIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	db, _, _ := openLog(t)
	a := audit.NewAppender(db.InTx, audit.AppenderConfig{})
	defer a.Close()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Append(ctx, audit.Entry{Kind: "test.event", Version: 1, Actor: "system", Time: t0, IdempotencyKey: fmt.Sprintf("k%d", i%2)})
		}()
	}
	wg.Wait()
	ok, dup := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, audit.ErrDuplicate):
			dup++
		default:
			t.Errorf("Append = %v", err)
		}
	}
	if ok != 2 || dup != 8 {
		t.Errorf("%d recorded, %d duplicates; want 2 and 8", ok, dup)
	}
}

// TestOversizedEntryIsTheRequestsFault: an entry over the leaf limit is
// refused as a user error (413 at the API), not a server error.
func TestOversizedEntryIsTheRequestsFault(t *testing.T) {
	_, err := audit.NewRecord(audit.Entry{Kind: "test.big", Version: 1, Actor: "person:p1", Time: time.Now(),
		Data: map[string]any{"blob": strings.Repeat("x", audit.MaxLeafSize)}}, rand.Reader)
	ue, ok := usererr.As(err)
	if !ok || ue.Kind != usererr.TooLarge || ue.Code != "audit_entry_too_large" {
		t.Fatalf("NewRecord of an oversized entry = %v, want usererr TooLarge audit_entry_too_large", err)
	}
	if _, err := audit.NewRecord(audit.Entry{Kind: "test.small", Version: 1, Actor: "person:p1", Time: time.Now(),
		Data: map[string]any{"blob": strings.Repeat("x", 1000)}}, rand.Reader); err != nil {
		t.Fatalf("NewRecord of a small entry: %v", err)
	}
}
