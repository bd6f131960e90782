package tlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// The leaf format of Interlock's audit log (written by internal/audit,
// verified here and by the CLI).

// KindRedacted is the entry that records a redaction; its Data names the
// redacted index ("index").
const KindRedacted = "log.redacted"

// LeafFormatV1 names the version-1 leaf layout.
const LeafFormatV1 = "interlock.audit/v1"

// LeafV1 is the canonical leaf: the bytes hashed into the tree are
// exactly json.Marshal(LeafV1) (fields in this order, Data and Personal
// as canonical JSON objects). Its layout is versioned by Format.
type LeafV1 struct {
	Format  string `json:"format"`
	Kind    string `json:"kind"`
	Version int    `json:"version"`
	Actor   string `json:"actor"`
	// ActorSeq counts the actor's entries from 1.
	ActorSeq uint64 `json:"actor_seq"`
	// ActorPrev is the hex leaf hash of the actor's previous entry ("" for
	// its first).
	ActorPrev      string          `json:"actor_prev"`
	Subject        string          `json:"subject"`
	TimeUnixNano   int64           `json:"time_unix_nano"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Data           json.RawMessage `json:"data"`
	// Personal maps each personal field name to its hex [Commitment].
	Personal json.RawMessage `json:"personal"`
}

// Marshal returns the canonical leaf bytes: exactly what
// encoding/json.Marshal(l) returns when Data and Personal are compact,
// written by hand because verification re-encodes every leaf.
func (l LeafV1) Marshal() ([]byte, error) {
	b := make([]byte, 0, 256+len(l.Data)+len(l.Personal))
	b = append(b, `{"format":`...)
	b = appendJSONString(b, l.Format)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, l.Kind)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(l.Version), 10)
	b = append(b, `,"actor":`...)
	b = appendJSONString(b, l.Actor)
	b = append(b, `,"actor_seq":`...)
	b = strconv.AppendUint(b, l.ActorSeq, 10)
	b = append(b, `,"actor_prev":`...)
	b = appendJSONString(b, l.ActorPrev)
	b = append(b, `,"subject":`...)
	b = appendJSONString(b, l.Subject)
	b = append(b, `,"time_unix_nano":`...)
	b = strconv.AppendInt(b, l.TimeUnixNano, 10)
	if l.IdempotencyKey != "" {
		b = append(b, `,"idempotency_key":`...)
		b = appendJSONString(b, l.IdempotencyKey)
	}
	b = append(b, `,"data":`...)
	b = appendRaw(b, l.Data)
	b = append(b, `,"personal":`...)
	b = appendRaw(b, l.Personal)
	return append(b, '}'), nil
}

func appendRaw(b, raw []byte) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// appendJSONString appends s as encoding/json writes it (HTML-safe).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ParseLeaf decodes canonical leaf bytes and checks that they are
// canonical (re-encoding gives the same bytes).
func ParseLeaf(b []byte) (LeafV1, error) {
	var l LeafV1
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return LeafV1{}, fmt.Errorf("leaf is not a valid entry: %v", err)
	}
	if l.Format != LeafFormatV1 {
		return LeafV1{}, fmt.Errorf("leaf format %q is not %q", l.Format, LeafFormatV1)
	}
	again, err := l.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		return LeafV1{}, errors.New("leaf is not in canonical form")
	}
	return l, nil
}

// PersonalCommitment is the salted hash of one personal value, as a
// leaf's personal object holds it (hex-encoded):
// SHA-256("interlock/audit/personal/v1" || 0 || salt || name || 0 || value).
// It lives here, not only in internal/audit, so that a client holding the
// opening (value and salt) checks it against the signed leaf itself.
func PersonalCommitment(name string, salt []byte, value string) []byte {
	h := sha256.New()
	h.Write([]byte("interlock/audit/personal/v1\x00"))
	h.Write(salt)
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return h.Sum(nil)
}

// CheckPersonal checks that each personal value opens, with its salt, the
// commitment the leaf holds for it.
func (l LeafV1) CheckPersonal(values map[string]string, salts map[string][]byte) error {
	commits, err := l.Commitments()
	if err != nil {
		return err
	}
	for name, v := range values {
		c, ok := commits[name]
		if !ok {
			return fmt.Errorf("personal field %q is not committed to in the entry", name)
		}
		salt, ok := salts[name]
		if !ok {
			return fmt.Errorf("personal field %q came without its salt, so it cannot be checked against the entry", name)
		}
		if hex.EncodeToString(PersonalCommitment(name, salt, v)) != c {
			return fmt.Errorf("personal field %q does not match the commitment the signed entry holds for it: it was altered where it is stored", name)
		}
	}
	return nil
}

// Commitments decodes the leaf's personal commitments.
func (l LeafV1) Commitments() (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal(l.Personal, &m); err != nil {
		return nil, fmt.Errorf("leaf personal commitments: %v", err)
	}
	return m, nil
}

// LeafFields are the fields of a leaf that verification looks at.
type LeafFields = verifyLeaf

// verifyLeaf is the part of a leaf verification looks at.
type verifyLeaf struct {
	Format    string
	Kind      string
	Actor     string
	ActorSeq  uint64
	ActorPrev string
	Time      int64 // unix nanoseconds
	Data      json.RawMessage
	Personal  json.RawMessage
}

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
	neg := p.ok() && p.i < len(b) && b[p.i] == '-'
	if neg {
		p.i++
	}
	l.Time = int64(p.num())
	if neg {
		l.Time = -l.Time
	}
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
