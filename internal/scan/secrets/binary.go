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

// isPKCS12 reports whether data is a DER-encoded PKCS #12 PFX: version 3
// and an authenticated safe of type data (password integrity) or
// signedData (public-key integrity), with nothing after it.
func isPKCS12(data []byte) bool {
	if len(data) < 32 || data[0] != 0x30 {
		return false
	}
	if data[1] == 0x80 {
		return isBERPKCS12(data)
	}
	var p pfx
	rest, err := asn1.Unmarshal(data, &p)
	if err != nil || len(rest) != 0 || p.Version != 3 {
		return false
	}
	ct := p.AuthSafe.ContentType
	return (ct.Equal(oidData) || ct.Equal(oidSignedData)) && len(p.AuthSafe.Content.Bytes) > 0
}

// derOIDData is the DER encoding of the PKCS #7 data content type.
var derOIDData = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}

// isBERPKCS12 recognises a PFX in BER with indefinite lengths, as some
// Windows and Java tools write it (encoding/asn1 reads DER only): an
// indefinite-length SEQUENCE, INTEGER 3, then a ContentInfo SEQUENCE whose
// type is data.
func isBERPKCS12(data []byte) bool {
	rest, ok := bytes.CutPrefix(data[2:], []byte{0x02, 0x01, 0x03, 0x30})
	if !ok || len(rest) < 1 {
		return false
	}
	// Skip the ContentInfo's length: indefinite, short or long form.
	switch l := rest[0]; {
	case l == 0x80 || l < 0x80:
		rest = rest[1:]
	case l <= 0x84 && len(rest) > int(l&0x7f):
		rest = rest[1+int(l&0x7f):]
	default:
		return false
	}
	return bytes.HasPrefix(rest, derOIDData)
}
