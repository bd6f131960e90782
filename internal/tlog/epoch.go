package tlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Epochs: how a log that lost part of its history goes on, in the record.
//
// A log whose database was rolled back (a restored backup, or an attacker
// who cut the tables back) can no longer extend the checkpoint its signer
// last signed. Its signer refuses until an admin forks it. The fork is an
// entry (kind [KindForked]) appended to what is left of the tree: it names
// the checkpoint the signer remembered and the root of the tree it now
// continues. Checkpoints signed after it carry an extension line
//
//	epoch <N> <index of the fork entry>
//
// so that every verifier that saw a checkpoint of the old epoch learns,
// from a signed statement, that the break is a recorded fork and where
// its entry is — and refuses any other rollback.
//
// Why an extension line and not a new origin: the origin is the name of
// the log's key (C2SP signed-note convention, checked by every client), so
// a new origin means a new key that no pinned client trusts. Keeping the
// origin and key keeps every existing verifier working; standard C2SP
// parsers (golang.org/x/mod/sumdb/note, transparency-dev/formats/log)
// ignore extension lines. A witness that cosigned the old epoch sees an
// inconsistent tree and stops cosigning until its operator reviews the fork
// entry — which is what a witness is for. Epoch 1 checkpoints have no
// epoch line, so a log that never forked signs exactly what it did before.

// KindForked is the entry that begins a new epoch; its Data is a [Fork].
const KindForked = "log.forked"

const epochExtension = "epoch "

// Fork is the Data of a [KindForked] entry.
type Fork struct {
	// Epoch is the epoch this entry begins (2 for the first fork).
	Epoch uint64 `json:"epoch"`
	// BaseSize and BaseRoot name the tree the new epoch continues: the
	// entries before the fork entry (BaseSize is the fork entry's index).
	BaseSize uint64 `json:"base_size"`
	BaseRoot string `json:"base_root"` // hex
	// PreviousCheckpoint is the signed note of the last checkpoint the
	// signer had signed (and remembered) before the fork.
	PreviousCheckpoint string `json:"previous_checkpoint"`
	PreviousSize       uint64 `json:"previous_size"`
	PreviousRoot       string `json:"previous_root"` // hex
}

// Data returns the fork as an entry's Data map.
func (f Fork) Data() map[string]any {
	return map[string]any{"epoch": f.Epoch, "base_size": f.BaseSize, "base_root": f.BaseRoot,
		"previous_checkpoint": f.PreviousCheckpoint, "previous_size": f.PreviousSize, "previous_root": f.PreviousRoot}
}

// ParseFork decodes the Data of a fork entry.
func ParseFork(data []byte) (Fork, error) {
	var f Fork
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Fork{}, fmt.Errorf("fork entry data: %v", err)
	}
	if f.Epoch < 2 || f.PreviousCheckpoint == "" {
		return Fork{}, fmt.Errorf("fork entry data: epoch %d or previous checkpoint missing", f.Epoch)
	}
	return f, nil
}

// EpochOf is c's epoch: 1 when the checkpoint carries no epoch line.
func EpochOf(c Checkpoint) uint64 { return max(1, c.Epoch) }

func appendEpochLine(b []byte, c Checkpoint) []byte {
	if c.Epoch < 2 {
		return b
	}
	return append(b, epochExtension+strconv.FormatUint(c.Epoch, 10)+" "+strconv.FormatUint(c.EpochStart, 10)+"\n"...)
}

func parseEpochLine(c *Checkpoint, v string) error {
	n, start, ok := strings.Cut(v, " ")
	e, err1 := strconv.ParseUint(n, 10, 64)
	s, err2 := strconv.ParseUint(start, 10, 64)
	if !ok || err1 != nil || err2 != nil || e < 2 || s >= c.Size {
		return fmt.Errorf("invalid checkpoint - bad epoch line %q", epochExtension+v)
	}
	c.Epoch, c.EpochStart = e, s
	return nil
}

// EpochError reports that next belongs to a later epoch than prev and
// does not extend it: the log was forked after prev. It is not a
// verification failure by itself: the caller MUST find the fork entry at
// Next.EpochStart (inclusion-proven in Next) and check it with
// [CheckForkEntry] before it trusts Next.
type EpochError struct{ Prev, Next Checkpoint }

func (e *EpochError) Error() string {
	return fmt.Sprintf("the log was forked: epoch %d began at entry %d, after the checkpoint of %d entries (epoch %d) seen before",
		EpochOf(e.Next), e.Next.EpochStart, e.Prev.Size, EpochOf(e.Prev))
}

// CheckForkEntry checks the fork entry that began next's epoch (leaf at
// index next.EpochStart, already proven included in next) against the
// checkpoint prev a client saw before the fork, with the log key. It
// returns the fork on success.
func CheckForkEntry(prev, next Checkpoint, leaf []byte, logKey note.Verifier) (Fork, error) {
	l, err := ParseLeaf(leaf)
	if err != nil {
		return Fork{}, err
	}
	if l.Kind != KindForked {
		return Fork{}, fmt.Errorf("entry %d, where the signed checkpoint says epoch %d began, is a %s entry, not a recorded fork", next.EpochStart, EpochOf(next), l.Kind)
	}
	f, err := ParseFork(l.Data)
	if err != nil {
		return Fork{}, err
	}
	if f.Epoch != EpochOf(next) || f.BaseSize != next.EpochStart {
		return Fork{}, fmt.Errorf("fork entry %d begins epoch %d at %d, but the signed checkpoint says epoch %d began at %d", next.EpochStart, f.Epoch, f.BaseSize, EpochOf(next), next.EpochStart)
	}
	old, _, err := OpenCheckpoint([]byte(f.PreviousCheckpoint), logKey)
	if err != nil {
		return Fork{}, fmt.Errorf("fork entry %d: the previous checkpoint it names does not verify: %v", next.EpochStart, err)
	}
	if EpochOf(next) == EpochOf(prev)+1 || EpochOf(old) == EpochOf(prev) {
		switch {
		case EpochOf(old) != EpochOf(prev):
			return Fork{}, fmt.Errorf("fork entry %d forks epoch %d, but the checkpoint seen before is of epoch %d", next.EpochStart, EpochOf(old), EpochOf(prev))
		case prev.Size > old.Size:
			return Fork{}, fmt.Errorf("fork entry %d says the signer's last checkpoint had %d entries, but a checkpoint of %d entries was seen before: the fork hides signed entries", next.EpochStart, old.Size, prev.Size)
		case prev.Size == old.Size && !bytes.Equal(prev.Hash, old.Hash):
			return Fork{}, &ForkError{Size: prev.Size, Root1: prev.Hash, Root2: old.Hash}
		}
	}
	return f, nil
}

// forkState follows epochs while [VerifyEntries] walks the leaves.
type forkState struct {
	epoch uint64 // current epoch, from 1
	start uint64 // index of the fork entry that began it
	forks []VerifiedFork
}

// VerifiedFork is a fork entry that [VerifyEntries] checked.
type VerifiedFork struct {
	Index uint64
	Fork  Fork
	Actor string
	Time  time.Time
}

func (s *forkState) check(i uint64, l verifyLeaf, root []byte, key note.Verifier) error {
	f, err := ParseFork(l.Data)
	if err != nil {
		return &VerifyError{Index: i, Reason: err.Error()}
	}
	switch {
	case f.Epoch != s.epoch+1:
		return &VerifyError{Index: i, Reason: fmt.Sprintf("fork entry begins epoch %d, but the log is in epoch %d", f.Epoch, s.epoch)}
	case f.BaseSize != i:
		return &VerifyError{Index: i, Reason: fmt.Sprintf("fork entry says it continues a tree of %d entries, but it is entry %d", f.BaseSize, i)}
	case f.BaseRoot != hex.EncodeToString(root):
		return &VerifyError{Index: i, Reason: fmt.Sprintf("fork entry names base root %s, but the entries before it hash to %x", f.BaseRoot, root)}
	}
	if key != nil {
		old, _, err := OpenCheckpoint([]byte(f.PreviousCheckpoint), key)
		if err != nil {
			return &VerifyError{Index: i, Reason: "the previous checkpoint the fork entry names does not verify: " + err.Error()}
		}
		// The previous checkpoint is of the current epoch, or of an earlier
		// one when the forking signer never took up the current epoch
		// (another server's fork that did not account for what it signed).
		if old.Size != f.PreviousSize || hex.EncodeToString(old.Hash) != f.PreviousRoot || EpochOf(old) > s.epoch {
			return &VerifyError{Index: i, Reason: "the fork entry's previous size, root or epoch do not match the signed checkpoint it names"}
		}
	}
	s.epoch, s.start = f.Epoch, i
	s.forks = append(s.forks, VerifiedFork{Index: i, Fork: f, Actor: l.Actor, Time: time.Unix(0, l.Time).UTC()})
	return nil
}

// checkEnd checks that the signed checkpoint agrees with the forks found.
func (s *forkState) checkEnd(cp Checkpoint) error {
	if EpochOf(cp) != s.epoch || (s.epoch > 1 && cp.EpochStart != s.start) {
		return &VerifyError{Index: cp.EpochStart, Reason: fmt.Sprintf("the signed checkpoint says epoch %d began at entry %d, but the entries record epoch %d beginning at %d: an epoch boundary is accepted only where a fork entry records it", EpochOf(cp), cp.EpochStart, s.epoch, s.start)}
	}
	return nil
}

// DefaultTimeSkew is how far an entry's time may go back before an
// earlier entry's: entries are appended with the server's clock and
// sequenced in commit order within a second, so a larger step back means
// an entry that was inserted out of order (an old row copied back in) or
// a server whose clock is badly wrong. One minute covers replicas whose
// NTP-synced clocks differ and transactions that commit late.
const DefaultTimeSkew = time.Minute

// DefaultMaxFuture is how far an entry's time may lie after the clock of
// the sequencer that integrates it, and after the signed checkpoint that
// covers it. An entry dated further ahead was not written by a server
// with a plausible clock (a row put in by hand); sequenced, it would make
// every genuine entry after it look out of order until its date came, so
// this bounds how long one such row can stop the log. Two hours also
// admits a server clock that ran an hour ahead and was set back.
const DefaultMaxFuture = 2 * time.Hour

// timeOrder tracks the latest entry time seen.
type timeOrder struct {
	skew   time.Duration
	latest int64
	at     string // what latest is the time of
	seen   bool
}

func (o *timeOrder) check(i uint64, t int64) error {
	if o.seen && t < o.latest-int64(o.skew) {
		back := time.Duration(o.latest - t)
		return &VerifyError{Index: i, Reason: fmt.Sprintf("entry is dated %s, %s before %s (%s): entries are sequenced in time order (allowed skew %s), so this one was put in out of order",
			time.Unix(0, t).UTC().Format(time.RFC3339), back.Round(time.Second), o.at, time.Unix(0, o.latest).UTC().Format(time.RFC3339), o.skew)}
	}
	return nil
}

// advance records entry i's time t after it passed check.
func (o *timeOrder) advance(i uint64, t int64) {
	if !o.seen || t > o.latest {
		o.latest, o.at, o.seen = t, fmt.Sprintf("entry %d", i), true
	}
}

// afterFork sets the baseline after fork entry i: the time of the
// checkpoint the signer had signed. The fork entry's own time does not
// count, since entries committed while the log refused (sign-ins, the
// admin's MFA) are older than it and sequenced after it; but any entry
// older than the last signed checkpoint should have been in it, so such
// an entry is an old row put back in.
func (o *timeOrder) afterFork(i uint64, f Fork) {
	text := f.PreviousCheckpoint
	if k := strings.Index(text, "\n\n"); k >= 0 {
		text = text[:k+1]
	}
	if c, err := ParseCheckpoint([]byte(text)); err == nil && !c.Time.IsZero() {
		if t := c.Time.UnixNano(); !o.seen || t > o.latest {
			o.latest, o.seen = t, true
			o.at = fmt.Sprintf("the checkpoint of %d entries that fork entry %d names", c.Size, i)
		}
	}
}
