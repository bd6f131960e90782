package secrets

import (
	"bytes"
	"context"
	"encoding/asn1"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

// noNUL returns a PFX (version 3, an authenticated safe of type data
// holding stand-in bags, no MAC) whose bytes hold no NUL: the scanner
// then takes it for text, as it takes any file without a NUL in its
// first 8 KiB, and it must still be found.
func noNUL(t *testing.T) []byte {
	t.Helper()
	bags := make([]byte, 100)
	for i := range bags {
		bags[i] = byte(1 + i%255)
	}
	inner, err := asn1.Marshal(bags)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue
		}
	}{3, struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}{oidData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(der, 0) >= 0 || !isPKCS12(der) {
		t.Fatalf("the test PFX holds a NUL or is not a PFX: % x", der)
	}
	return der
}

// TestPKCS12Evasions writes key stores the ways the tools that read them
// accept but the structural check may not: with bytes after the PFX
// (OpenSSL and Java read one ASN.1 value and stop), in BER with a
// definite outer length and an indefinite inner one, and without any NUL
// byte so that the file passes for text. Each is reported.
func TestPKCS12Evasions(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	pfx := fakePKCS12(t, 3, oidData)
	trailing := append(append([]byte{}, pfx...), "trailing bytes"...)
	if got := detectBinary(t, d, "a.p12", trailing); !hasRule(got, "pkcs12-file") {
		t.Errorf("a PFX followed by other bytes was not reported: %v", got)
	}
	// Outer SEQUENCE with a definite length, ContentInfo indefinite.
	body := append([]byte{0x02, 0x01, 0x03, 0x30, 0x80}, derOIDData...)
	body = append(body, 0xa0, 0x80, 0x04, 0x04, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0)
	body = append(body, bytes.Repeat([]byte{0x04, 0x02, 9, 9}, 8)...)
	mixed := append([]byte{0x30, 0x81, byte(len(body))}, body...)
	if got := detectBinary(t, d, "b.p12", mixed); !hasRule(got, "pkcs12-file") {
		t.Errorf("a PFX in BER with a definite outer length was not reported: %v", got)
	}
	text := noNUL(t)
	var got []scan.Finding
	if err := d.Detect(context.Background(), &scan.File{Path: "c.p12", Data: text}, func(f scan.Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	if !hasRule(got, "pkcs12-file") {
		t.Errorf("a PFX without NUL bytes (taken for text) was not reported: %v", got)
	}
}
