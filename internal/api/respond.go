package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Decode reads the request body as exactly one JSON value into v,
// rejecting unknown fields, trailing data and bodies over the size limit.
func (c *Call) Decode(v any) error {
	if ct := c.R.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return usererr.New(usererr.Invalid, "bad_content_type", "the body must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(c.R.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return usererr.New(usererr.Invalid, "bad_json", "the body must hold exactly one JSON value; there is more after it")
	}
	return nil
}

func decodeError(err error) error {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return usererr.New(usererr.TooLarge, "body_too_large", "the body is larger than the limit of %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return usererr.New(usererr.Invalid, "bad_json", "the body is empty; this route needs a JSON object")
	case errors.As(err, &syn):
		return usererr.New(usererr.Invalid, "bad_json", "the body is not valid JSON: %v (at byte %d)", syn, syn.Offset)
	case errors.As(err, &typ):
		return usererr.New(usererr.Invalid, "bad_json", "field %q must be %s, not %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return usererr.New(usererr.Invalid, "unknown_field", "the body has a field this route does not take: %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return usererr.New(usererr.Invalid, "bad_json", "the body could not be read as JSON: %v", err)
	}
}

// JSON writes v with the given status.
func (c *Call) JSON(status int, v any) error {
	c.W.Header().Set("Content-Type", "application/json")
	c.W.WriteHeader(status)
	return json.NewEncoder(c.W).Encode(v)
}

// PathValue returns a path wildcard, refusing empty or oversized values.
func (c *Call) PathValue(name string) (string, error) {
	v := c.R.PathValue(name)
	if v == "" || len(v) > 256 {
		return "", usererr.New(usererr.Invalid, "bad_path", "the path parameter %s must be 1 to 256 characters", name)
	}
	return v, nil
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	p := wire.Problem{RequestID: requestID}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = decodeError(err)
	}
	if ue, ok := usererr.As(err); ok {
		p.Status = ue.Kind.HTTPStatus()
		p.Code, p.Detail, p.Details = ue.Code, ue.Msg, ue.Details
		s.log.InfoContext(r.Context(), "request refused", slog.String("request_id", requestID),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", p.Status), slog.String("code", p.Code))
	} else {
		p.Status = http.StatusInternalServerError
		p.Code = "internal"
		p.Detail = fmt.Sprintf("the server failed to handle this request; operators can find it by request ID %s", requestID)
		s.log.ErrorContext(r.Context(), "request failed", slog.String("request_id", requestID),
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}
	p.Title = http.StatusText(p.Status)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
