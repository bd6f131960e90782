package secrets

import (
	"bytes"
	"context"
	"encoding/asn1"

	"github.com/interlock-dev/interlock/internal/scan"
)

// DetectBinary implements [scan.BinaryDetector]: it runs the binary rules
// (see Rule.Binary) on a file the scanner found to be binary.
func (d *Detector) DetectBinary(ctx context.Context, f *scan.File, emit func(scan.Finding)) error {
	for _, ri := range d.rs.binRules {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := &d.rs.rules[ri]
		if r.pathRe != nil && !r.pathRe.MatchString(f.Path) {
			continue
		}
		if r.Validate != "pkcs12" || !isPKCS12(f.Data) {
			continue
		}
		fd := f.FindingAt(1, 1)
		fd.Kind = scan.KindSecret
		fd.RuleID = r.ID
		fd.Severity = r.Severity
		fd.Match = "(binary " + r.Name + ")"
		fd.Fingerprint = scan.Fingerprint(string(f.Data))
		fd.Message = r.Message
		if fd.Message == "" {
			fd.Message = r.Name + " found"
		}
		fd.Fix = r.Fix
		emit(fd)
	}
	return nil
}

// pfx is the outer structure of a PKCS #12 file (RFC 7292, section 4):
// PFX ::= SEQUENCE { version INTEGER {v3(3)}, authSafe ContentInfo,
// macData MacData OPTIONAL }. Only the outer layers are read; the bags
// inside are usually encrypted with a password we do not have. The
// golang.org/x/crypto/pkcs12 decoder needs that password, so this small
// structural check is written here.
type pfx struct {
	Version  int
	AuthSafe struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
	}
	MacData asn1.RawValue `asn1:"optional"`
}

var (
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// isPKCS12 reports whether data is a PKCS #12 PFX: version 3 and an
// authenticated safe of type data (password integrity) or signedData
// (public-key integrity), in DER or in BER with indefinite lengths. Bytes
// after it are allowed, as OpenSSL and Java read one ASN.1 value and stop
// there: a key store with bytes appended still loads.
func isPKCS12(data []byte) bool {
	if len(data) < 32 || data[0] != 0x30 {
		return false
	}
	var p pfx
	if _, err := asn1.Unmarshal(data, &p); err == nil {
		ct := p.AuthSafe.ContentType
		return p.Version == 3 && (ct.Equal(oidData) || ct.Equal(oidSignedData)) && len(p.AuthSafe.Content.Bytes) > 0
	}
	return isBERPKCS12(data)
}

// DER encodings of the PKCS #7 data and signedData content types.
var (
	derOIDData       = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	derOIDSignedData = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
)

// isBERPKCS12 recognises a PFX in BER, as some Windows and Java tools
// write it (encoding/asn1 reads DER only): a SEQUENCE, INTEGER 3, then a
// ContentInfo SEQUENCE whose type is data or signedData, where the outer
// SEQUENCE or the ContentInfo has an indefinite length (a DER PFX cut
// short, which no tool loads, has none).
func isBERPKCS12(data []byte) bool {
	rest, outerIndefinite, ok := skipLength(data[1:])
	if !ok {
		return false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte{0x02, 0x01, 0x03, 0x30}); !ok {
		return false
	}
	rest, innerIndefinite, ok := skipLength(rest)
	return ok && (outerIndefinite || innerIndefinite) && (bytes.HasPrefix(rest, derOIDData) || bytes.HasPrefix(rest, derOIDSignedData))
}

// skipLength steps over a BER length: indefinite, short or long form.
func skipLength(b []byte) (rest []byte, indefinite, ok bool) {
	if len(b) < 1 {
		return nil, false, false
	}
	switch l := b[0]; {
	case l == 0x80:
		return b[1:], true, true
	case l < 0x80:
		return b[1:], false, true
	case l <= 0x84 && len(b) > int(l&0x7f):
		return b[1+int(l&0x7f):], false, true
	}
	return nil, false, false
}
