package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// The batch commands turn a stream of JSON Lines into batch calls, so that
// a script encrypting a table's column makes one call per 500 rows
// instead of one per row. Each input line is one API item; each output
// line answers the input line at the same position. A batch is all or
// nothing on the server, so when one fails the command stops and says
// which lines it held: every line before them has been answered.

// Limits of one call: the server takes at most 500 items (kms.MaxBatchItems) and a 1 MiB
// body; batchBodyBudget leaves room for the JSON around the items.
const (
	batchMaxItems   = 500
	batchBodyBudget = 768 << 10
	maxBatchLine    = 128 << 10
)

func kmsEncryptBatchCmd(e *env) *cobra.Command {
	return kmsBatchCmd(e, "encrypt-batch",
		"Encrypt JSON Lines of {\"plaintext\":BASE64,\"context\":{...}}, printing {\"ciphertext\",\"version\"} per line",
		func(items []wire.KMSEncryptRequest) any { return wire.KMSEncryptBatchRequest{Items: items} },
		func(out *wire.KMSEncryptBatchResponse) []any { return anySlice(out.Items) })
}

func kmsDecryptBatchCmd(e *env) *cobra.Command {
	return kmsBatchCmd(e, "decrypt-batch",
		"Decrypt JSON Lines of {\"ciphertext\":…,\"context\":{...}}, printing {\"plaintext\":BASE64,\"version\"} per line",
		func(items []wire.KMSDecryptRequest) any { return wire.KMSDecryptBatchRequest{Items: items} },
		func(out *wire.KMSDecryptBatchResponse) []any { return anySlice(out.Items) })
}

// kmsBatchCmd is `kms NAME --key KEY [--in FILE]`: lines of Item go to
// POST /v1/kms/keys/KEY/NAME as request(items), and answers(response)
// are printed a line each.
func kmsBatchCmd[Item, Resp any](e *env, name, short string, request func([]Item) any, answers func(*Resp) []any) *cobra.Command {
	var key, in string
	var size int
	cmd := &cobra.Command{
		Use:   name + " --key NAME [--in FILE] [--batch-size N]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if size < 1 || size > batchMaxItems {
				return fmt.Errorf("--batch-size must be from 1 to %d; got %d", batchMaxItems, size)
			}
			c, err := kmsClient(e)
			if err != nil {
				return err
			}
			path := "/v1/kms/keys/" + url.PathEscape(key) + "/" + name
			return batchLines(e, in, size, func(items []Item) ([]any, error) {
				var out Resp
				if err := c.Do(cmd.Context(), "POST", path, request(items), &out); err != nil {
					return nil, err
				}
				return answers(&out), nil
			})
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "key name")
	cmd.Flags().StringVar(&in, "in", "-", "JSON Lines file (- for stdin)")
	cmd.Flags().IntVar(&size, "batch-size", batchMaxItems, "items per call (smaller for a key that rotates more often)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// batchLines reads JSON Lines of T from file, sends them in batches within
// the server's limits, and prints one JSON line per answer, in order.
// Blank lines are skipped; a line that is not a T stops the command before
// its batch is sent.
func batchLines[T any](e *env, file string, maxItems int, send func([]T) ([]any, error)) error {
	var r io.Reader = e.stdin
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxBatchLine)
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	var items []T
	var first, line, size int // first: line number of items[0]
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		answers, err := send(items)
		if err != nil {
			return fmt.Errorf("lines %d to %d were one batch and none of them was answered (every line before them was): %w", first, line, err)
		}
		if len(answers) != len(items) {
			return fmt.Errorf("the server answered %d of the %d items of lines %d to %d", len(answers), len(items), first, line)
		}
		for _, a := range answers {
			if err := enc.Encode(a); err != nil {
				return err
			}
		}
		items, size = items[:0], 0
		return out.Flush()
	}
	for sc.Scan() {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			line++
			continue
		}
		line++
		var it T
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&it); err != nil || dec.More() {
			if err == nil {
				err = fmt.Errorf("more than one JSON value")
			}
			from := line
			if len(items) > 0 {
				from = first
			}
			return fmt.Errorf("line %d is not a batch item (%v); nothing from line %d on was sent", line, err, from)
		}
		// The budget counts the item as it will be sent (re-encoded, which
		// may escape characters), not as it was read.
		sent, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if len(items) == maxItems || len(items) > 0 && size+len(sent) > batchBodyBudget {
			line-- // flush reports the lines it holds
			if err := flush(); err != nil {
				return err
			}
			line++
		}
		if len(items) == 0 {
			first = line
		}
		items = append(items, it)
		size += len(sent) + 1
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read line %d: %w", line+1, err)
	}
	return flush()
}
