package secrets

import (
	"context"
	"strings"
	"testing"

	"github.com/interlock-dev/interlock/internal/scan"
)

func FuzzDetect(f *testing.F) {
	rs := bundledSet(f)
	for _, r := range rs.Rules()[:40] {
		f.Add(unsplice(r.Examples[0]))
	}
	f.Add("password = \"x\"\n-----BEGIN RSA PRIVATE KEY-----\nAAAA\n")
	// The decoders' shapes: a Secret's data:, a Basic header, base64 JSON,
	// and a template action.
	f.Add("kind: Secret\ndata:\n  token: Z2hwX2FiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4OQ==\n  k: |\n    YWJj\n")
	f.Add("Authorization: Basic Z2hwX2FiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4OQ==")
	f.Add("ZXlKaGJHY2lPaUpJVXpJMU5pSjkuZXlKemRXSWlPaUl4SW4wLmFiY2RlZmdoaWprbG1ub3BxcnN0dQ==")
	f.Add("{{- $password := include \"x\" . }} <apiToken>\n  v\n</apiToken> \\\"token\\\": \\\"abc\\\"")
	// PKCS #12 shapes for the binary rules: BER and DER PFX headers.
	f.Add("0\x80\x02\x01\x030\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01\xa0\x80\x24\x80")
	f.Add("0\x82\x01\x00\x02\x01\x030\x81\x84")
	d := NewDetector(rs, Options{Explain: func(Explanation) {}})
	f.Fuzz(func(t *testing.T, s string) {
		if err := d.DetectBinary(context.Background(), &scan.File{Path: "f.p12", Data: []byte(s)}, func(scan.Finding) {}); err != nil {
			t.Fatal(err)
		}
		file := &scan.File{Path: "f.env", Data: []byte(s)}
		d.Detect(context.Background(), file, func(fd scan.Finding) {
			if fd.Line < 1 || fd.Column < 1 || fd.Fingerprint == "" {
				t.Fatalf("bad finding %+v", fd)
			}
			if len(fd.Match) > 12 && strings.Contains(s, fd.Match) {
				t.Fatalf("unredacted match %q", fd.Match)
			}
		})
	})
}

func FuzzParseRules(f *testing.F) {
	f.Add("rules:\n- id: x\n  keywords: [abc]\n  regex: 'abc(\\d+)'\n  severity: high\n")
	f.Add("rules:\n- id: y\n  prefilter: digits\n  regex: '\\d+'\n")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := Parse([]byte(s))
		if err != nil {
			return
		}
		if _, err := Compile(rules); err != nil {
			t.Fatalf("parsed rules do not compile: %v", err)
		}
	})
}
