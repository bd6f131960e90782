package tlog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// VerifyCosignature checks one stored C2SP tlog-cosignature/v1 signature
// line ("— name base64\n") over a checkpoint body with the witness's
// verifier key, exactly as a signed-note verifier would (it is
// note.Open over body + blank line + line), and returns the time the
// cosignature carries. Only cosignature/v1 keys are accepted: a plain
// Ed25519 note key signs the body alone, not "cosignature/v1\ntime …".
func VerifyCosignature(vkey string, body []byte, line string) (time.Time, error) {
	v, err := newCosignatureVerifier(vkey)
	if err != nil {
		return time.Time{}, fmt.Errorf("witness key %q: %v", vkey, err)
	}
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		return time.Time{}, errors.New("a cosignature is one signature line ending in a newline")
	}
	n, err := note.Open(append(append(append([]byte(nil), body...), '\n'), line...), note.VerifierList(v))
	if err != nil {
		return time.Time{}, fmt.Errorf("cosignature by %s: %w", v.Name(), err)
	}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			raw, err := decodeSig(s.Base64)
			if err != nil {
				return time.Time{}, err
			}
			return CosignatureTime(raw)
		}
	}
	return time.Time{}, fmt.Errorf("cosignature by %s: not signed by this key", v.Name())
}

// decodeSig decodes a note signature's base64 and drops its 4-byte key hash.
func decodeSig(b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) < 4 {
		return nil, errors.New("malformed signature")
	}
	return raw[4:], nil
}
