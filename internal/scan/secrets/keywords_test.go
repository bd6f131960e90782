package secrets

import (
	"slices"
	"strings"
	"testing"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

type kwHit struct{ P, S, E int }

// oracle finds keyword hits with the reference library.
func oracle(patterns []string, data []byte) []kwHit {
	return oracleAC(patterns)(data)
}

func oracleAC(patterns []string) func([]byte) []kwHit {
	lower := make([]string, len(patterns))
	for i, p := range patterns {
		lower[i] = strings.ToLower(p)
	}
	b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{AsciiCaseInsensitive: true, MatchKind: ahocorasick.StandardMatch, DFA: true})
	ac := b.Build(lower)
	return func(data []byte) []kwHit { return oracleRun(ac, data) }
}

func oracleRun(ac ahocorasick.AhoCorasick, data []byte) []kwHit {
	var hits []kwHit
	it := ac.IterOverlappingByte(data)
	for m := it.Next(); m != nil; m = it.Next() {
		hits = append(hits, kwHit{m.Pattern(), m.Start(), m.End()})
	}
	return hits
}

func ours(patterns []string, data []byte) []kwHit {
	var hits []kwHit
	newKeywordMatcher(patterns).find(data, func(p, s, e int) { hits = append(hits, kwHit{p, s, e}) })
	return hits
}

func sortHits(h []kwHit) []kwHit {
	slices.SortFunc(h, func(a, b kwHit) int {
		if a.S != b.S {
			return a.S - b.S
		}
		if a.E != b.E {
			return a.E - b.E
		}
		return a.P - b.P
	})
	return h
}

func TestKeywordMatcherAgainstLibrary(t *testing.T) {
	rs := bundledSet(t)
	var kws []string
	seen := map[string]bool{}
	for _, r := range rs.Rules() {
		for _, k := range r.Keywords {
			if k := strings.ToLower(k); !seen[k] {
				seen[k] = true
				kws = append(kws, k)
			}
		}
	}
	or := oracleAC(kws)
	m := newKeywordMatcher(kws)
	for _, r := range rs.Rules() {
		for _, ex := range append(slices.Clone(r.Examples), r.Counterexamples...) {
			data := []byte(unsplice(ex) + " PASSWORD=x ghp_ AKIA sk_live_ Token")
			var got []kwHit
			m.find(data, func(p, s, e int) { got = append(got, kwHit{p, s, e}) })
			want, got := sortHits(or(data)), sortHits(got)
			if !slices.Equal(want, got) {
				t.Fatalf("%s: hits differ\nwant %v\n got %v", r.ID, want, got)
			}
		}
	}
}

func FuzzKeywordMatcher(f *testing.F) {
	f.Add("he,she,his,hers", "ushers and HIS sheep")
	f.Add("a,aa,aaa", "aaaaAAAa")
	f.Add("key,api_key,token", "API_KEY=abc token:TOKEN")
	f.Fuzz(func(t *testing.T, pats, data string) {
		var ps []string
		for p := range strings.SplitSeq(pats, ",") {
			if p != "" && len(p) < 20 && !slices.Contains(ps, strings.ToLower(p)) {
				ps = append(ps, strings.ToLower(p))
			}
		}
		if len(ps) == 0 || len(ps) > 50 {
			return
		}
		want, got := sortHits(oracle(ps, []byte(data))), sortHits(ours(ps, []byte(data)))
		if !slices.Equal(want, got) {
			t.Fatalf("patterns %q data %q\nwant %v\n got %v", ps, data, want, got)
		}
	})
}

func FuzzDigitRuns(f *testing.F) {
	f.Add("card 4111 1111 1111 1111 and 1234-5678-9012-3456 x 12345678901234567890")
	f.Add("--1 2 3 4 5 6 7 8 9 0 1 2 3 4--")
	f.Fuzz(func(t *testing.T, s string) {
		var want, got [][2]int
		digitRunsSlow([]byte(s), 13, func(a, b int) { want = append(want, [2]int{a, b}) })
		digitRuns([]byte(s), 13, func(a, b int) { got = append(got, [2]int{a, b}) })
		if !slices.Equal(want, got) {
			t.Fatalf("%q: want %v got %v", s, want, got)
		}
	})
}
