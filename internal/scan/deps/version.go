package deps

import (
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// Compare orders two versions of a package in eco under an OSV range of
// type typ (SEMVER or ECOSYSTEM). "0" is lower than every version.
func Compare(eco, typ, a, b string) int {
	if a == b {
		return 0
	}
	if a == "0" {
		return -1
	}
	if b == "0" {
		return 1
	}
	switch {
	case typ == "SEMVER" || eco == "Go" || eco == "npm" || eco == "crates.io":
		va, vb := canonSemver(a), canonSemver(b)
		if semver.IsValid(va) && semver.IsValid(vb) {
			return semver.Compare(va, vb)
		}
	case eco == "PyPI":
		return comparePEP440(a, b)
	}
	return compareGeneric(a, b)
}

func canonSemver(v string) string {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	// semver.Compare ignores build metadata already; keep as is.
	return v
}

// comparePEP440 orders PEP 440 versions: epoch, release, pre (a/b/rc),
// post and dev segments. Local versions (+…) are ignored.
func comparePEP440(a, b string) int {
	pa, pb := parsePEP440(a), parsePEP440(b)
	if c := cmpInt(pa.epoch, pb.epoch); c != 0 {
		return c
	}
	n := max(len(pa.release), len(pb.release))
	for i := range n {
		var x, y int
		if i < len(pa.release) {
			x = pa.release[i]
		}
		if i < len(pb.release) {
			y = pb.release[i]
		}
		if c := cmpInt(x, y); c != 0 {
			return c
		}
	}
	if c := cmpInt(pa.suffixRank(), pb.suffixRank()); c != 0 {
		return c
	}
	return sign(compareSuffix(pa, pb))
}

type pep440 struct {
	epoch   int
	release []int
	pre     int // 0 none; 1 a; 2 b; 3 rc
	preN    int
	post    int // -1 none
	dev     int // -1 none
}

// suffixRank orders dev < pre < final < post for the same release.
func (p pep440) suffixRank() int {
	switch {
	case p.dev >= 0 && p.pre == 0 && p.post < 0:
		return 0
	case p.pre > 0:
		return 1
	case p.post >= 0:
		return 3
	}
	return 2
}

func compareSuffix(a, b pep440) int {
	if c := cmpInt(a.pre, b.pre); c != 0 {
		return c
	}
	if c := cmpInt(a.preN, b.preN); c != 0 {
		return c
	}
	if c := cmpInt(a.post, b.post); c != 0 {
		return c
	}
	// a dev release sorts before the same version without dev
	da, db := a.dev, b.dev
	if da < 0 {
		da = 1 << 30
	}
	if db < 0 {
		db = 1 << 30
	}
	return cmpInt(da, db)
}

func parsePEP440(v string) pep440 {
	p := pep440{post: -1, dev: -1}
	v = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(v, "v")))
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	if i := strings.IndexByte(v, '!'); i >= 0 {
		p.epoch, _ = strconv.Atoi(v[:i])
		v = v[i+1:]
	}
	i := 0
	for i < len(v) {
		j := i
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		if j == i {
			break
		}
		n, _ := strconv.Atoi(v[i:j])
		p.release = append(p.release, n)
		i = j
		if i < len(v) && v[i] == '.' && i+1 < len(v) && v[i+1] >= '0' && v[i+1] <= '9' {
			i++
			continue
		}
		break
	}
	rest := strings.TrimLeft(v[i:], ".-_")
	for rest != "" {
		var tag string
		for _, t := range []string{"alpha", "beta", "preview", "pre", "rc", "c", "a", "b", "post", "rev", "r", "dev"} {
			if strings.HasPrefix(rest, t) {
				tag = t
				break
			}
		}
		if tag == "" {
			break
		}
		rest = strings.TrimLeft(rest[len(tag):], ".-_")
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		n, _ := strconv.Atoi(rest[:j])
		rest = strings.TrimLeft(rest[j:], ".-_")
		switch tag {
		case "a", "alpha":
			p.pre, p.preN = 1, n
		case "b", "beta":
			p.pre, p.preN = 2, n
		case "rc", "c", "pre", "preview":
			p.pre, p.preN = 3, n
		case "post", "rev", "r":
			p.post = n
		case "dev":
			p.dev = n
		}
	}
	return p
}

// compareGeneric compares dot/dash separated components, numerically
// where both are numbers.
func compareGeneric(a, b string) int {
	fa := strings.FieldsFunc(a, func(r rune) bool { return r == '.' || r == '-' || r == '+' || r == '_' || r == '~' })
	fb := strings.FieldsFunc(b, func(r rune) bool { return r == '.' || r == '-' || r == '+' || r == '_' || r == '~' })
	for i := 0; i < len(fa) || i < len(fb); i++ {
		if i >= len(fa) {
			return -1
		}
		if i >= len(fb) {
			return 1
		}
		x, ex := strconv.Atoi(fa[i])
		y, ey := strconv.Atoi(fb[i])
		var c int
		if ex == nil && ey == nil {
			c = cmpInt(x, y)
		} else {
			c = strings.Compare(fa[i], fb[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sign(c int) int { return cmpInt(c, 0) }
