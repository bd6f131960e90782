package cli

import (
	"context"
	"encoding/base64"
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
func checkFork(ctx context.Context, c logDoer, v note.Verifier, ee *tlog.EpochError) (string, error) {
	next := ee.Next
	es, err := fetchEntries(ctx, c, next.EpochStart, next.EpochStart+1, false)
	if err != nil {
		return "", err
	}
	if len(es) != 1 || es[0].Index != next.EpochStart {
		return "", fmt.Errorf("%v, but the server does not return the fork entry %d", ee, next.EpochStart)
	}
	if bad := verifyEntries(ctx, c, next, es); len(bad) > 0 {
		return "", bad[next.EpochStart]
	}
	f, err := tlog.CheckForkEntry(ee.Prev, next, es[0].Leaf, v)
	if err != nil {
		return "", fmt.Errorf("%v, and its fork entry does not account for it: %w", ee, err)
	}
	return forkSentence(es[0], f), nil
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
			"why. If the newer database cannot be restored, an admin with fresh MFA forks the log: a fork entry\n" +
			"records the checkpoint the signer remembered and the tree the new epoch continues, so the lost\n" +
			"entries stay visible as a recorded break that every `interlock log verify` reports.\n" +
			"(Admin-only with fresh MFA for now; it will need a second person once change requests exist.)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, p, err := logClient(e)
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
			v, err := e.logKey(ctx, c, p)
			if err != nil {
				return err
			}
			var out wire.LogForkResponse
			if err := c.Do(ctx, "POST", "/v1/log/fork", wire.LogForkRequest{Reason: reason}, &out); err != nil {
				return err
			}
			cp, _, err := tlog.OpenCheckpoint([]byte(out.Checkpoint), v)
			if err != nil {
				return &ExitError{Code: 1, Err: fmt.Errorf("the server forked the log, but its new checkpoint does not verify against the pinned key: %v", err)}
			}
			return e.output(out, func() error {
				e.printf("Forked the log: epoch %d begins with entry %d. The signer had signed %d entries (root %s); the new epoch continues the %d entries the database holds.\n",
					out.Epoch, out.Index, out.PreviousSize, base64.StdEncoding.EncodeToString(out.PreviousRootHash), out.Index)
				e.printf("First checkpoint of the new epoch: %d entries, root %s. Every `interlock log verify` will report this fork.\n",
					cp.Size, base64.StdEncoding.EncodeToString(cp.Hash))
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
