package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// parseVerifyLeaf reads the fields verification needs from a canonical
// leaf in one pass, without reflection. It accepts exactly the layout
// LeafV1.Marshal writes (fields in order, no whitespace); anything else
// is an error.
func parseVerifyLeaf(b []byte) (verifyLeaf, error) {
	var l verifyLeaf
	p := leafParser{b: b}
	p.lit(`{"format":`)
	l.Format = p.str()
	p.lit(`,"kind":`)
	l.Kind = p.str()
	p.lit(`,"version":`)
	p.num()
	p.lit(`,"actor":`)
	l.Actor = p.str()
	p.lit(`,"actor_seq":`)
	l.ActorSeq = p.num()
	p.lit(`,"actor_prev":`)
	l.ActorPrev = p.str()
	p.lit(`,"subject":`)
	p.str()
	p.lit(`,"time_unix_nano":`)
	if p.ok() && p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	p.num()
	if p.ok() && bytes.HasPrefix(b[p.i:], []byte(`,"idempotency_key":`)) {
		p.lit(`,"idempotency_key":`)
		p.str()
	}
	p.lit(`,"data":`)
	l.Data = p.object()
	p.lit(`,"personal":`)
	l.Personal = p.object()
	p.lit(`}`)
	if !p.ok() || p.i != len(b) {
		return verifyLeaf{}, errors.New("leaf is not in canonical form")
	}
	return l, nil
}

type leafParser struct {
	b   []byte
	i   int
	bad bool
}

func (p *leafParser) ok() bool { return !p.bad }

func (p *leafParser) lit(s string) {
	if p.bad || !bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.bad = true
		return
	}
	p.i += len(s)
}

func (p *leafParser) num() uint64 {
	if p.bad {
		return 0
	}
	j := p.i
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseUint(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		p.bad = true
		return 0
	}
	p.i = j
	return n
}

// str reads a JSON string; escaped strings are decoded with encoding/json.
func (p *leafParser) str() string {
	if p.bad || p.i >= len(p.b) || p.b[p.i] != '"' {
		p.bad = true
		return ""
	}
	j, esc := p.i+1, false
	for ; j < len(p.b) && p.b[j] != '"'; j++ {
		if p.b[j] == '\\' {
			esc = true
			j++
		}
	}
	if j >= len(p.b) {
		p.bad = true
		return ""
	}
	raw := p.b[p.i : j+1]
	p.i = j + 1
	if !esc {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.bad = true
	}
	return s
}

// object skips a JSON object, honouring strings, and returns its bytes.
func (p *leafParser) object() json.RawMessage {
	if p.bad || p.i >= len(p.b) || p.b[p.i] != '{' {
		p.bad = true
		return nil
	}
	depth, j := 0, p.i
	for ; j < len(p.b); j++ {
		switch p.b[j] {
		case '"':
			for j++; j < len(p.b) && p.b[j] != '"'; j++ {
				if p.b[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		if depth == 0 {
			break
		}
	}
	if j >= len(p.b) {
		p.bad = true
		return nil
	}
	raw := p.b[p.i : j+1]
	p.i = j + 1
	return raw
}
