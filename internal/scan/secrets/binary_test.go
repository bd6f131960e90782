package secrets

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/interlock-dev/interlock/internal/scan"
)

// fakePKCS12 builds the outer layers of a PKCS #12 file (RFC 7292): a PFX
// of the given version whose authenticated safe, of type contentType,
// holds random bytes standing for the encrypted bags, and a MAC.
func fakePKCS12(t testing.TB, version int, contentType asn1.ObjectIdentifier) []byte {
	t.Helper()
	bags := make([]byte, 600)
	if _, err := rand.Read(bags); err != nil {
		t.Fatal(err)
	}
	inner, err := asn1.Marshal(bags)
	if err != nil {
		t.Fatal(err)
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue // [0] EXPLICIT, built by hand below
	}
	type macData struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		Salt       []byte
		Iterations int
	}
	var mac macData
	mac.Mac.Algorithm = pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}}
	mac.Mac.Digest, mac.Salt, mac.Iterations = bags[:32], bags[32:40], 2048
	der, err := asn1.Marshal(struct {
		Version  int
		AuthSafe contentInfo
		MacData  macData
	}{version, contentInfo{contentType, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}}, mac})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func detectBinary(t testing.TB, d *Detector, path string, data []byte) []scan.Finding {
	t.Helper()
	var got []scan.Finding
	if err := d.DetectBinary(context.Background(), &scan.File{Path: path, Data: data}, func(f scan.Finding) { got = append(got, f) }); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPKCS12File checks that a PKCS #12 key store is reported by its
// structure under any name, and that other DER files (a certificate, a
// PKCS #8 key, which the PEM rules cover in text form), a PFX of another
// version, a cut-short PFX and random bytes are not.
func TestPKCS12File(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	pfx := fakePKCS12(t, 3, oidData)
	for _, path := range []string{"certs/client.p12", "deploy/site.pfx", "src/main/resources/keystore.jks"} {
		got := detectBinary(t, d, path, pfx)
		if len(got) != 1 || got[0].RuleID != "pkcs12-file" || got[0].Line != 1 {
			t.Errorf("%s: reported %v, want one pkcs12-file finding at line 1", path, got)
		}
	}
	if got := detectBinary(t, d, "certs/signed.p12", fakePKCS12(t, 3, oidSignedData)); !hasRule(got, "pkcs12-file") {
		t.Error("a PFX with public-key integrity (signedData) was not reported")
	}
	// The same PFX in BER with indefinite lengths (as some Windows and Java
	// tools write it): outer SEQUENCE and ContentInfo re-encoded.
	ber := append([]byte{0x30, 0x80, 0x02, 0x01, 0x03, 0x30, 0x80}, derOIDData...)
	ber = append(append(ber, pfx[len(pfx)/2:]...), 0, 0, 0, 0)
	if got := detectBinary(t, d, "certs/windows.pfx", ber); !hasRule(got, "pkcs12-file") {
		t.Error("a BER (indefinite-length) PFX was not reported")
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 2048)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	random[0] = 0x30
	for name, data := range map[string][]byte{
		"certificate":   cert,
		"pkcs8 key":     pkcs8,
		"version 2 PFX": fakePKCS12(t, 2, oidData),
		"cut-short PFX": pfx[:len(pfx)/2],
		"PFX of x509":   fakePKCS12(t, 3, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}),
		"random bytes":  random,
		"empty":         nil,
		"one byte 0x30": {0x30},
	} {
		if got := detectBinary(t, d, "certs/file.p12", data); len(got) != 0 {
			t.Errorf("%s reported as %v", name, ruleIDs(got))
		}
	}
}
