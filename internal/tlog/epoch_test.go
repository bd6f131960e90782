package tlog

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// TestEpochLineIsAStandardExtension: a checkpoint of a later epoch still
// parses with the standard C2SP parser (the epoch line is an extension
// line), and round-trips through ours.
func TestEpochLineIsAStandardExtension(t *testing.T) {
	c := Checkpoint{Origin: "interlock.test/log", Size: 130, Hash: make([]byte, 32), Epoch: 2, EpochStart: 120}
	body := c.Marshal()
	var std log.Checkpoint
	rest, err := std.Unmarshal(body)
	if err != nil || std.Size != 130 || string(rest) != "epoch 2 120\n" {
		t.Fatalf("standard parse = %+v, rest %q, %v", std, rest, err)
	}
	got, err := ParseCheckpoint(body)
	if err != nil || got.Epoch != 2 || got.EpochStart != 120 {
		t.Errorf("ParseCheckpoint = %+v, %v", got, err)
	}
	if b := (Checkpoint{Origin: "o", Size: 1, Hash: make([]byte, 32)}).Marshal(); strings.Contains(string(b), "epoch") {
		t.Errorf("an epoch-1 checkpoint carries an epoch line:\n%s", b)
	}
	for _, bad := range []string{"epoch 1 0", "epoch 2 130", "epoch x 1", "epoch 2"} {
		if _, err := ParseCheckpoint([]byte("o\n130\n" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" + bad + "\n")); err == nil {
			t.Errorf("ParseCheckpoint accepted %q", bad)
		}
	}
}

// TestCheckExtensionAcceptsABreakOnlyAsAnEpoch: a smaller tree of the
// same epoch is a rollback; of a later epoch that began inside what was
// seen, an EpochError the caller must resolve with the fork entry.
func TestCheckExtensionAcceptsABreakOnlyAsAnEpoch(t *testing.T) {
	prev := Checkpoint{Origin: "o", Size: 250, Hash: LeafHash([]byte("a"))}
	var rb *RollbackError
	if err := CheckExtension(&prev, Checkpoint{Origin: "o", Size: 88, Hash: LeafHash([]byte("b"))}, nil); !errors.As(err, &rb) {
		t.Errorf("a shorter tree of the same epoch = %v, want a RollbackError", err)
	}
	var ee *EpochError
	next := Checkpoint{Origin: "o", Size: 90, Hash: LeafHash([]byte("b")), Epoch: 2, EpochStart: 88}
	if err := CheckExtension(&prev, next, nil); !errors.As(err, &ee) {
		t.Errorf("a later epoch = %v, want an EpochError", err)
	}
	if err := CheckExtension(&next, prev, nil); err == nil || !strings.Contains(err.Error(), "epoch 1 after one of epoch 2") {
		t.Errorf("going back an epoch = %v", err)
	}
}

// TestCheckForkEntry: the fork entry must be a fork, of the seen epoch,
// naming a signed checkpoint at least as large as what was seen.
func TestCheckForkEntry(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "o")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	old := Checkpoint{Origin: "o", Size: 250, Hash: LeafHash([]byte("a"))}
	oldNote, _ := SignCheckpoint(s, old)
	next := Checkpoint{Origin: "o", Size: 90, Hash: LeafHash([]byte("b")), Epoch: 2, EpochStart: 88}
	leaf := func(kind string, f Fork) []byte {
		data, err := json.Marshal(f.Data())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := LeafV1{Format: LeafFormatV1, Kind: kind, Version: 1, Actor: "person:p", ActorSeq: 1, Subject: "log",
			TimeUnixNano: 1, Data: data, Personal: []byte("{}")}.Marshal()
		return b
	}
	good := Fork{Epoch: 2, BaseSize: 88, BaseRoot: "00", PreviousCheckpoint: string(oldNote), PreviousSize: 250}
	if _, err := CheckForkEntry(old, next, leaf(KindForked, good), v); err != nil {
		t.Errorf("a good fork entry = %v", err)
	}
	if _, err := CheckForkEntry(old, next, leaf("user.invited", good), v); err == nil || !strings.Contains(err.Error(), "not a recorded fork") {
		t.Errorf("another kind at the epoch start = %v", err)
	}
	seenMore := Checkpoint{Origin: "o", Size: 260, Hash: LeafHash([]byte("c"))}
	if _, err := CheckForkEntry(seenMore, next, leaf(KindForked, good), v); err == nil || !strings.Contains(err.Error(), "hides signed entries") {
		t.Errorf("a fork that hides entries a client saw = %v", err)
	}
	forged := good
	forged.PreviousCheckpoint = strings.Replace(string(oldNote), "250", "260", 1)
	if _, err := CheckForkEntry(old, next, leaf(KindForked, forged), v); err == nil {
		t.Error("a fork naming an unsigned checkpoint was accepted")
	}
}
