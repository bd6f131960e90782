package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// verifyEntries checks fetched entries against the signed checkpoint cp
// before anyone prints them: each contiguous run below cp.Size with one
// range proof (tlog.VerifyRange over the log's tiles) and, only when that
// fails, entry by entry with inclusion proofs to name the bad ones. It
// returns the failures by index; entries at or beyond cp.Size are not
// covered by a signature yet and are left to the caller to mark.
func verifyEntries(ctx context.Context, c logDoer, cp tlog.Checkpoint, es []wire.LogEntry) map[uint64]error {
	bad := map[uint64]error{}
	var run []wire.LogEntry
	flush := func() {
		if len(run) == 0 {
			return
		}
		hashes := make([][]byte, len(run))
		for i, le := range run {
			hashes[i] = tlog.LeafHash(le.Leaf)
		}
		if tlog.VerifyRange(ctx, run[0].Index, hashes, cp.Size, cp.Hash, tlog.TileHashReader{Size: cp.Size, Tiles: httpTiles{c}}) != nil {
			for i, le := range run {
				var pr wire.LogProof
				err := c.Do(ctx, "GET", fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", le.Index, cp.Size), nil, &pr)
				if err == nil {
					err = tlog.VerifyInclusion(le.Index, cp.Size, hashes[i], pr.Hashes, cp.Hash)
				}
				if err != nil {
					bad[le.Index] = fmt.Errorf("entry %d is not the entry the signed checkpoint of %d entries holds: %v", le.Index, cp.Size, err)
				}
			}
		}
		run = run[:0]
	}
	for _, le := range es {
		if le.Index >= cp.Size {
			continue
		}
		if len(run) > 0 && run[len(run)-1].Index+1 != le.Index {
			flush()
		}
		run = append(run, le)
	}
	flush()
	return bad
}

// checkFork handles a checkpoint of a later epoch than the one this
// client saw (a *tlog.EpochError from CheckExtension): it fetches the fork
// entry the checkpoint names, proves it is in the checkpoint, and checks
// that it records a fork of what this client saw. It returns a sentence
// for the person.
//
// When more than one fork happened since, the newest fork entry names
// only the previous epoch's checkpoint, which says nothing about what this
// client saw; so the chain is followed back, fork entry by fork entry,
// each proven in the new checkpoint and each before the next, until the
// one that forked the client's epoch. A fork entry no longer in the log
// (cut away before a later fork) breaks the chain, and verification fails.
func checkFork(ctx context.Context, c logDoer, v note.Verifier, ee *tlog.EpochError) (string, error) {
	next := ee.Next
	cur := next
	limit := next.EpochStart + 1 // the fork entry of an earlier epoch lies before the later one's
	var sentences []string
	for {
		idx := cur.EpochStart
		if idx >= limit {
			return "", fmt.Errorf("%v; the fork entry that began epoch %d (entry %d) is no longer in this log, so what became of the %d entries of epoch %d this client saw cannot be checked",
				ee, tlog.EpochOf(cur), idx, ee.Prev.Size, tlog.EpochOf(ee.Prev))
		}
		es, err := fetchEntries(ctx, c, idx, idx+1, false)
		if err != nil {
			return "", err
		}
		if len(es) != 1 || es[0].Index != idx {
			return "", fmt.Errorf("%v, but the server does not return the fork entry %d", ee, idx)
		}
		if bad := verifyEntries(ctx, c, next, es); len(bad) > 0 {
			return "", bad[idx]
		}
		f, err := tlog.CheckForkEntry(ee.Prev, cur, es[0].Leaf, v)
		if err != nil {
			return "", fmt.Errorf("%v, and its fork entry does not account for it: %w", ee, err)
		}
		sentences = append([]string{forkSentence(es[0], f)}, sentences...)
		if tlog.EpochOf(cur) <= tlog.EpochOf(ee.Prev)+1 {
			return strings.Join(sentences, " "), nil
		}
		old, _, err := tlog.OpenCheckpoint([]byte(f.PreviousCheckpoint), v)
		if err != nil {
			return "", fmt.Errorf("%v: fork entry %d names a previous checkpoint that does not verify: %w", ee, idx, err)
		}
		if tlog.EpochOf(old) == tlog.EpochOf(ee.Prev) {
			// CheckForkEntry compared it with what this client saw.
			return strings.Join(sentences, " "), nil
		}
		if tlog.EpochOf(old) >= tlog.EpochOf(cur) || tlog.EpochOf(old) < tlog.EpochOf(ee.Prev) {
			return "", fmt.Errorf("%v: fork entry %d begins epoch %d but names a checkpoint of epoch %d", ee, idx, tlog.EpochOf(cur), tlog.EpochOf(old))
		}
		cur, limit = old, idx
	}
}

func forkSentence(le wire.LogEntry, f tlog.Fork) string {
	row := entryRow(le)
	return fmt.Sprintf("The log was forked at entry %d (epoch %d, by %s at %s): the signer had signed %d entries, the database it continued held %d; entries %d–%d of the previous epoch are not in this log.",
		le.Index, f.Epoch, row[2], row[1], f.PreviousSize, f.BaseSize, f.BaseSize, max(f.BaseSize, f.PreviousSize)-1)
}

func logForkCmd(e *env) *cobra.Command {
	var reason, otp string
	cmd := &cobra.Command{
		Use:   "fork --reason TEXT [--otp CODE]",
		Short: "Start a new log epoch when the server refuses to sign because its database lost signed history",
		Long: "When the server's database does not extend the checkpoint its signer signed last (a restored\n" +
			"backup, or tables cut back), the server refuses to sign and to change anything, and /readyz says\n" +
			"why. If the newer database cannot be restored, an admin with fresh MFA asks to fork the log: this\n" +
			"makes a change request (kind log.fork) showing what the signer remembers and what the database\n" +
			"holds. When another, independent admin approves it (interlock change approve ID, fresh MFA), a\n" +
			"fork entry records the checkpoint the signer remembered and the tree the new epoch continues, so\n" +
			"the lost entries stay visible as a recorded break that every `interlock log verify` reports.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, _, err := logClient(e)
			if err != nil {
				return err
			}
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--reason is required: it is recorded in the fork entry")
			}
			if otp == "" && e.isTerminal() {
				if otp, err = e.readSecret("One-time code (forking the log needs fresh MFA): ", false); err != nil {
					return err
				}
			}
			if otp != "" {
				var mfa wire.MFAResponse
				if err := c.Do(ctx, "POST", "/v1/mfa", wire.MFARequest{OTP: otp}, &mfa); err != nil {
					return err
				}
			}
			var out wire.ChangePending
			if err := c.Do(ctx, "POST", "/v1/log/fork", wire.LogForkRequest{Reason: reason}, &out); err != nil {
				return err
			}
			cr := out.ChangeRequest
			return e.output(out, func() error {
				e.printf("Not forked yet: this is change request %s.\n", cr.ID)
				e.printChangeDiff(cr.Diff)
				e.printf("It needs approval by another admin: interlock change approve %s\n", cr.ID)
				e.printf("(it expires at %s and is void if the signer's memory or the database changes first; withdraw it with interlock change withdraw %s)\n",
					cr.ExpiresAt.Local().Format(time.DateTime), cr.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the fork entry)")
	cmd.Flags().StringVar(&otp, "otp", "", "a current one-time code, proving fresh MFA (prompted on a terminal)")
	return cmd
}

func verifiedForkSentence(f tlog.VerifiedFork) string {
	return fmt.Sprintf("Epoch %d begins at entry %d, a recorded fork (by %s at %s): the signer had signed %d entries, the database it continued held %d, so entries %d–%d of epoch %d are not in this log.",
		f.Fork.Epoch, f.Index, f.Actor, f.Time.Format(time.RFC3339), f.Fork.PreviousSize, f.Fork.BaseSize, f.Fork.BaseSize, max(f.Fork.BaseSize, f.Fork.PreviousSize)-1, f.Fork.Epoch-1)
}

// logCheckpointFile is where `log verify` saves the last checkpoint this
// profile verified.
const logCheckpointFile = "log_checkpoint"

// forgetLogCheckpoint removes the checkpoint saved for a log this profile
// no longer follows (it logged in to another server).
func forgetLogCheckpoint(p *profile) error {
	if err := os.Remove(filepath.Join(p.dir, logCheckpointFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("discard the checkpoint saved for the previous server's log: %w", err)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none: this person may not read the log)"
	}
	return s
}
