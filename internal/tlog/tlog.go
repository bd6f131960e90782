// Package tlog is Interlock's pure transparency-log toolkit: RFC 6962
// hashing (leaf prefix 0x00, node prefix 0x01) via
// github.com/transparency-dev/merkle, inclusion and consistency proofs
// built from a small [HashReader] over stored hashes, C2SP tlog-tiles
// paths and tile hashing, C2SP tlog-checkpoint signed notes, C2SP
// tlog-cosignature witness signatures, the canonical leaf format of
// Interlock's audit log ([LeafV1]), and the verification an offline
// auditor needs: [VerifyEntries] (re-derive a tree from every leaf, check
// actor chains, name the first bad index), [VerifyBundle] (export files)
// and [CheckExtension] (consistency, rollback and fork detection).
//
// tlog does no I/O of its own: storage is reached only through the
// [HashReader] and [TileReader] interfaces its callers implement.
// internal/audit, internal/api and internal/cli may import it.
package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// HashSize is the size of every hash in the tree (SHA-256).
const HashSize = sha256.Size

// NodeID names a node of the tree: Level 0 holds the leaf hashes.
type NodeID = compact.NodeID

// hasher is the RFC 6962 SHA-256 hasher.
var hasher = rfc6962.DefaultHasher

// LeafHash returns the RFC 6962 hash of a leaf: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) []byte { return hasher.HashLeaf(leaf) }

// NodeHash returns the RFC 6962 hash of an interior node: SHA-256(0x01 || l || r).
func NodeHash(l, r []byte) []byte { return hasher.HashChildren(l, r) }

// EmptyRoot is the root hash of the empty tree, SHA-256("").
func EmptyRoot() []byte { return hasher.EmptyRoot() }

// HashReader returns the hashes of complete (perfect) subtrees of the
// tree. ReadHashes MUST return exactly one 32-byte hash per id, in order,
// or an error; it MUST NOT return hashes of nodes that are not yet
// complete in the tree the caller is proving against.
type HashReader interface {
	ReadHashes(ctx context.Context, ids []NodeID) ([][]byte, error)
}

// HashReaderFunc adapts a function to [HashReader].
type HashReaderFunc func(ctx context.Context, ids []NodeID) ([][]byte, error)

// ReadHashes calls f.
func (f HashReaderFunc) ReadHashes(ctx context.Context, ids []NodeID) ([][]byte, error) {
	return f(ctx, ids)
}

func readExactly(ctx context.Context, r HashReader, ids []NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return [][]byte{}, nil
	}
	hs, err := r.ReadHashes(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(ids) {
		return nil, fmt.Errorf("hash reader returned %d hashes for %d nodes", len(hs), len(ids))
	}
	for i, h := range hs {
		if len(h) != HashSize {
			return nil, fmt.Errorf("hash reader returned a %d-byte hash for node %d/%d", len(h), ids[i].Level, ids[i].Index)
		}
	}
	return hs, nil
}

// InclusionProof returns the RFC 6962 audit path for leaf index in the
// tree of the given size, reading O(log size) hashes from r.
func InclusionProof(ctx context.Context, index, size uint64, r HashReader) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("inclusion proof: index %d is not below tree size %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hs, err := readExactly(ctx, r, nodes.IDs)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof %d in %d: %w", index, size, err)
	}
	return nodes.Rehash(hs, hasher.HashChildren)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the
// trees of size1 and size2 (size1 <= size2), reading O(log size2) hashes.
func ConsistencyProof(ctx context.Context, size1, size2 uint64, r HashReader) ([][]byte, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("consistency proof: size %d is larger than %d", size1, size2)
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	hs, err := readExactly(ctx, r, nodes.IDs)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d→%d: %w", size1, size2, err)
	}
	return nodes.Rehash(hs, hasher.HashChildren)
}

// RootHash returns the root hash of the tree of the given size, reading
// at most log2(size)+1 hashes.
func RootHash(ctx context.Context, size uint64, r HashReader) ([]byte, error) {
	if size == 0 {
		return EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	hs, err := readExactly(ctx, r, ids)
	if err != nil {
		return nil, fmt.Errorf("root of tree %d: %w", size, err)
	}
	h := hs[len(hs)-1]
	for i := len(hs) - 2; i >= 0; i-- {
		h = hasher.HashChildren(hs[i], h)
	}
	return h, nil
}

// VerifyInclusion checks that leafHash is at index in the tree of the
// given size and root.
func VerifyInclusion(index, size uint64, leafHash []byte, p [][]byte, root []byte) error {
	return readableProofError(proof.VerifyInclusion(hasher, index, size, leafHash, p, root))
}

// VerifyConsistency checks that the tree (size1, root1) is a prefix of
// the tree (size2, root2).
func VerifyConsistency(size1, size2 uint64, p [][]byte, root1, root2 []byte) error {
	if size1 == 0 {
		// Every tree extends the empty tree; RFC 9162 wants an empty proof.
		if len(p) != 0 {
			return errors.New("consistency proof from the empty tree must be empty")
		}
		return nil
	}
	return readableProofError(proof.VerifyConsistency(hasher, size1, size2, p, root1, root2))
}

// readableProofError turns the merkle package's root mismatch (which
// prints both roots as Go byte slices) into a sentence with hex roots.
func readableProofError(err error) error {
	var rm proof.RootMismatchError
	if errors.As(err, &rm) {
		return fmt.Errorf("the proof leads to root %x, but the signed root is %x", rm.CalculatedRoot, rm.ExpectedRoot)
	}
	return err
}

// Range is a compact Merkle range starting at leaf 0: enough state (at
// most 64 hashes) to append leaves and compute the root. Use it to
// integrate new leaves or to re-derive a root from every entry.
type Range struct {
	r *compact.Range
}

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// NewRange returns the range of a tree of the given size from its
// frontier hashes (as returned by [Range.Frontier]); an empty tree takes
// size 0 and no hashes.
func NewRange(size uint64, frontier [][]byte) (*Range, error) {
	r, err := rangeFactory.NewRange(0, size, frontier)
	if err != nil {
		return nil, fmt.Errorf("tree frontier for size %d: %w", size, err)
	}
	return &Range{r: r}, nil
}

// Size is the number of leaves in the range.
func (r *Range) Size() uint64 { return r.r.End() }

// Frontier returns the hashes of the perfect subtrees that make up the
// range, largest first. They are the state to store between batches.
func (r *Range) Frontier() [][]byte { return r.r.Hashes() }

// Append adds one leaf hash; visit (may be nil) sees every node that
// became complete, the leaf itself included.
func (r *Range) Append(leafHash []byte, visit func(id NodeID, hash []byte)) error {
	return r.r.Append(leafHash, visit)
}

// Root returns the root hash of the tree the range covers.
func (r *Range) Root() []byte {
	if r.r.End() == 0 {
		return EmptyRoot()
	}
	h, _ := r.r.GetRootHash(nil)
	return h
}

// EncodeFrontier concatenates frontier hashes for storage.
func EncodeFrontier(hs [][]byte) []byte { return bytes.Join(hs, nil) }

// DecodeFrontier splits stored frontier bytes into hashes.
func DecodeFrontier(b []byte) ([][]byte, error) {
	if len(b)%HashSize != 0 {
		return nil, fmt.Errorf("tree frontier is %d bytes, not a multiple of %d", len(b), HashSize)
	}
	out := make([][]byte, 0, len(b)/HashSize)
	for i := 0; i < len(b); i += HashSize {
		out = append(out, b[i:i+HashSize:i+HashSize])
	}
	return out, nil
}
