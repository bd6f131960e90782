package tlog

import (
	"bytes"
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// VerifyRange checks that leafHashes are the leaves start, start+1, … of
// the tree of the given size and root, reading O(log size) hashes of the
// rest of the tree from r (which is not trusted: the root is). It is how
// a reader verifies a page of entries with one proof instead of one per
// entry. It says only whether the whole range is in the tree; use
// inclusion proofs to find which entry is not.
func VerifyRange(ctx context.Context, start uint64, leafHashes [][]byte, size uint64, root []byte, r HashReader) error {
	end := start + uint64(len(leafHashes))
	if end > size || len(leafHashes) == 0 {
		return fmt.Errorf("range %d–%d is not inside a tree of %d entries", start, end, size)
	}
	leftIDs := compact.RangeNodes(0, start, nil)
	rightIDs := compact.RangeNodes(end, size, nil)
	hs, err := readExactly(ctx, r, append(append([]NodeID(nil), leftIDs...), rightIDs...))
	if err != nil {
		return fmt.Errorf("hashes around entries %d–%d: %w", start, end-1, err)
	}
	f := compact.RangeFactory{Hash: hasher.HashChildren}
	// Copies: merging appends to a range's hashes, which must not
	// overwrite the right range's in the shared backing array.
	left, err := f.NewRange(0, start, append([][]byte(nil), hs[:len(leftIDs)]...))
	if err != nil {
		return err
	}
	mid := f.NewEmptyRange(start)
	for _, h := range leafHashes {
		if err := mid.Append(h, nil); err != nil {
			return err
		}
	}
	right, err := f.NewRange(end, size, append([][]byte(nil), hs[len(leftIDs):]...))
	if err != nil {
		return err
	}
	if err := left.AppendRange(mid, nil); err != nil {
		return err
	}
	if err := left.AppendRange(right, nil); err != nil {
		return err
	}
	got, err := left.GetRootHash(nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, root) {
		return fmt.Errorf("entries %d–%d with the tree's other hashes lead to root %x, but the signed root is %x", start, end-1, got, root)
	}
	return nil
}
