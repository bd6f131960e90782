package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// TestOneWitnessKeyUnderTwoNamesCountsOnce: a cosignature/v1 signature
// does not cover the witness's name, so whoever holds one genuine
// cosignature by witness key K (named w1) can relabel it as a
// cosignature by "w2" with the same K. Told to trust w1 and w2, log
// verify --min-witnesses 2 must see one witness, not two.
func TestOneWitnessKeyUnderTwoNamesCountsOnce(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "interlock/log")
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := note.NewSigner(skey)
	lv, _ := note.NewVerifier(vkey)
	signed, err := tlog.SignCheckpoint(ls, tlog.Checkpoint{Origin: "interlock/log", Size: 3, Hash: make([]byte, 32), Time: time.Unix(1_800_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	w1, err := tlog.NewCosigner("w1.example/witness", priv)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, line, err := tlog.Cosign(signed, lv, w1)
	if err != nil {
		t.Fatal(err)
	}
	// The relabelled line: same timestamp and signature, w2's key hash.
	raw, err := base64.StdEncoding.DecodeString(strings.Fields(line)[2])
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(append([]byte("w2.example/witness\n\x04"), pub...))
	copy(raw[:4], h[:4])
	forged := append(append([]byte(nil), cosigned...), "— w2.example/witness "+base64.StdEncoding.EncodeToString(raw)+"\n"...)
	w2vkey := fmt.Sprintf("w2.example/witness+%08x+%s", binary.BigEndian.Uint32(h[:4]), strings.SplitN(w1.VerifierKey(), "+", 3)[2])
	if _, err := tlog.NewVerifier(w2vkey); err != nil {
		t.Fatalf("w2's key: %v", err)
	}

	got, err := requireCosignatures(forged, lv, []string{w1.VerifierKey(), w2vkey}, 2)
	if err == nil {
		t.Fatalf("--min-witnesses 2 passed with one witness key under two names (counted %v)", got)
	}
	if !strings.Contains(err.Error(), "same key") {
		t.Errorf("error %q does not say the two names share a key", err)
	}
	// One of them is one witness.
	if got, err := requireCosignatures(forged, lv, []string{w1.VerifierKey(), w2vkey}, 1); err != nil || len(got) != 1 {
		t.Errorf("--min-witnesses 1 = %v, %v; want one witness", got, err)
	}
}
