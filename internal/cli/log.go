package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/tlog"
)

// logDoer is what the log commands need from the API client;
// *apiclient.Client implements it.
type logDoer interface {
	Do(ctx context.Context, method, path string, in, out any) error
	Stream(ctx context.Context, method, path string, in any) (io.ReadCloser, error)
}

// logClient returns the logged-in client and its profile; tests replace it.
var logClient = func(e *env) (logDoer, *profile, error) {
	c, p, err := e.client()
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

var _ = register(func(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Read, verify, export and witness the tamper-evident log",
		Long: "Every privileged action is recorded in an append-only RFC 6962 Merkle log whose signed\n" +
			"checkpoints let anyone holding the log's public key check, offline, that an entry is in the log\n" +
			"and that history was never rewritten. `verify` checks the latest checkpoint against the key\n" +
			"pinned in this profile and against the last checkpoint this client saw.",
	}
	cmd.AddCommand(logTailCmd(e), logShowCmd(e), logVerifyCmd(e), logExportCmd(e), logRedactCmd(e), logWitnessCmd(e), logForkCmd(e))
	return cmd
})

// getRaw fetches a non-JSON answer (checkpoint note, tile, bundle).
func getRaw(ctx context.Context, c logDoer, path string) ([]byte, error) {
	body, err := c.Stream(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(io.LimitReader(body, 512<<20))
}

// logKey returns the pinned log key, pinning the server's on first use.
func (e *env) logKey(ctx context.Context, c logDoer, p *profile) (note.Verifier, error) {
	if p.LogKey == "" {
		var info wire.LogInfo
		if err := c.Do(ctx, "GET", "/v1/log", nil, &info); err != nil {
			return nil, err
		}
		if _, err := tlog.NewVerifier(info.PublicKey); err != nil {
			return nil, fmt.Errorf("the server's log key %q is not a valid verifier key: %v", info.PublicKey, err)
		}
		p.LogKey = info.PublicKey
		if err := p.save(); err != nil {
			return nil, err
		}
		fmt.Fprintf(e.stderr, "Pinned the log key %s in profile %q (first use). Compare it with the key `interlock serve` printed.\n", p.LogKey, e.profileName())
	}
	v, err := tlog.NewVerifier(p.LogKey)
	if err != nil {
		return nil, fmt.Errorf("the pinned log key in profile %q is damaged: %v", e.profileName(), err)
	}
	return v, nil
}

// latestCheckpoint fetches and verifies the latest checkpoint.
// checkedLog is the logged-in profile's log client, its pinned log key,
// and the latest checkpoint verified against that key.
func (e *env) checkedLog(ctx context.Context) (c logDoer, p *profile, v note.Verifier, cp tlog.Checkpoint, signed []byte, err error) {
	if c, p, err = logClient(e); err != nil {
		return
	}
	if v, err = e.logKey(ctx, c, p); err != nil {
		return
	}
	cp, signed, err = latestCheckpoint(ctx, c, v)
	return
}

func latestCheckpoint(ctx context.Context, c logDoer, v note.Verifier) (tlog.Checkpoint, []byte, error) {
	signed, err := getRaw(ctx, c, "/v1/log/checkpoint")
	if err != nil {
		return tlog.Checkpoint{}, nil, err
	}
	cp, _, err := tlog.OpenCheckpoint(signed, v)
	if err != nil {
		return tlog.Checkpoint{}, nil, &ExitError{Code: 1, Err: fmt.Errorf("the log's checkpoint does not verify against the pinned key: %v", err)}
	}
	return cp, signed, nil
}

func fetchEntries(ctx context.Context, c logDoer, start, end uint64, personal bool) ([]wire.LogEntry, error) {
	q := fmt.Sprintf("/v1/log/entries?start=%d&end=%d", start, end)
	if personal {
		q += "&personal=true"
	}
	var out wire.LogEntries
	if err := c.Do(ctx, "GET", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Entries, nil
}

// entryRow is how a leaf is shown to people.
func entryRow(e wire.LogEntry) []string {
	var l tlog.LeafV1
	if err := json.Unmarshal(e.Leaf, &l); err != nil {
		return []string{strconv.FormatUint(e.Index, 10), "?", "?", "(unreadable entry)", ""}
	}
	return []string{strconv.FormatUint(e.Index, 10), time.Unix(0, l.TimeUnixNano).UTC().Format(time.RFC3339), l.Actor,
		fmt.Sprintf("%s/v%d", l.Kind, l.Version), l.Subject}
}

func logTailCmd(e *env) *cobra.Command {
	var n uint64
	var follow bool
	cmd := &cobra.Command{
		Use:   "tail [-n N] [--follow]",
		Short: "Print the newest log entries, verified against the signed checkpoint (and, with --follow, new ones)",
		Long: "Entries are checked against the latest signed checkpoint (pinned log key, one range proof per\n" +
			"page) before they are printed; an entry that does not verify is printed as FAILED with the reason,\n" +
			"and the command exits 1. Entries integrated in the last few seconds, not yet covered by a signed\n" +
			"checkpoint, are shown at once and marked \"unsigned\"; --follow checks them when the next\n" +
			"checkpoint comes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, _, v, cp, _, err := e.checkedLog(ctx)
			if err != nil {
				return err
			}
			var info wire.LogInfo
			if err := c.Do(ctx, "GET", "/v1/log", nil, &info); err != nil {
				return err
			}
			end := max(info.IntegratedSize, cp.Size)
			if info.Refusing != "" {
				// The signed checkpoint is the signer's memory, which the
				// database no longer holds: show what it holds, unverified.
				fmt.Fprintf(e.stderr, "Warning: the server refuses to sign, so these entries cannot be verified: %s\n", info.Refusing)
				end, cp = info.IntegratedSize, tlog.Checkpoint{}
			}
			next := end - min(n, end)
			header := !e.json
			var names map[string]string // user names beside person IDs, for people
			asked := map[string]bool{}  // IDs looked up again while following
			if !e.json {
				names = personNames(ctx, c)
			}
			failed := 0
			unsigned := map[uint64][]byte{} // printed before a checkpoint covered them
			print := func(es []wire.LogEntry, bad map[uint64]error) error {
				if e.json {
					for _, le := range es {
						if err := json.NewEncoder(e.stdout).Encode(le); err != nil {
							return err
						}
					}
					return nil
				}
				rows := make([][]string, 0, len(es))
				for _, le := range es {
					r := entryRow(le)
					if id, ok := strings.CutPrefix(r[2], "person:"); ok && names[id] == "" && follow && !asked[id] {
						asked[id] = true
						names = personNames(ctx, c) // someone new since we started following
					}
					r[2], r[4] = personLabel(names, r[2]), personLabel(names, r[4])
					switch {
					case bad[le.Index] != nil:
						r = append(r, "FAILED: "+bad[le.Index].Error())
					case le.Index >= cp.Size:
						r = append(r, "unsigned")
					default:
						r = append(r, "ok")
					}
					rows = append(rows, r)
				}
				if header {
					header = false
					return e.table([]string{"INDEX", "TIME", "ACTOR", "KIND", "SUBJECT", "VERIFIED"}, rows)
				}
				for _, r := range rows {
					e.printf("%s\n", strings.Join(r, "  "))
				}
				return nil
			}
			for {
				for next < end {
					es, err := fetchEntries(ctx, c, next, min(end, next+1000), false)
					if err != nil {
						return err
					}
					if len(es) == 0 {
						break
					}
					bad := verifyEntries(ctx, c, cp, es)
					for _, le := range es {
						if le.Index >= cp.Size {
							unsigned[le.Index] = le.Leaf
						}
						if bad[le.Index] != nil {
							failed++
							fmt.Fprintf(e.stderr, "FAILED: %v\n", bad[le.Index])
						}
					}
					if err := print(es, bad); err != nil {
						return err
					}
					next = es[len(es)-1].Index + 1
				}
				if !follow {
					if failed > 0 {
						return &ExitError{Code: 1, Err: fmt.Errorf("%d of the entries shown do not verify against the signed checkpoint", failed)}
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(2 * time.Second):
				}
				prev := cp
				if cp, _, err = latestCheckpoint(ctx, c, v); err != nil {
					return err
				}
				if prev.Origin == "" { // was refusing: nothing signed to extend
				} else if err := checkLater(ctx, c, &prev, cp); err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				var shown []wire.LogEntry
				for i, leaf := range unsigned {
					if i < cp.Size {
						shown = append(shown, wire.LogEntry{Index: i, Leaf: leaf})
						delete(unsigned, i)
					}
				}
				sort.Slice(shown, func(a, b int) bool { return shown[a].Index < shown[b].Index })
				for i, err := range verifyEntries(ctx, c, cp, shown) {
					return &ExitError{Code: 1, Err: fmt.Errorf("entry %d, shown before it was signed, is not what the signed checkpoint holds: %w", i, err)}
				}
				if err := c.Do(ctx, "GET", "/v1/log", nil, &info); err != nil {
					return err
				}
				end = max(info.IntegratedSize, cp.Size)
			}
		},
	}
	cmd.Flags().Uint64VarP(&n, "lines", "n", 20, "how many of the newest entries to print")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing entries as they are integrated")
	return cmd
}

// checkLater checks that next extends prev with a consistency proof.
func checkLater(ctx context.Context, c logDoer, prev *tlog.Checkpoint, next tlog.Checkpoint) error {
	var proof [][]byte
	if next.Size > prev.Size {
		var pr wire.LogProof
		if err := c.Do(ctx, "GET", fmt.Sprintf("/v1/log/proof/consistency?from=%d&to=%d", prev.Size, next.Size), nil, &pr); err != nil {
			return err
		}
		proof = pr.Hashes
	}
	return tlog.CheckExtension(prev, next, proof)
}

func parseIndex(s string) (uint64, error) {
	i, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("INDEX must be a whole number, not %q", s)
	}
	return i, nil
}

// logShowOutput is `log show --json`.
type logShowOutput struct {
	Entry      wire.LogEntry `json:"entry"`
	Checkpoint string        `json:"checkpoint"`
	Proof      [][]byte      `json:"inclusion_proof"`
	Verified   bool          `json:"verified"`
}

func logShowCmd(e *env) *cobra.Command {
	var personal bool
	cmd := &cobra.Command{
		Use:   "show INDEX",
		Short: "Print one entry with its inclusion proof, verified against the latest signed checkpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			index, err := parseIndex(args[0])
			if err != nil {
				return err
			}
			c, _, _, cp, signed, err := e.checkedLog(ctx)
			if err != nil {
				return err
			}
			if index >= cp.Size {
				return fmt.Errorf("entry %d is not in the latest checkpoint (%d entries); new entries are integrated within seconds", index, cp.Size)
			}
			es, err := fetchEntries(ctx, c, index, index+1, personal)
			if err != nil {
				return err
			}
			if len(es) != 1 || es[0].Index != index {
				return &ExitError{Code: 1, Err: fmt.Errorf("entry %d: the server did not return it although its checkpoint covers it", index)}
			}
			var pr wire.LogProof
			if err := c.Do(ctx, "GET", fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", index, cp.Size), nil, &pr); err != nil {
				return err
			}
			verr := tlog.VerifyInclusion(index, cp.Size, tlog.LeafHash(es[0].Leaf), pr.Hashes, cp.Hash)
			personalFailed := false
			if verr != nil {
				verr = fmt.Errorf("entry %d is not the entry the signed checkpoint of %d entries holds (its inclusion proof fails: %v); what the server returned is shown below, marked UNVERIFIED", index, cp.Size, verr)
			} else if len(es[0].Personal) > 0 {
				// The personal values are stored beside the entry, not in
				// it: check each against the commitment the entry holds.
				var leaf tlog.LeafV1
				perr := json.Unmarshal(es[0].Leaf, &leaf)
				if perr == nil {
					perr = leaf.CheckPersonal(es[0].Personal, es[0].PersonalSalts)
				}
				if perr != nil {
					personalFailed = true
					verr = fmt.Errorf("entry %d verifies, but its personal data does not: %v; the personal data is shown below, marked UNVERIFIED", index, perr)
				}
			}
			out := logShowOutput{Entry: es[0], Checkpoint: string(signed), Proof: pr.Hashes, Verified: verr == nil}
			if err := e.output(out, func() error {
				var pretty any
				_ = json.Unmarshal(es[0].Leaf, &pretty)
				b, _ := json.MarshalIndent(pretty, "", "  ")
				if verr != nil {
					// Say so before the content, never after it.
					fmt.Fprintf(e.stderr, "FAILED: %v\n", verr)
					if personalFailed {
						e.printf("Entry %d (verified):\n%s\n", index, b)
					} else {
						e.printf("Entry %d (UNVERIFIED — does not match the signed checkpoint):\n%s\n", index, b)
					}
					if len(es[0].Personal) > 0 {
						pb, _ := json.MarshalIndent(es[0].Personal, "", "  ")
						e.printf("Personal data (UNVERIFIED):\n%s\n", pb)
					}
					return nil
				}
				e.printf("Entry %d:\n%s\n", index, b)
				if len(es[0].Personal) > 0 {
					pb, _ := json.MarshalIndent(es[0].Personal, "", "  ")
					e.printf("Personal data (erasable):\n%s\n", pb)
				}
				e.printf("Included in the signed checkpoint of %d entries (root %s): verified with %d proof hashes.\n",
					cp.Size, base64.StdEncoding.EncodeToString(cp.Hash), len(pr.Hashes))
				return nil
			}); err != nil {
				return err
			}
			if verr != nil {
				return &ExitError{Code: 1, Err: verr}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&personal, "personal", false, "also show personal data not yet redacted (needs log.redact)")
	return cmd
}

// httpLeaves reads leaves for full verification.
type httpLeaves struct{ c logDoer }

func (h httpLeaves) Leaves(ctx context.Context, start, end uint64) ([][]byte, error) {
	es, err := fetchEntries(ctx, h.c, start, end, false)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(es))
	for k, le := range es {
		if le.Index != start+uint64(k) {
			break
		}
		out = append(out, le.Leaf)
	}
	return out, nil
}

// httpTiles reads hash tiles (C2SP tlog-tiles) for full verification.
type httpTiles struct{ c logDoer }

func (h httpTiles) ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := getRaw(ctx, h.c, "/v1/log/"+t.Path())
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// logVerifyOutput is `log verify --json`.
type logVerifyOutput struct {
	OK       bool    `json:"ok"`
	Size     uint64  `json:"size"`
	RootHash []byte  `json:"root_hash"`
	Time     int64   `json:"time,omitempty"`
	Previous uint64  `json:"previous_size"`
	Full     bool    `json:"full"`
	Entries  int     `json:"entries,omitempty"` // bundles
	Error    string  `json:"error,omitempty"`
	Index    *uint64 `json:"index,omitempty"`
	// Witnesses are the named witnesses that cosigned (--witness).
	Witnesses []string `json:"witnesses,omitempty"`
	// Epoch is the checkpoint's epoch; Forks describe the recorded forks
	// (epoch boundaries) this verification accepted.
	Epoch uint64   `json:"epoch,omitempty"`
	Forks []string `json:"forks,omitempty"`
}

func (e *env) verifyFailed(out logVerifyOutput, err error) error {
	var ve *tlog.VerifyError
	if errors.As(err, &ve) {
		out.Index = &ve.Index
	}
	out.OK, out.Error = false, err.Error()
	if e.json {
		_ = e.printJSON(out)
	}
	return &ExitError{Code: 1, Err: fmt.Errorf("log verification failed: %w", err)}
}

func logVerifyCmd(e *env) *cobra.Command {
	var full bool
	var bundle, key string
	var witnessKeys []string
	var minWitnesses int
	cmd := &cobra.Command{
		Use:   "verify [--full] [--witness VKEY… --min-witnesses K] | verify --bundle FILE --key KEY",
		Short: "Check the log's signed checkpoint, its consistency with what this client saw before, and (--full) every entry",
		Long: "Without flags: fetch the latest checkpoint, check its signature against the log key pinned in this\n" +
			"profile, and check (with a consistency proof) that it extends the last checkpoint this client saw.\n" +
			"--full also re-derives the root from every entry. With --bundle, verify an export file offline\n" +
			"with only the log's public key (--key: the key text or a file holding it).\n" +
			"--witness names a witness's verifier key (repeatable); the checkpoint must carry valid cosignatures\n" +
			"from --min-witnesses of them (default: all named).\n" +
			"Exits 1 and names the first bad index on any mismatch.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !cmd.Flags().Changed("min-witnesses") {
				minWitnesses = len(witnessKeys)
			}
			if bundle != "" && (len(witnessKeys) > 0 || minWitnesses > 0) {
				if err := e.bundleCosignatures(bundle, key, witnessKeys, minWitnesses); err != nil {
					return err
				}
			}
			if bundle != "" {
				if key == "" {
					// A profile that pinned the log's key verifies with it.
					if p, err := e.loadProfile(); err == nil && p.LogKey != "" {
						key = p.LogKey
						fmt.Fprintf(e.stderr, "Using the log key pinned in profile %q: %s\n", e.profileName(), key)
					}
				}
				return e.verifyBundle(bundle, key)
			}
			c, p, v, cp, signed, err := e.checkedLog(ctx)
			if err != nil {
				return err
			}
			out := logVerifyOutput{Size: cp.Size, RootHash: cp.Hash, Time: cp.Time.Unix(), Full: full, Epoch: tlog.EpochOf(cp)}
			if out.Witnesses, err = requireCosignatures(signed, v, witnessKeys, minWitnesses); err != nil {
				return e.verifyFailed(out, err)
			}
			var info wire.LogInfo
			if err := c.Do(ctx, "GET", "/v1/log", nil, &info); err != nil {
				return err
			}
			if info.Refusing != "" {
				return e.verifyFailed(out, fmt.Errorf("the server refuses to sign, so its log cannot be trusted as it stands: %s", info.Refusing))
			}
			statePath := filepath.Join(p.dir, logCheckpointFile)
			var prev *tlog.Checkpoint
			if b, err := os.ReadFile(statePath); err == nil {
				pc, _, err := tlog.OpenCheckpoint(b, v)
				if err != nil {
					return fmt.Errorf("the checkpoint saved in %s does not verify (%v); delete it to start over", statePath, err)
				}
				prev = &pc
				out.Previous = pc.Size
			}
			if prev != nil {
				var proof [][]byte
				if cp.Size > prev.Size {
					var pr wire.LogProof
					if err := c.Do(ctx, "GET", fmt.Sprintf("/v1/log/proof/consistency?from=%d&to=%d", prev.Size, cp.Size), nil, &pr); err != nil {
						return err
					}
					proof = pr.Hashes
				}
				if err := tlog.CheckExtension(prev, cp, proof); err != nil {
					var ee *tlog.EpochError
					if !errors.As(err, &ee) {
						return e.verifyFailed(out, err)
					}
					// A break in history is accepted only where a fork entry records it.
					sentence, err := checkFork(ctx, c, v, ee)
					if err != nil {
						return e.verifyFailed(out, err)
					}
					out.Forks = append(out.Forks, sentence)
				}
			}
			if full {
				res, err := tlog.VerifyEntries(ctx, cp, httpLeaves{c}, tlog.VerifyOptions{Tiles: httpTiles{c}, LogKey: v})
				if err != nil {
					return e.verifyFailed(out, err)
				}
				out.Forks = nil // the full walk saw every fork
				for _, f := range res.Forks {
					out.Forks = append(out.Forks, verifiedForkSentence(f))
				}
			}
			if err := os.WriteFile(statePath, signed, 0o600); err != nil {
				return fmt.Errorf("save the verified checkpoint: %w", err)
			}
			out.OK = true
			return e.output(out, func() error {
				what := "signature and consistency verified"
				if prev == nil {
					what = "signature verified; saved as the first checkpoint this client trusts"
				}
				if full {
					what += "; every entry re-hashed to the signed root"
				}
				if len(out.Witnesses) > 0 {
					what += "; cosigned by " + strings.Join(out.Witnesses, ", ")
				}
				e.printf("Log OK: %d entries, root %s, signed %s (%s).\n", cp.Size, base64.StdEncoding.EncodeToString(cp.Hash), cp.Time.Local().Format(time.RFC1123), what)
				for _, f := range out.Forks {
					e.printf("%s\n", f)
				}
				if len(out.Forks) == 0 && tlog.EpochOf(cp) > 1 {
					e.printf("The log is in epoch %d, which began with the fork entry %d (run with --full to check every fork).\n", tlog.EpochOf(cp), cp.EpochStart)
				}
				if age := time.Since(cp.Time); !cp.Time.IsZero() && age > time.Minute {
					fmt.Fprintf(e.stderr, "Warning: the newest checkpoint is %s old; the log publishes one every 10 s, so its sequencer may have stopped.\n", age.Round(time.Second))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "re-derive the root from every entry")
	cmd.Flags().StringVar(&bundle, "bundle", "", "verify an export bundle offline")
	cmd.Flags().StringVar(&key, "key", "", "with --bundle: the log's public key, or a file holding it")
	cmd.Flags().StringSliceVar(&witnessKeys, "witness", nil, "verifier key of a witness whose cosignature counts, or a file holding it (repeatable)")
	cmd.Flags().IntVar(&minWitnesses, "min-witnesses", 0, "how many of the --witness keys must have cosigned (default: all of them)")
	return cmd
}

func readKeyArg(key string) (string, error) {
	if key == "" {
		return "", errors.New("--bundle needs --key: the log's public key (or a file holding it)")
	}
	if b, err := os.ReadFile(key); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	return key, nil
}

func (e *env) verifyBundle(file, key string) error {
	vkey, err := readKeyArg(key)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read bundle: %w", err)
	}
	rep, err := tlog.VerifyBundle(data, vkey)
	out := logVerifyOutput{Size: rep.Checkpoint.Size, RootHash: rep.Checkpoint.Hash, Entries: rep.Entries}
	if err != nil {
		return e.verifyFailed(out, err)
	}
	out.OK, out.Time = true, rep.Checkpoint.Time.Unix()
	return e.output(out, func() error {
		e.printf("Bundle OK: %d entries are included in the signed checkpoint of %d entries (root %s).\n",
			rep.Entries, rep.Checkpoint.Size, base64.StdEncoding.EncodeToString(rep.Checkpoint.Hash))
		return nil
	})
}

func logExportCmd(e *env) *cobra.Command {
	var from, to uint64
	var file string
	cmd := &cobra.Command{
		Use:   "export --from A --to B -o FILE",
		Short: "Write entries A ≤ i < B with inclusion proofs and the signed checkpoint to one file, verifiable offline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, p, err := logClient(e)
			if err != nil {
				return err
			}
			data, err := getRaw(ctx, c, fmt.Sprintf("/v1/log/export?from=%d&to=%d", from, to))
			if err != nil {
				return err
			}
			if _, err := e.logKey(ctx, c, p); err != nil {
				return err
			}
			rep, err := tlog.VerifyBundle(data, p.LogKey)
			if err != nil {
				return &ExitError{Code: 1, Err: fmt.Errorf("the exported bundle does not verify against the pinned key; not written: %w", err)}
			}
			if err := os.WriteFile(file, data, 0o644); err != nil {
				return fmt.Errorf("write bundle: %w", err)
			}
			return e.output(map[string]any{"file": file, "entries": rep.Entries, "checkpoint_size": rep.Checkpoint.Size}, func() error {
				e.printf("Wrote %d entries to %s (verified). Check it anywhere with:\n  interlock log verify --bundle %s --key '%s'\n", rep.Entries, file, file, p.LogKey)
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&from, "from", 0, "first index")
	cmd.Flags().Uint64Var(&to, "to", 0, "index after the last")
	cmd.Flags().StringVarP(&file, "output", "o", "", "bundle file to write")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func logRedactCmd(e *env) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "redact INDEX --reason TEXT",
		Short: "Erase the personal data of one entry (its proofs stay valid; the redaction is itself logged)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			index, err := parseIndex(args[0])
			if err != nil {
				return err
			}
			c, _, err := logClient(e)
			if err != nil {
				return err
			}
			var out wire.LogRedacted
			if err := c.Do(cmd.Context(), "POST", "/v1/log/entries/"+strconv.FormatUint(index, 10)+"/redact", wire.LogRedactRequest{Reason: reason}, &out); err != nil {
				return err
			}
			return e.output(out, func() error {
				e.printf("Erased the personal data of entry %d; the redaction is recorded as a new entry.\n", out.Index)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the log)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

const witnessKeyPrefix = "ilk_witness_"

func logWitnessCmd(e *env) *cobra.Command {
	var keyFile, name, stateDir string
	var initKey, noSubmit bool
	cmd := &cobra.Command{
		Use:   "witness --key FILE [--init] [--name NAME]",
		Short: "Check that the log only grows (consistency with what this witness last saw) and cosign its checkpoint",
		Long: "A witness remembers the last checkpoint it cosigned. Each run fetches the latest checkpoint,\n" +
			"verifies the log's signature (pinned key), proves consistency with the remembered checkpoint, and\n" +
			"cosigns (C2SP tlog-cosignature). Two different checkpoints of one size are a fork: the witness\n" +
			"refuses and exits 1. The cosignature is sent to the server, which stores it if it trusts this\n" +
			"witness's key. --init creates the witness key and prints its verifier key for the server's config.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if keyFile == "" {
				return errors.New("--key FILE is required: the witness's private key file (create it with --init)")
			}
			if initKey {
				return e.witnessInit(keyFile, name)
			}
			w, err := loadWitness(keyFile, name)
			if err != nil {
				return err
			}
			c, p, v, cp, signed, err := e.checkedLog(ctx)
			if err != nil {
				return err
			}
			if stateDir == "" {
				stateDir = filepath.Join(p.dir, "witness")
			}
			if err := os.MkdirAll(stateDir, 0o700); err != nil {
				return err
			}
			statePath := filepath.Join(stateDir, url.PathEscape(cp.Origin)+".checkpoint")
			var prev *tlog.Checkpoint
			if b, err := os.ReadFile(statePath); err == nil {
				pc, _, err := tlog.OpenCheckpoint(b, v)
				if err != nil {
					return fmt.Errorf("witness state %s does not verify: %v", statePath, err)
				}
				prev = &pc
			}
			var proof [][]byte
			if prev != nil && cp.Size > prev.Size {
				var pr wire.LogProof
				if err := c.Do(ctx, "GET", fmt.Sprintf("/v1/log/proof/consistency?from=%d&to=%d", prev.Size, cp.Size), nil, &pr); err != nil {
					return err
				}
				proof = pr.Hashes
			}
			if err := tlog.CheckExtension(prev, cp, proof); err != nil {
				return &ExitError{Code: 1, Err: fmt.Errorf("witness refuses to cosign: %w", err)}
			}
			cosigned, _, err := tlog.Cosign(signed, v, w)
			if err != nil {
				return err
			}
			if err := os.WriteFile(statePath, signed, 0o600); err != nil {
				return fmt.Errorf("save witness state: %w", err)
			}
			stored := false
			if !noSubmit {
				var out wire.LogCosigned
				if err := c.Do(ctx, "POST", "/v1/log/cosignatures", wire.LogCosignRequest{Checkpoint: string(cosigned)}, &out); err != nil {
					fmt.Fprintf(e.stderr, "The server did not store the cosignature: %v\n", err)
				} else {
					stored = out.Stored
				}
			}
			return e.output(map[string]any{"checkpoint": string(cosigned), "size": cp.Size, "stored": stored}, func() error {
				e.printf("%s", cosigned)
				fmt.Fprintf(e.stderr, "Cosigned the checkpoint of %d entries as %s (consistent with size %d seen before).\n", cp.Size, w.Name(), sizeOf(prev))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "witness private key file")
	cmd.Flags().StringVar(&name, "name", "interlock-witness", "witness name (part of its key)")
	cmd.Flags().StringVar(&stateDir, "state", "", "directory for the last cosigned checkpoint (default: in the profile)")
	cmd.Flags().BoolVar(&initKey, "init", false, "create the witness key file and print its verifier key")
	cmd.Flags().BoolVar(&noSubmit, "no-submit", false, "do not send the cosignature to the server")
	return cmd
}

func sizeOf(c *tlog.Checkpoint) uint64 {
	if c == nil {
		return 0
	}
	return c.Size
}

func (e *env) witnessInit(file, name string) error {
	if _, err := os.Stat(file); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite a witness key", file)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(witnessKeyPrefix+base64.RawURLEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write witness key: %w", err)
	}
	w, err := tlog.NewCosigner(name, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		return err
	}
	return e.output(map[string]string{"verifier_key": w.VerifierKey()}, func() error {
		e.printf("Created %s. Give the server this witness key:\n  %s\n", file, w.VerifierKey())
		return nil
	})
}

func loadWitness(file, name string) (*tlog.Cosigner, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read witness key: %w", err)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), witnessKeyPrefix)
	seed, err := base64.RawURLEncoding.DecodeString(s)
	if !ok || err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s is not a witness key file (create one with --init)", file)
	}
	return tlog.NewCosigner(name, ed25519.NewKeyFromSeed(seed))
}
