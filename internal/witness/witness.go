// Package witness is a C2SP tlog-witness (https://c2sp.org/tlog-witness):
// an HTTP service that cosigns a log's checkpoint only after checking that
// it extends the last checkpoint it cosigned for that log, so that a log
// cannot show two different histories to two groups of people without one
// of them holding a checkpoint no honest witness signed.
//
// It owns the protocol (POST /add-checkpoint), the per-log state (one file
// per origin in a state directory, replaced atomically and fsynced before
// any answer) and the witness key. It knows nothing about Interlock's
// server: any log that publishes C2SP checkpoints signed with an Ed25519
// note key can use it. Only internal/cli imports it.
package witness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/interlock-dev/interlock/internal/tlog"
)

// MaxBodyBytes bounds an add-checkpoint request: 63 proof lines and a
// checkpoint with a few dozen signatures fit many times over.
const MaxBodyBytes = 64 << 10

// maxProofLines is the protocol's limit on consistency proof lines.
const maxProofLines = 63

// Config configures a [Witness]. Logs, StateDir and Signer are required.
type Config struct {
	// Logs are the signed-note verifier keys of the logs this witness
	// cosigns; a key's name is the log's origin. Several keys may name
	// one origin (key rotation).
	Logs []string
	// StateDir holds the latest cosigned checkpoint of each log.
	StateDir string
	// Signer signs cosignatures (a *tlog.Cosigner).
	Signer note.Signer
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// Witness answers add-checkpoint requests.
type Witness struct {
	signer note.Signer
	logs   map[string][]note.Verifier // by origin
	state  *stateDir
	log    *slog.Logger

	// mu makes "check old size against the stored one, then store the
	// new checkpoint" one step, as the protocol requires: without it a
	// slower request for a smaller tree could overwrite a larger one.
	mu sync.Mutex
}

// New validates cfg and opens the state directory.
func New(cfg Config) (*Witness, error) {
	if cfg.Signer == nil {
		return nil, errors.New("witness: a signer is required")
	}
	if len(cfg.Logs) == 0 {
		return nil, errors.New("witness: name at least one log key (--log-key)")
	}
	w := &Witness{signer: cfg.Signer, logs: map[string][]note.Verifier{}, log: cfg.Log}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range cfg.Logs {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("witness: log key %q is not a signed-note verifier key: %v", k, err)
		}
		w.logs[v.Name()] = append(w.logs[v.Name()], v)
	}
	st, err := openStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	w.state = st
	return w, nil
}

// Error is a refusal with the HTTP status the protocol names for it.
type Error struct {
	Status int
	// Size is, for 409 Conflict, the size of the latest cosigned
	// checkpoint (the response body).
	Size uint64
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func refuse(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Request is a parsed add-checkpoint body.
type Request struct {
	OldSize    uint64
	Proof      [][]byte
	Checkpoint []byte // the signed note
}

// ParseRequest parses an add-checkpoint body: "old N", proof lines, an
// empty line, then the signed checkpoint.
func ParseRequest(body []byte) (Request, error) {
	var req Request
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return req, refuse(http.StatusBadRequest, "the request body must start with a line \"old <size>\"")
	}
	v, ok := strings.CutPrefix(string(line), "old ")
	n, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil || (len(v) > 1 && v[0] == '0') {
		return req, refuse(http.StatusBadRequest, "the first line must be \"old <size>\" with the size in decimal without leading zeroes, not %q", line)
	}
	req.OldSize = n
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return req, refuse(http.StatusBadRequest, "the consistency proof must end with an empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == maxProofLines {
			return req, refuse(http.StatusBadRequest, "the consistency proof has more than %d lines", maxProofLines)
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != tlog.HashSize {
			return req, refuse(http.StatusBadRequest, "consistency proof line %d is not a base64 SHA-256 hash", len(req.Proof)+1)
		}
		req.Proof = append(req.Proof, h)
	}
	req.Checkpoint = rest
	return req, nil
}

// AddCheckpoint runs the protocol's checks on req and, when they pass,
// records the checkpoint as the log's latest (durably) and returns the
// cosignature lines ("— name base64\n"). Refusals are *[Error]s.
func (w *Witness) AddCheckpoint(ctx context.Context, req Request) ([]byte, error) {
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	keys, ok := w.logs[origin]
	if !ok {
		return nil, refuse(http.StatusNotFound, "this witness does not witness a log named %q", origin)
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(keys...))
	if err != nil {
		return nil, refuse(http.StatusForbidden, "the checkpoint carries no valid signature by a key this witness trusts for %q: %v", origin, err)
	}
	cp, err := tlog.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "the checkpoint body is not a C2SP checkpoint: %v", err)
	}
	if cp.Origin != origin {
		return nil, refuse(http.StatusBadRequest, "the checkpoint's origin line %q is malformed", origin)
	}
	if req.OldSize > cp.Size {
		return nil, refuse(http.StatusBadRequest, "old size %d is larger than the checkpoint's size %d", req.OldSize, cp.Size)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	prev, err := w.state.load(origin, keys)
	if err != nil {
		return nil, err
	}
	have := uint64(0)
	if prev != nil {
		have = prev.Size
	}
	if req.OldSize != have {
		return nil, &Error{Status: http.StatusConflict, Size: have,
			Msg: fmt.Sprintf("old size %d does not match the %d entries of the latest checkpoint this witness cosigned for %q", req.OldSize, have, origin)}
	}
	switch {
	case req.OldSize == cp.Size:
		if len(req.Proof) != 0 {
			return nil, refuse(http.StatusUnprocessableEntity, "a checkpoint of the same size as the old one needs an empty consistency proof")
		}
		if prev != nil && subtle.ConstantTimeCompare(prev.Hash, cp.Hash) != 1 {
			w.log.ErrorContext(ctx, "refused a forked checkpoint: same size, different root",
				slog.String("origin", origin), slog.Uint64("size", cp.Size), slog.String("checkpoint", string(req.Checkpoint)))
			return nil, &Error{Status: http.StatusConflict, Size: have,
				Msg: fmt.Sprintf("log fork: this witness cosigned a different root for size %d of %q", cp.Size, origin)}
		}
	case req.OldSize == 0:
		if len(req.Proof) != 0 {
			return nil, refuse(http.StatusUnprocessableEntity, "the consistency proof from size 0 must be empty")
		}
	default:
		if err := tlog.VerifyConsistency(prev.Size, cp.Size, req.Proof, prev.Hash, cp.Hash); err != nil {
			w.log.WarnContext(ctx, "refused a checkpoint whose consistency proof fails",
				slog.String("origin", origin), slog.Uint64("old", prev.Size), slog.Uint64("size", cp.Size), slog.String("checkpoint", string(req.Checkpoint)))
			return nil, refuse(http.StatusUnprocessableEntity, "the consistency proof from size %d to %d does not verify: %v", prev.Size, cp.Size, err)
		}
	}
	// Keep only the log's own signature in the state: it is what the
	// next request is checked against.
	logOnly := []byte(n.Text + "\n")
	for _, s := range n.Sigs {
		logOnly = append(logOnly, "— "+s.Name+" "+s.Base64+"\n"...)
	}
	if err := w.state.store(origin, logOnly); err != nil {
		return nil, err
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("witness: cosign: %w", err)
	}
	// note.Sign put the text, a blank line, then our one signature line.
	sig := cosigned[len(n.Text)+1:]
	w.log.InfoContext(ctx, "cosigned a checkpoint", slog.String("origin", origin), slog.Uint64("old", req.OldSize), slog.Uint64("size", cp.Size))
	return sig, nil
}

// Handler serves POST /add-checkpoint. Refusals answer with the status
// the protocol names and a sentence; 409 answers with the size the
// witness has (text/x.tlog.size), as the protocol requires.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.serveAddCheckpoint)
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "This is a C2SP tlog-witness: POST /add-checkpoint is its only route.", http.StatusNotFound)
	})
	return mux
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxBodyBytes))
	if err != nil {
		http.Error(rw, fmt.Sprintf("The request body could not be read or is over %d bytes.", MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	req, err := ParseRequest(body)
	var sigs []byte
	if err == nil {
		sigs, err = w.AddCheckpoint(r.Context(), req)
	}
	var we *Error
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = rw.Write(sigs)
	case errors.As(err, &we) && we.Status == http.StatusConflict:
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", we.Size)
	case errors.As(err, &we):
		http.Error(rw, we.Msg+".", we.Status)
	default:
		w.log.ErrorContext(r.Context(), "add-checkpoint failed", slog.String("error", err.Error()))
		http.Error(rw, "The witness could not record the checkpoint; nothing was cosigned. Try again later.", http.StatusServiceUnavailable)
	}
}

// ReadSize parses a 409 answer's body (text/x.tlog.size).
func ReadSize(r io.Reader) (uint64, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 64)).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("conflict answer: %w", err)
	}
	return strconv.ParseUint(strings.TrimSuffix(line, "\n"), 10, 64)
}
