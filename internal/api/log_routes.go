package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/tlog"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// LogReader is what the log routes need; *audit.Log implements it.
type LogReader interface {
	Origin() string
	PublicKey(ctx context.Context) (string, error)
	Checkpoint(ctx context.Context) (audit.SignedCheckpoint, error)
	Entries(ctx context.Context, start, end uint64) ([]audit.LogEntry, error)
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
	Tile(ctx context.Context, t tlog.Tile) ([]byte, error)
	EntryBundle(ctx context.Context, index uint64, width int) ([]byte, error)
	Export(ctx context.Context, from, to uint64) (*audit.Bundle, error)
	Redact(ctx context.Context, index uint64, actor, reason string) error
	AddCosignature(ctx context.Context, cosigned []byte) error
}

var logResource = Resource{Type: policy.ResourceLog, ID: "interlock"}

// LogRoutes serves the tamper-evident log (see internal/api/wire/log.go).
func LogRoutes(l LogReader) []Route {
	h := logHandlers{l: l}
	res := func(*http.Request) Resource { return logResource }
	read := policy.ActionLogRead
	return []Route{
		{Pattern: "GET /v1/log", Action: read, Resource: res, Handle: h.info},
		{Pattern: "GET /v1/log/checkpoint", Action: read, Resource: res, Handle: h.checkpoint},
		{Pattern: "GET /v1/log/tile/{path...}", Action: read, Resource: res, Handle: h.tile},
		{Pattern: "GET /v1/log/entries", Action: read, Resource: res, Handle: h.entries},
		{Pattern: "GET /v1/log/proof/inclusion", Action: read, Resource: res, Handle: proof("index", "size", l.InclusionProof)},
		{Pattern: "GET /v1/log/proof/consistency", Action: read, Resource: res, Handle: proof("from", "to", l.ConsistencyProof)},
		{Pattern: "GET /v1/log/export", Action: read, Resource: res, Handle: h.export},
		{Pattern: "POST /v1/log/entries/{index}/redact", Action: policy.ActionLogRedact, Resource: res, Handle: h.redact},
		// Any reader may submit; only cosignatures by the witness keys the
		// server is configured with are verified and stored.
		{Pattern: "POST /v1/log/cosignatures", Action: read, Resource: res, Handle: h.cosign},
	}
}

type logHandlers struct{ l LogReader }

// uintParam parses a required non-negative integer query parameter.
func uintParam(c *Call, name string) (uint64, error) {
	v := c.R.URL.Query().Get(name)
	if v == "" {
		return 0, usererr.New(usererr.Invalid, "missing_parameter", "The query parameter %q is required.", name)
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, usererr.New(usererr.Invalid, "bad_parameter", "The query parameter %q must be a whole number from 0 to 2^63-1, not %q.", name, v)
	}
	return n, nil
}

func (h logHandlers) info(c *Call) error {
	cp, err := h.l.Checkpoint(c.Context())
	if err != nil {
		return err
	}
	key, err := h.l.PublicKey(c.Context())
	if err != nil {
		return err
	}
	info := wire.LogInfo{Origin: h.l.Origin(), PublicKey: key, Checkpoint: string(cp.Note),
		Size: cp.Checkpoint.Size, RootHash: cp.Checkpoint.Hash, Time: cp.Checkpoint.Time.Unix()}
	if err := addLogStatus(c.Context(), h.l, &info); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (h logHandlers) checkpoint(c *Call) error {
	cp, err := h.l.Checkpoint(c.Context())
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.W.Header().Set("Cache-Control", "no-cache")
	_, err = c.W.Write(cp.Note)
	return err
}

func (h logHandlers) tile(c *Call) error {
	t, entries, err := tlog.ParseTilePath("tile/" + c.R.PathValue("path"))
	if err != nil {
		return usererr.New(usererr.Invalid, "bad_tile_path", "%s is not a C2SP tlog-tiles path such as tile/0/x001/234 or tile/entries/000.p/17.", c.R.URL.Path)
	}
	var data []byte
	if entries {
		data, err = h.l.EntryBundle(c.Context(), t.Index, t.Width)
	} else {
		data, err = h.l.Tile(c.Context(), t)
	}
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", "application/octet-stream")
	if t.Width == tlog.TileWidth {
		c.W.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	_, err = c.W.Write(data)
	return err
}

func (h logHandlers) entries(c *Call) error {
	start, err := uintParam(c, "start")
	if err != nil {
		return err
	}
	end, err := uintParam(c, "end")
	if err != nil {
		return err
	}
	withPersonal := c.R.URL.Query().Get("personal") == "true"
	if withPersonal {
		if err := c.Authorize(policy.ActionLogRedact, logResource, nil); err != nil {
			return err
		}
	}
	es, err := h.l.Entries(c.Context(), start, end)
	if err != nil {
		return err
	}
	out := wire.LogEntries{Entries: make([]wire.LogEntry, 0, len(es))}
	for _, e := range es {
		we := wire.LogEntry{Index: e.Index, Leaf: e.Leaf, Entry: json.RawMessage(e.Leaf)}
		if withPersonal && len(e.Personal) > 0 {
			we.Personal, we.PersonalSalts = map[string]string{}, map[string][]byte{}
			for _, f := range e.Personal {
				we.Personal[f.Name], we.PersonalSalts[f.Name] = f.Value, f.Salt
			}
		}
		out.Entries = append(out.Entries, we)
	}
	return c.JSON(http.StatusOK, out)
}

// proof serves a proof named by two query parameters, e.g. index and
// size for inclusion, from and to for consistency.
func proof(a, b string, prove func(ctx context.Context, x, y uint64) ([][]byte, error)) func(*Call) error {
	return func(c *Call) error {
		x, err := uintParam(c, a)
		if err != nil {
			return err
		}
		y, err := uintParam(c, b)
		if err != nil {
			return err
		}
		p, err := prove(c.Context(), x, y)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, wire.LogProof{Hashes: p})
	}
}

func (h logHandlers) export(c *Call) error {
	from, err := uintParam(c, "from")
	if err != nil {
		return err
	}
	to, err := uintParam(c, "to")
	if err != nil {
		return err
	}
	b, err := h.l.Export(c.Context(), from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

func (h logHandlers) redact(c *Call) error {
	v, err := c.PathValue("index")
	if err != nil {
		return err
	}
	index, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return usererr.New(usererr.Invalid, "bad_index", "The entry index must be a whole number, not %q.", v)
	}
	var in wire.LogRedactRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if err := h.l.Redact(c.Context(), index, c.Principal.Actor(), in.Reason); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.LogRedacted{Index: index})
}

func (h logHandlers) cosign(c *Call) error {
	var in wire.LogCosignRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Checkpoint) == "" {
		return usererr.New(usererr.Invalid, "no_checkpoint", "The request has no cosigned checkpoint in \"checkpoint\".")
	}
	if err := h.l.AddCosignature(c.Context(), []byte(in.Checkpoint)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, wire.LogCosigned{Stored: true})
}
