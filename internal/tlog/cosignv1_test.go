package tlog

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func TestVerifyCosignature(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	w, err := NewCosigner("interlock-agent/h-1", priv)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_800_000_000, 0).UTC()
	w.Now = func() time.Time { return at }
	skey, vkey, _ := note.GenerateKey(nil, "interlock/log")
	logSigner, _ := note.NewSigner(skey)
	logVerifier, _ := note.NewVerifier(vkey)
	body := Checkpoint{Origin: "interlock/log", Size: 7, Hash: make([]byte, HashSize)}.Marshal()
	signed, _ := note.Sign(&note.Note{Text: string(body)}, logSigner)
	cosigned, line, err := Cosign(signed, logVerifier, w)
	if err != nil {
		t.Fatal(err)
	}
	// The same line verifies with sumdb/note's own verifier list holding
	// the cosignature key: the helper agrees with note.Open.
	wv, err := NewVerifier(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(cosigned, note.VerifierList(logVerifier, wv)); err != nil {
		t.Fatalf("note.Open of the cosigned checkpoint: %v", err)
	}
	got, err := VerifyCosignature(w.VerifierKey(), body, line)
	if err != nil || !got.Equal(at) {
		t.Fatalf("VerifyCosignature = %v, %v; want %v", got, err, at)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	w2, _ := NewCosigner("interlock-agent/h-1", other)
	tampered := strings.Replace(string(body), "7\n", "8\n", 1)
	for name, tc := range map[string]struct {
		vkey, body, line string
	}{
		"another key of the same name": {w2.VerifierKey(), string(body), line},
		"a changed checkpoint":         {w.VerifierKey(), tampered, line},
		"the log's Ed25519 key":        {vkey, string(body), line},
		"two lines":                    {w.VerifierKey(), string(body), line + line},
		"no newline":                   {w.VerifierKey(), string(body), strings.TrimSuffix(line, "\n")},
	} {
		if _, err := VerifyCosignature(tc.vkey, []byte(tc.body), tc.line); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
