package scancli

import (
	"bytes"
	"encoding/asn1"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestKeyStoreEvasionsEndToEnd scans key stores written to slip past the
// binary hook: one whose bytes hold no NUL (so the scanner takes it for
// text) and one with bytes appended after the PFX. Each is reported.
func TestKeyStoreEvasionsEndToEnd(t *testing.T) {
	bags := make([]byte, 100)
	for i := range bags {
		bags[i] = byte(1 + i%255)
	}
	octets, err := asn1.Marshal(bags)
	if err != nil {
		t.Fatal(err)
	}
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	textual, err := asn1.Marshal(struct {
		Version  int
		AuthSafe contentInfo
	}{3, contentInfo{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: octets}}})
	if err != nil || bytes.IndexByte(textual, 0) >= 0 {
		t.Fatalf("test PFX: %v % x", err, textual)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"textual.p12":  textual,
		"trailing.p12": append(testPKCS12(t), "appended"...),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := runCmd(t, "", dir, "--kinds", "secret", "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Findings []struct {
			RuleID string `json:"rule_id"`
			File   string `json:"file"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.RuleID+" "+f.File)
	}
	slices.Sort(got)
	if want := []string{"pkcs12-file textual.p12", "pkcs12-file trailing.p12"}; !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}
