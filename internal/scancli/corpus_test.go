package scancli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
)

// materialize copies testdata/corpus to a temporary directory, removing
// the "@@" splice markers that keep the fake secrets in the repository
// from looking like live credentials.
func materialize(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), []byte(strings.ReplaceAll(string(data), "@@", "")), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type label struct {
	file string
	line int
	kind scan.Kind
}

var wantRe = regexp.MustCompile(`want:(secret|default-credential|misconfiguration|vulnerable-dependency|card-data)\b`)

// labels reads the "want:KIND" markers of every file and the LABELS file.
func labels(t *testing.T, dir string) map[label]bool {
	t.Helper()
	out := map[label]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if rel == "LABELS" {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fs := strings.Fields(sc.Text())
				if len(fs) != 3 || strings.HasPrefix(fs[0], "#") {
					continue
				}
				n, _ := strconv.Atoi(fs[1])
				out[label{fs[0], n, scan.Kind(fs[2])}] = true
			}
			return sc.Err()
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			for _, m := range wantRe.FindAllStringSubmatch(sc.Text(), -1) {
				out[label{rel, n, scan.Kind(m[1])}] = true
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func corpusScan(t *testing.T, dir string) *scan.Result {
	t.Helper()
	o := options{kinds: "secret,default-credential,misconfiguration,vulnerable-dependency,card-data", osvDB: "testdata/osv"}
	kinds := map[string]bool{"secret": true, "default-credential": true, "misconfiguration": true, "vulnerable-dependency": true, "card-data": true}
	dets, err := buildDetectors(o, kinds, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scan.New(scan.Config{Detectors: dets, NoIgnore: true, ExpandArchives: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.ScanDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestCorpusAccuracy scans the labelled corpus and checks recall and
// precision per kind against the goals of issue 5.
func TestCorpusAccuracy(t *testing.T) {
	dir := materialize(t, "testdata/corpus")
	want := labels(t, dir)
	res := corpusScan(t, dir)
	got := map[label][]scan.Finding{}
	for _, f := range res.Findings {
		k := label{f.File, f.Line, f.Kind}
		got[k] = append(got[k], f)
	}
	type score struct{ tp, fp, fn int }
	scores := map[scan.Kind]*score{}
	sc := func(k scan.Kind) *score {
		if scores[k] == nil {
			scores[k] = &score{}
		}
		return scores[k]
	}
	for l := range want {
		if _, ok := got[l]; ok {
			sc(l.kind).tp++
		} else {
			sc(l.kind).fn++
			t.Logf("missed: %s:%d %s", l.file, l.line, l.kind)
		}
	}
	for l, fs := range got {
		if !want[l] {
			sc(l.kind).fp++
			t.Logf("false positive: %s:%d %s %s %s", l.file, l.line, l.kind, fs[0].RuleID, fs[0].Match)
		}
	}
	goals := map[scan.Kind][2]float64{ // recall, precision
		scan.KindSecret:        {0.95, 0.90},
		scan.KindDefaultCred:   {0.90, 0.90},
		scan.KindMisconfig:     {0.90, 0.90},
		scan.KindVulnerableDep: {0.90, 0.90},
		scan.KindCardData:      {0.95, 0.95},
	}
	for _, k := range slices.Sorted(func(yield func(scan.Kind) bool) {
		for k := range scores {
			if !yield(k) {
				return
			}
		}
	}) {
		s := scores[k]
		recall := float64(s.tp) / float64(max(1, s.tp+s.fn))
		precision := float64(s.tp) / float64(max(1, s.tp+s.fp))
		t.Logf("%-22s labelled %3d  tp %3d  fp %3d  fn %3d  recall %.3f  precision %.3f", k, s.tp+s.fn, s.tp, s.fp, s.fn, recall, precision)
		if g, ok := goals[k]; ok && (recall < g[0] || precision < g[1]) {
			t.Errorf("%s: recall %.3f precision %.3f, want at least %.2f / %.2f", k, recall, precision, g[0], g[1])
		}
	}
	// Secret findings per rule family (labels carry only the kind, so this
	// counts reported findings: true and false positives per family).
	rules, _ := secrets.Bundled()
	family := map[string]string{}
	for _, r := range rules {
		family[r.ID] = r.Family
	}
	perFam := map[string][2]int{}
	for l, fs := range got {
		if l.kind != scan.KindSecret {
			continue
		}
		c := perFam[family[fs[0].RuleID]]
		if want[l] {
			c[0]++
		} else {
			c[1]++
		}
		perFam[family[fs[0].RuleID]] = c
	}
	for _, fam := range slices.Sorted(func(yield func(string) bool) {
		for k := range perFam {
			if !yield(k) {
				return
			}
		}
	}) {
		c := perFam[fam]
		t.Logf("  secret family %-9s tp %3d  fp %3d  precision %.3f", fam, c[0], c[1], float64(c[0])/float64(max(1, c[0]+c[1])))
	}
	if scores[scan.KindSecret] == nil || scores[scan.KindDefaultCred] == nil || scores[scan.KindMisconfig] == nil {
		t.Fatalf("corpus lacks labels for a kind: %v", fmt.Sprint(scores))
	}
}
