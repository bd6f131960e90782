package tlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tiles follow C2SP tlog-tiles: tiles of height 8, so a full tile holds
// 256 hashes of one tree level that is a multiple of 8. A partial tile
// holds the first W hashes (1 ≤ W < 256) of a tile that is not yet full.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
)

// Tile names one tile: Level L holds tree level 8·L, Index N the N-th
// tile on that level, Width the number of hashes (256 when full).
type Tile struct {
	Level uint64
	Index uint64
	Width int
}

// TileAt returns the tile of level L and index N as it stands in a tree of
// the given size; Width is 0 when the tile does not exist yet.
func TileAt(level, index, size uint64) Tile {
	if level*TileHeight >= 64 {
		return Tile{Level: level, Index: index}
	}
	n := size >> (level * TileHeight) // complete nodes on this tree level
	w := 0
	// index ≤ n/256 keeps index·256 from wrapping around 2^64 (tile 2^56
	// would otherwise be read as tile 0).
	if index <= n/TileWidth {
		if start := index * TileWidth; n > start {
			w = int(min(uint64(TileWidth), n-start))
		}
	}
	return Tile{Level: level, Index: index, Width: w}
}

// Path returns the C2SP tlog-tiles path of the tile, without prefix:
// "tile/<L>/<N>[.p/<W>]".
func (t Tile) Path() string {
	p := "tile/" + strconv.FormatUint(t.Level, 10) + "/" + encodeTileIndex(t.Index)
	if t.Width < TileWidth {
		p += ".p/" + strconv.Itoa(t.Width)
	}
	return p
}

// EntriesPath returns the C2SP tlog-tiles path of the entry bundle that
// matches a level-0 tile: "tile/entries/<N>[.p/<W>]".
func (t Tile) EntriesPath() string {
	p := "tile/entries/" + encodeTileIndex(t.Index)
	if t.Width < TileWidth {
		p += ".p/" + strconv.Itoa(t.Width)
	}
	return p
}

func encodeTileIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n)
	if len(s)%3 != 0 {
		s = strings.Repeat("0", 3-len(s)%3) + s
	}
	var parts []string
	for i := 0; i < len(s); i += 3 {
		parts = append(parts, s[i:i+3])
	}
	for i := 0; i < len(parts)-1; i++ {
		parts[i] = "x" + parts[i]
	}
	return strings.Join(parts, "/")
}

// ErrBadTilePath reports a path that is not a C2SP tlog-tiles tile path.
var ErrBadTilePath = errors.New("not a tile path")

// ParseTilePath parses "tile/<L>/<N>[.p/<W>]" or
// "tile/entries/<N>[.p/<W>]" (without prefix). entries reports the
// second form, in which Level is 0.
func ParseTilePath(p string) (t Tile, entries bool, err error) {
	bad := func(why string) (Tile, bool, error) {
		return Tile{}, false, fmt.Errorf("%w: %q: %s", ErrBadTilePath, p, why)
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return bad("does not start with tile/")
	}
	first, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("too short")
	}
	if first == "entries" {
		entries = true
	} else {
		l, err := strconv.ParseUint(first, 10, 8)
		if err != nil || l > 63 || (len(first) > 1 && first[0] == '0') {
			return bad("level is not a number from 0 to 63")
		}
		t.Level = l
	}
	t.Width = TileWidth
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, err := strconv.ParseUint(rest[i+3:], 10, 8) // no sign: "+5" is no second spelling of "5"
		if err != nil || w < 1 || w >= TileWidth || rest[i+3] == '0' {
			return bad("partial width is not a number from 1 to 255")
		}
		t.Width = int(w)
		rest = rest[:i]
	}
	parts := strings.Split(rest, "/")
	var n uint64
	for i, part := range parts {
		last := i == len(parts)-1
		if !last {
			var ok bool
			if part, ok = strings.CutPrefix(part, "x"); !ok {
				return bad("index element lacks its x prefix")
			}
		}
		if len(part) != 3 {
			return bad("index elements have three digits")
		}
		d, err := strconv.ParseUint(part, 10, 16)
		if err != nil {
			return bad("index element is not decimal")
		}
		if i == 0 && !last && d == 0 {
			// One index, one path: "x000/001" would be a second spelling of "001".
			return bad("index has a leading x000 element")
		}
		if n > (1<<64-1-d)/1000 {
			return bad("index too large")
		}
		n = n*1000 + d
	}
	t.Index = n
	return t, entries, nil
}

// TileReader returns tile data: for each tile exactly 32·Width bytes, the
// hashes of tree level 8·Level at positions Index·256 … Index·256+Width-1.
// An implementation that stores a wider version of a partial tile MUST
// return only its first Width hashes.
type TileReader interface {
	ReadTiles(ctx context.Context, tiles []Tile) ([][]byte, error)
}

// TileHashReader serves [HashReader] requests for a tree of size Size
// from tiles: a node on level l is computed from at most 2^(l mod 8)
// hashes of one tile, so a proof costs O(log n) tile reads, all issued
// in one ReadTiles call.
type TileHashReader struct {
	Size  uint64
	Tiles TileReader
}

type tileRef struct{ level, index uint64 }

// ReadHashes implements [HashReader].
func (r TileHashReader) ReadHashes(ctx context.Context, ids []NodeID) ([][]byte, error) {
	type need struct {
		ref         tileRef
		first, span uint64 // position within the tile and number of hashes
	}
	needs := make([]need, len(ids))
	index := map[tileRef]int{}
	var tiles []Tile
	for i, id := range ids {
		l := uint64(id.Level) / TileHeight
		s := uint64(id.Level) % TileHeight
		first := id.Index << s
		span := uint64(1) << s
		ref := tileRef{l, first / TileWidth}
		t := TileAt(l, ref.index, r.Size)
		if uint64(t.Width) < first%TileWidth+span {
			return nil, fmt.Errorf("node %d/%d is not complete in a tree of size %d", id.Level, id.Index, r.Size)
		}
		needs[i] = need{ref: ref, first: first % TileWidth, span: span}
		if _, ok := index[ref]; !ok {
			index[ref] = len(tiles)
			tiles = append(tiles, t)
		}
	}
	data, err := r.Tiles.ReadTiles(ctx, tiles)
	if err != nil {
		return nil, err
	}
	if len(data) != len(tiles) {
		return nil, fmt.Errorf("tile reader returned %d tiles for %d", len(data), len(tiles))
	}
	for i, t := range tiles {
		if len(data[i]) != t.Width*HashSize {
			return nil, fmt.Errorf("tile %s is %d bytes, want %d", t.Path(), len(data[i]), t.Width*HashSize)
		}
	}
	out := make([][]byte, len(ids))
	for i, n := range needs {
		d := data[index[n.ref]]
		out[i] = subtreeHash(d[n.first*HashSize : (n.first+n.span)*HashSize])
	}
	return out, nil
}

// subtreeHash folds 2^k consecutive hashes into the root of their perfect
// subtree, hashing in place in one scratch buffer.
func subtreeHash(b []byte) []byte {
	n := len(b) / HashSize
	work := append([]byte(nil), b...)
	var in [1 + 2*HashSize]byte
	in[0] = 1 // RFC 6962 node prefix
	for ; n > 1; n /= 2 {
		for i := 0; i < n/2; i++ {
			copy(in[1:], work[2*i*HashSize:(2*i+2)*HashSize])
			h := sha256.Sum256(in[:])
			copy(work[i*HashSize:], h[:])
		}
	}
	return work[:HashSize:HashSize]
}

// TileSet collects the tile hashes produced while appending leaves to a
// [Range]: pass its Visit method as the visitor. Tiles returns every tile
// that changed, at its new width, given the stored data of the tiles on
// the right edge before the batch (see [TileSet.EdgeTiles]).
type TileSet struct {
	// hashes maps a tile to the new hashes appended to it, by position.
	added map[tileRef]map[uint64][]byte
}

// Visit records node hashes on tile levels (levels that are multiples of 8).
func (s *TileSet) Visit(id NodeID, hash []byte) {
	if id.Level%TileHeight != 0 {
		return
	}
	if s.added == nil {
		s.added = map[tileRef]map[uint64][]byte{}
	}
	ref := tileRef{uint64(id.Level) / TileHeight, id.Index / TileWidth}
	m := s.added[ref]
	if m == nil {
		m = map[uint64][]byte{}
		s.added[ref] = m
	}
	m[id.Index%TileWidth] = hash
}

// EdgeTiles returns the partial tiles of a tree of the given size: the
// ones whose stored data a batch may extend. Read them before calling
// [TileSet.Tiles].
func EdgeTiles(size uint64) []Tile {
	var out []Tile
	for l := uint64(0); l*TileHeight < 64; l++ {
		n := size >> (l * TileHeight)
		if n == 0 {
			break
		}
		if w := n % TileWidth; w != 0 {
			out = append(out, Tile{Level: l, Index: n / TileWidth, Width: int(w)})
		}
	}
	return out
}

// Tiles returns the changed tiles of the tree of size newSize with their
// full data. edge holds the data of [EdgeTiles] of the old size, keyed by
// the tile (level and index; width as stored).
func (s *TileSet) Tiles(newSize uint64, edge map[Tile][]byte) ([]Tile, [][]byte, error) {
	old := map[tileRef][]byte{}
	for t, d := range edge {
		old[tileRef{t.Level, t.Index}] = d
	}
	var tiles []Tile
	var data [][]byte
	for ref, added := range s.added {
		t := TileAt(ref.level, ref.index, newSize)
		if t.Width == 0 {
			return nil, nil, fmt.Errorf("tile %d/%d is not in a tree of size %d", ref.level, ref.index, newSize)
		}
		d := make([]byte, t.Width*HashSize)
		copy(d, old[ref])
		for pos := uint64(0); pos < uint64(t.Width); pos++ {
			h, ok := added[pos]
			if ok {
				copy(d[pos*HashSize:], h)
			} else if int(pos+1)*HashSize > len(old[ref]) {
				return nil, nil, fmt.Errorf("tile %d/%d: hash %d is neither stored nor new", ref.level, ref.index, pos)
			}
		}
		tiles = append(tiles, t)
		data = append(data, d)
	}
	return tiles, data, nil
}
