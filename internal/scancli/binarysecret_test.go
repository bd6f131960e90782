package scancli

import (
	"crypto/rand"
	"encoding/asn1"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// testPKCS12 builds the outer layers of a PKCS #12 file (RFC 7292): PFX
// version 3, an authenticated safe of type data holding random bytes for
// the encrypted bags, no MAC.
func testPKCS12(t *testing.T) []byte {
	t.Helper()
	bags := make([]byte, 512)
	if _, err := rand.Read(bags); err != nil {
		t.Fatal(err)
	}
	octets, err := asn1.Marshal(bags)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Version  int
		AuthSafe struct {
			ContentType asn1.ObjectIdentifier
			Content     asn1.RawValue
		}
	}{Version: 3, AuthSafe: struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: octets}}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestBinaryKeyStore scans a tree holding a PKCS #12 key store and another
// binary file: the key store is reported (exit 1) in JSON and in SARIF that
// validates against the 2.1.0 schema; the other binary file is not.
func TestBinaryKeyStore(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "client.p12"), testPKCS12(t), 0o600); err != nil {
		t.Fatal(err)
	}
	other := append([]byte{0x30, 0x82, 0, 0}, make([]byte, 400)...)
	if err := os.WriteFile(filepath.Join(dir, "blob.bin"), other, 0o600); err != nil {
		t.Fatal(err)
	}

	out, errs, code := runCmd(t, "", dir, "--kinds", "secret", "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (a finding)\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Findings []struct {
			RuleID string `json:"rule_id"`
			File   string `json:"file"`
			Line   int    `json:"line"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].RuleID != "pkcs12-file" || rep.Findings[0].File != "client.p12" || rep.Findings[0].Line != 1 {
		t.Errorf("findings %+v, want one pkcs12-file in client.p12 at line 1", rep.Findings)
	}

	sarif, errs, code := runCmd(t, "", dir, "--kinds", "secret", "--format", "sarif")
	if code != 1 {
		t.Fatalf("sarif: exit %d, want 1\n%s", code, errs)
	}
	validateLog(t, officialSARIFSchema(t), sarif)
	if uris := resolvedURIs(t, sarif); len(uris) != 1 || filepath.Base(uris[0]) != "client.p12" {
		t.Errorf("SARIF results at %v, want client.p12 only", uris)
	}
}
