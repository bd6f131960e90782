package secrets

// keywordMatcher finds every occurrence of a set of keywords, ASCII
// case-insensitively and overlapping, in one pass: an Aho-Corasick
// automaton compiled to a dense DFA over byte classes.
//
// Why not a library: github.com/petar-dambovaliev/aho-corasick (which the
// tests use as the reference oracle) dispatches two interface calls per
// input byte and tops out near 100 MB/s per core on source code, the whole
// throughput budget of the scanner; this table walk does one load per byte.
type keywordMatcher struct {
	nc    int // number of byte classes
	class [256]uint8
	// trans[state*nc+class] = (next*nc)<<1 | 1 if next has outputs: state
	// ids are premultiplied so the walk needs no multiplication.
	trans []uint32
	out   [][]int32 // patterns ending at each state (incl. via failure links)
	lens  []int
}

func newKeywordMatcher(patterns []string) *keywordMatcher {
	m := &keywordMatcher{lens: make([]int, len(patterns))}
	lower := func(b byte) byte {
		if b >= 'A' && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	// Byte classes: one per distinct (lower-cased) byte used, 0 for the rest.
	var used [256]bool
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			used[lower(p[i])] = true
		}
	}
	m.nc = 1
	for b := 0; b < 256; b++ {
		if used[b] && (b < 'A' || b > 'Z') {
			m.class[b] = uint8(m.nc)
			m.nc++
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		m.class[b] = m.class[b+'a'-'A']
	}
	if m.nc > 255 {
		panic("keywordMatcher: too many byte classes")
	}
	nc := m.nc
	// Trie.
	goto_ := [][]int32{make([]int32, nc)}
	out := [][]int32{nil}
	for i := range goto_[0] {
		goto_[0][i] = -1
	}
	for pi, p := range patterns {
		m.lens[pi] = len(p)
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.class[lower(p[i])]
			if goto_[s][c] < 0 {
				row := make([]int32, nc)
				for j := range row {
					row[j] = -1
				}
				goto_ = append(goto_, row)
				out = append(out, nil)
				goto_[s][c] = int32(len(goto_) - 1)
			}
			s = goto_[s][c]
		}
		out[s] = append(out[s], int32(pi))
	}
	// Failure links by BFS; fill the DFA.
	n := len(goto_)
	fail := make([]int32, n)
	delta := make([]int32, n*nc)
	queue := make([]int32, 0, n)
	for c := 0; c < nc; c++ {
		if t := goto_[0][c]; t >= 0 {
			delta[c] = t
			fail[t] = 0
			queue = append(queue, t)
		} else {
			delta[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		out[s] = append(out[s], out[fail[s]]...)
		for c := 0; c < nc; c++ {
			if t := goto_[s][c]; t >= 0 {
				fail[t] = delta[int(fail[s])*nc+c]
				delta[int(s)*nc+c] = t
				queue = append(queue, t)
			} else {
				delta[int(s)*nc+c] = delta[int(fail[s])*nc+c]
			}
		}
	}
	m.out = out
	m.trans = make([]uint32, len(delta))
	for i, t := range delta {
		v := uint32(int(t)*nc) << 1
		if len(out[t]) > 0 {
			v |= 1
		}
		m.trans[i] = v
	}
	return m
}

// find calls fn(pattern, start, end) for every occurrence, in order of end.
func (m *keywordMatcher) find(data []byte, fn func(p, start, end int)) {
	trans, class, nc := m.trans, &m.class, m.nc
	st := 0
	for i, b := range data {
		v := trans[st+int(class[b])]
		st = int(v >> 1)
		if v&1 != 0 {
			for _, p := range m.out[st/nc] {
				fn(int(p), i+1-m.lens[p], i+1)
			}
		}
	}
}
