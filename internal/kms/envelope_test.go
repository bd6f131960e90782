package kms

import (
	"bytes"
	"strings"
	"testing"
)

func testKEK(t testing.TB) *Sealer {
	t.Helper()
	root, err := NewRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSealer(root, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func init() { fipsExtra = append(fipsExtra, TestEnvelopeRoundTrip) }

// TestEnvelopeRoundTrip checks the envelope format without a store: seal,
// text form, parse, open, and re-wrapping under another version.
func TestEnvelopeRoundTrip(t *testing.T) {
	k1, k2 := testKEK(t).aead, testKEK(t).aead
	canon := Context{"a": "1", "b": "2"}.canonical()
	ct, err := seal(k1, "app", 1, canon, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	text := ct.String()
	if !strings.HasPrefix(text, "ilk:v1:app:1:") {
		t.Fatalf("text form %q", text)
	}
	parsed, err := parseCiphertext(text)
	if err != nil {
		t.Fatal(err)
	}
	pt, ok := open(k1, parsed, canon)
	if !ok || string(pt) != "hello" {
		t.Fatalf("open = %q, %v", pt, ok)
	}
	if _, ok := open(k2, parsed, canon); ok {
		t.Error("opened with another key-encryption key")
	}
	if _, ok := open(k1, parsed, Context{"a": "1"}.canonical()); ok {
		t.Error("opened with another context")
	}
	dk, ok := unwrap(k1, parsed, canon)
	if !ok {
		t.Fatal("unwrap failed")
	}
	re := ciphertext{Key: "app", Version: 2, Body: parsed.Body, Wrapped: k2.Seal(nil, nil, dk, wrapAAD("app", 2, canon))}
	if pt, ok := open(k2, re, canon); !ok || string(pt) != "hello" {
		t.Errorf("rewrapped open = %q, %v", pt, ok)
	}
	relabel := re
	relabel.Version = 3
	if _, ok := open(k2, relabel, canon); ok {
		t.Error("a relabelled version opened")
	}
}

func TestContextCanonical(t *testing.T) {
	// Pairs that concatenate alike must encode differently.
	a := Context{"ab": "c"}.canonical()
	b := Context{"a": "bc"}.canonical()
	if bytes.Equal(a, b) {
		t.Error("ambiguous context encoding")
	}
	if !bytes.Equal(Context{"x": "1", "y": "2"}.canonical(), Context{"y": "2", "x": "1"}.canonical()) {
		t.Error("context encoding depends on map order")
	}
	if len(Context(nil).canonical()) != 0 {
		t.Error("empty context has a non-empty encoding")
	}
}

func TestParseContext(t *testing.T) {
	c, err := ParseContext([]string{"tenant=acme", "note=a=b"})
	if err != nil || c["tenant"] != "acme" || c["note"] != "a=b" {
		t.Errorf("ParseContext = %v, %v", c, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"=v"}, {"k=1", "k=2"}} {
		if _, err := ParseContext(bad); err == nil {
			t.Errorf("ParseContext(%q) succeeded", bad)
		}
	}
}

func BenchmarkSeal1KiB(b *testing.B) {
	k := testKEK(b).aead
	pt := make([]byte, 1024)
	canon := Context{"tenant": "acme"}.canonical()
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := seal(k, "app", 1, canon, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen1KiB(b *testing.B) {
	k := testKEK(b).aead
	canon := Context{"tenant": "acme"}.canonical()
	ct, _ := seal(k, "app", 1, canon, make([]byte, 1024))
	text := ct.String()
	b.SetBytes(1024)
	for b.Loop() {
		p, err := parseCiphertext(text)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := open(k, p, canon); !ok {
			b.Fatal("open failed")
		}
	}
}
