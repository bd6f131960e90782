package tlog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sumdb "golang.org/x/mod/sumdb/tlog"
)

// memTiles is a TileReader over tiles kept at their latest width.
type memTiles map[tileRef][]byte

func (m memTiles) ReadTiles(_ context.Context, tiles []Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		d := m[tileRef{t.Level, t.Index}]
		if len(d) < t.Width*HashSize {
			return nil, fmt.Errorf("tile %s not stored (have %d bytes)", t.Path(), len(d))
		}
		out[i] = d[:t.Width*HashSize]
	}
	return out, nil
}

// integrate appends leaf hashes to r in one batch, updating the tiles as
// a sequencer does.
func integrate(t testing.TB, r *Range, tiles memTiles, leaves [][]byte) {
	t.Helper()
	edge := map[Tile][]byte{}
	for _, e := range EdgeTiles(r.Size()) {
		edge[e] = tiles[tileRef{e.Level, e.Index}]
	}
	var set TileSet
	for _, l := range leaves {
		if err := r.Append(l, set.Visit); err != nil {
			t.Fatal(err)
		}
	}
	ts, data, err := set.Tiles(r.Size(), edge)
	if err != nil {
		t.Fatal(err)
	}
	for i, tl := range ts {
		tiles[tileRef{tl.Level, tl.Index}] = data[i]
	}
}

func leafData(i int) []byte { return []byte(fmt.Sprintf("entry %d", i)) }

// TestProofsAgreeWithSumdb is the property test: on random trees built in
// random batches, tile-backed proofs and roots equal those of
// golang.org/x/mod/sumdb/tlog, and they verify.
func TestProofsAgreeWithSumdb(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 25; trial++ {
		n := 1 + rng.IntN(3000)
		if trial == 0 {
			n = 1
		}
		if trial == 1 {
			n = 65536 + 3 // crosses two tile levels
		}
		var stored []sumdb.Hash
		r, _ := NewRange(0, nil)
		tiles := memTiles{}
		sizes := []uint64{}
		for i := 0; i < n; {
			k := min(n-i, 1+rng.IntN(700))
			var batch [][]byte
			for j := i; j < i+k; j++ {
				hs, err := sumdb.StoredHashes(int64(j), leafData(j), sumdb.HashReaderFunc(func(ix []int64) ([]sumdb.Hash, error) {
					out := make([]sumdb.Hash, len(ix))
					for q, x := range ix {
						out[q] = stored[x]
					}
					return out, nil
				}))
				if err != nil {
					t.Fatal(err)
				}
				stored = append(stored, hs...)
				batch = append(batch, LeafHash(leafData(j)))
			}
			integrate(t, r, tiles, batch)
			i += k
			sizes = append(sizes, uint64(i))
		}
		sreader := sumdb.HashReaderFunc(func(ix []int64) ([]sumdb.Hash, error) {
			out := make([]sumdb.Hash, len(ix))
			for q, x := range ix {
				out[q] = stored[x]
			}
			return out, nil
		})
		size := uint64(n)
		hr := TileHashReader{Size: size, Tiles: tiles}
		wantRoot, err := sumdb.TreeHash(int64(n), sreader)
		if err != nil {
			t.Fatal(err)
		}
		gotRoot, err := RootHash(ctx, size, hr)
		if err != nil {
			t.Fatalf("n=%d: RootHash: %v", n, err)
		}
		if !bytes.Equal(gotRoot, wantRoot[:]) || !bytes.Equal(r.Root(), wantRoot[:]) {
			t.Fatalf("n=%d: root %x (range %x), sumdb %x", n, gotRoot, r.Root(), wantRoot)
		}
		for q := 0; q < 30; q++ {
			idx := uint64(rng.IntN(n))
			want, err := sumdb.ProveRecord(int64(n), int64(idx), sreader)
			if err != nil {
				t.Fatal(err)
			}
			got, err := InclusionProof(ctx, idx, size, hr)
			if err != nil {
				t.Fatalf("n=%d: InclusionProof(%d): %v", n, idx, err)
			}
			if diff := cmp.Diff(hashesOf(want), got); diff != "" {
				t.Fatalf("n=%d: inclusion proof for %d (-sumdb +tlog):\n%s", n, idx, diff)
			}
			if err := VerifyInclusion(idx, size, LeafHash(leafData(int(idx))), got, gotRoot); err != nil {
				t.Fatalf("n=%d: VerifyInclusion(%d): %v", n, idx, err)
			}
			// Consistency from an earlier size, preferring batch boundaries.
			old := uint64(1 + rng.IntN(n))
			if rng.IntN(2) == 0 {
				old = sizes[rng.IntN(len(sizes))]
			}
			wantC, err := sumdb.ProveTree(int64(n), int64(old), sreader)
			if err != nil {
				t.Fatal(err)
			}
			gotC, err := ConsistencyProof(ctx, old, size, hr)
			if err != nil {
				t.Fatalf("n=%d: ConsistencyProof(%d): %v", n, old, err)
			}
			if diff := cmp.Diff(hashesOf(wantC), gotC); diff != "" {
				t.Fatalf("n=%d: consistency proof from %d (-sumdb +tlog):\n%s", n, old, diff)
			}
			oldRoot, err := RootHash(ctx, old, TileHashReader{Size: old, Tiles: tiles})
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(old, size, gotC, oldRoot, gotRoot); err != nil {
				t.Fatalf("n=%d: VerifyConsistency(%d): %v", n, old, err)
			}
		}
		// Every tile equals sumdb's tile data for the same tree.
		for _, st := range sumdb.NewTiles(TileHeight, 0, int64(n)) {
			want, err := sumdb.ReadTileData(st, sreader)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tiles.ReadTiles(ctx, []Tile{{Level: uint64(st.L), Index: uint64(st.N), Width: st.W}})
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			if !bytes.Equal(got[0], want) {
				t.Fatalf("n=%d: tile %s differs from sumdb", n, st.Path())
			}
		}
	}
}

func hashesOf(p []sumdb.Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i][:]...)
	}
	return out
}

func TestTilePaths(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tile    Tile
		entries bool
		path    string
	}{
		{"zero", Tile{Level: 0, Index: 0, Width: 256}, false, "tile/0/000"},
		{"partial", Tile{Level: 1, Index: 1234067, Width: 17}, false, "tile/1/x001/x234/067.p/17"},
		{"entries", Tile{Index: 1000, Width: 256}, true, "tile/entries/x001/000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.tile.Path()
			if tt.entries {
				p = tt.tile.EntriesPath()
			}
			if p != tt.path {
				t.Errorf("path = %q, want %q", p, tt.path)
			}
			got, entries, err := ParseTilePath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.tile, got); diff != "" || entries != tt.entries {
				t.Errorf("ParseTilePath (-want +got):\n%s entries=%v", diff, entries)
			}
			// sumdb uses the same index encoding (with H in the path).
			if !tt.entries {
				st := sumdb.Tile{H: 8, L: int(tt.tile.Level), N: int64(tt.tile.Index), W: tt.tile.Width}
				if want := "tile/8/" + p[len("tile/"):]; st.Path() != want {
					t.Errorf("sumdb path %q, want %q", st.Path(), want)
				}
			}
		})
	}
	for _, bad := range []string{"tile/0/1", "tile/64/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/001/000", "tile/x/000", "tiles/0/000", "tile/0/-01",
		// Aliases: a leading x000 element, and an index past 2^64-1 that would wrap to 383.
		"tile/0/x000/001", "tile/entries/x000/x000/000.p/4", "tile/0/000.p/+5", "tile/0/x018/x446/x744/x073/x709/x551/999"} {
		if _, _, err := ParseTilePath(bad); !errors.Is(err, ErrBadTilePath) {
			t.Errorf("ParseTilePath(%q) = %v, want ErrBadTilePath", bad, err)
		}
	}
}

// TestTileAtDoesNotWrap: tile 2^56 of level 0 would start at 2^56·256,
// which wraps to 0 in uint64; it does not exist in any tree.
func TestTileAtDoesNotWrap(t *testing.T) {
	for _, index := range []uint64{1 << 56, 1 << 63, 1<<64 - 1} {
		if got := TileAt(0, index, 300); got.Width != 0 {
			t.Errorf("TileAt(0, %d, 300).Width = %d, want 0", index, got.Width)
		}
	}
	if got := TileAt(0, 1, 300); got.Width != 44 {
		t.Errorf("TileAt(0, 1, 300).Width = %d, want 44", got.Width)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestCheckpointSignAndOpen(t *testing.T) {
	key, vkey, err := GenerateLogKey(zeroReader{}, "interlock.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(key) != "[redacted]" {
		t.Errorf("private key prints as %v", key)
	}
	signer, _ := key.Signer()
	verifier, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp := Checkpoint{Origin: "interlock.test/log", Size: 3, Hash: bytes.Repeat([]byte{7}, 32), Time: time.Unix(1700000000, 0).UTC()}
	signed, err := SignCheckpoint(signer, cp)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenCheckpoint(signed, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cp, got); diff != "" {
		t.Errorf("OpenCheckpoint (-want +got):\n%s", diff)
	}
	tampered := bytes.Replace(signed, []byte("\n3\n"), []byte("\n4\n"), 1)
	if _, _, err := OpenCheckpoint(tampered, verifier); err == nil {
		t.Error("OpenCheckpoint accepted a checkpoint whose size was changed")
	}
	_, otherV, _ := GenerateLogKey(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), "interlock.test/log")
	ov, _ := NewVerifier(otherV)
	if _, _, err := OpenCheckpoint(signed, ov); err == nil {
		t.Error("OpenCheckpoint accepted a checkpoint signed by another key")
	}
}

func TestCosignAndWitnessChecks(t *testing.T) {
	key, vkey, _ := GenerateLogKey(zeroReader{}, "interlock.test/log")
	signer, _ := key.Signer()
	logV, _ := NewVerifier(vkey)
	wkey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	w, err := NewCosigner("witness.test", wkey)
	if err != nil {
		t.Fatal(err)
	}
	w.Now = func() time.Time { return time.Unix(1700000123, 0) }
	wv, err := NewVerifier(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}

	// A tree of 5 and its extension to 9.
	r, _ := NewRange(0, nil)
	tiles := memTiles{}
	var ls [][]byte
	for i := 0; i < 9; i++ {
		ls = append(ls, LeafHash(leafData(i)))
	}
	integrate(t, r, tiles, ls[:5])
	cp5 := Checkpoint{Origin: "interlock.test/log", Size: 5, Hash: r.Root()}
	integrate(t, r, tiles, ls[5:])
	cp9 := Checkpoint{Origin: "interlock.test/log", Size: 9, Hash: r.Root()}
	signed9, _ := SignCheckpoint(signer, cp9)
	p, err := ConsistencyProof(context.Background(), 5, 9, TileHashReader{Size: 9, Tiles: tiles})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckExtension(&cp5, cp9, p); err != nil {
		t.Fatalf("CheckExtension(5→9) = %v", err)
	}
	cosigned, line, err := Cosign(signed9, logV, w)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(cosigned, []byte(line)) || !bytes.HasPrefix([]byte(line), []byte("— witness.test ")) {
		t.Errorf("cosignature line %q is not the note's last line", line)
	}
	_, n, err := OpenCheckpoint(cosigned, logV, wv)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Sigs) != 2 {
		t.Fatalf("verified signatures = %d, want log + witness", len(n.Sigs))
	}
	raw, _ := base64.StdEncoding.DecodeString(n.Sigs[1].Base64)
	raw = raw[4:] // key hash
	if ts, _ := CosignatureTime(raw); !ts.Equal(time.Unix(1700000123, 0)) {
		t.Errorf("cosignature time = %v", ts)
	}

	forked := Checkpoint{Origin: cp9.Origin, Size: 9, Hash: LeafHash([]byte("other"))}
	var fork *ForkError
	if err := CheckExtension(&cp9, forked, nil); !errors.As(err, &fork) {
		t.Errorf("CheckExtension(fork) = %v, want ForkError", err)
	}
	var rb *RollbackError
	if err := CheckExtension(&cp9, cp5, nil); !errors.As(err, &rb) {
		t.Errorf("CheckExtension(9→5) = %v, want RollbackError", err)
	}
	bad := Checkpoint{Origin: cp9.Origin, Size: 9, Hash: forked.Hash}
	if err := CheckExtension(&cp5, bad, p); err == nil {
		t.Error("CheckExtension accepted a size-9 root that is not an extension of size 5")
	}
}

func TestVerifyRangeNamesTamperedPage(t *testing.T) {
	ctx := context.Background()
	const size = 700
	leaves := make([][]byte, size)
	hashes := make([][]byte, size)
	r, _ := NewRange(0, nil)
	var set TileSet
	for i := range leaves {
		leaves[i] = []byte(fmt.Sprintf("leaf %d", i))
		hashes[i] = LeafHash(leaves[i])
		if err := r.Append(hashes[i], set.Visit); err != nil {
			t.Fatal(err)
		}
	}
	tiles, data, err := set.Tiles(size, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := mapTiles{}
	for i, tl := range tiles {
		store[tl] = data[i]
	}
	hr := TileHashReader{Size: size, Tiles: store}
	for _, tt := range []struct{ start, end uint64 }{{0, 1}, {0, size}, {255, 513}, {699, 700}, {300, 301}} {
		if err := VerifyRange(ctx, tt.start, hashes[tt.start:tt.end], size, r.Root(), hr); err != nil {
			t.Errorf("VerifyRange(%d–%d) = %v, want nil", tt.start, tt.end, err)
		}
	}
	bad := append([][]byte(nil), hashes[250:260]...)
	bad[3] = LeafHash([]byte("tampered"))
	err = VerifyRange(ctx, 250, bad, size, r.Root(), hr)
	if err == nil || !strings.Contains(err.Error(), "signed root is") || strings.Contains(err.Error(), "[") {
		t.Errorf("VerifyRange of a tampered page = %v, want a sentence with hex roots", err)
	}
}

type mapTiles map[Tile][]byte

func (m mapTiles) ReadTiles(_ context.Context, ts []Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, t := range ts {
		full, ok := m[Tile{Level: t.Level, Index: t.Index, Width: t.Width}]
		if !ok {
			for k, v := range m {
				if k.Level == t.Level && k.Index == t.Index && k.Width >= t.Width {
					full, ok = v[:t.Width*HashSize], true
				}
			}
		}
		if !ok {
			return nil, fmt.Errorf("no tile %s", t.Path())
		}
		out[i] = full
	}
	return out, nil
}
