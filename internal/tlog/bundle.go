package tlog

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// BundleFormat names the export bundle layout.
const BundleFormat = "interlock.log-bundle/v1"

// Bundle is an offline-verifiable slice of the log: entries, each with an
// inclusion proof, and the signed checkpoint the proofs lead to.
type Bundle struct {
	Format string `json:"format"`
	// Checkpoint is the signed note (with any witness cosignatures).
	Checkpoint string        `json:"checkpoint"`
	Entries    []BundleEntry `json:"entries"`
}

// BundleEntry is one entry of a bundle. Personal openings are never
// exported; the leaf carries only their commitments.
type BundleEntry struct {
	Index uint64   `json:"index"`
	Leaf  []byte   `json:"leaf"`
	Proof [][]byte `json:"inclusion_proof"`
}

// BundleReport says what a verified bundle proved.
type BundleReport struct {
	Checkpoint Checkpoint
	Entries    int
}

// VerifyBundle checks a bundle offline with only the log's public key:
// the checkpoint's signature, then every entry's form and inclusion proof.
// A *[VerifyError] names the first bad entry.
func VerifyBundle(data []byte, vkey string) (BundleReport, error) {
	v, err := NewVerifier(vkey)
	if err != nil {
		return BundleReport{}, fmt.Errorf("log key: %v", err)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return BundleReport{}, fmt.Errorf("bundle is not valid JSON: %v", err)
	}
	if b.Format != BundleFormat {
		return BundleReport{}, fmt.Errorf("bundle format %q is not %q", b.Format, BundleFormat)
	}
	cp, _, err := OpenCheckpoint([]byte(b.Checkpoint), v)
	if err != nil {
		return BundleReport{}, err
	}
	for k, e := range b.Entries {
		if k > 0 && e.Index <= b.Entries[k-1].Index {
			return BundleReport{}, &VerifyError{Index: e.Index, Reason: "entries are not in increasing index order"}
		}
		if _, err := ParseLeaf(e.Leaf); err != nil {
			return BundleReport{}, &VerifyError{Index: e.Index, Reason: err.Error()}
		}
		if err := VerifyInclusion(e.Index, cp.Size, LeafHash(e.Leaf), e.Proof, cp.Hash); err != nil {
			return BundleReport{}, &VerifyError{Index: e.Index, Reason: "inclusion proof does not lead to the signed checkpoint: " + err.Error()}
		}
	}
	return BundleReport{Checkpoint: cp, Entries: len(b.Entries)}, nil
}
