package wire

import "encoding/json"

// Tamper-evident log routes (internal/api/log_routes.go). Every route acts
// on the resource Log::"interlock".
//
//	GET  /v1/log                                  → LogInfo                  action log.read
//	GET  /v1/log/checkpoint                       → signed note (text/plain, C2SP tlog-checkpoint)
//	GET  /v1/log/tile/{L}/{N...}                  → tile bytes (C2SP tlog-tiles)  action log.read
//	GET  /v1/log/tile/entries/{N...}              → entry bundle (C2SP tlog-tiles) action log.read
//	GET  /v1/log/entries?start=A&end=B[&personal=true] → LogEntries         action log.read (+ log.redact for personal)
//	GET  /v1/log/proof/inclusion?index=I&size=N   → LogProof                 action log.read
//	GET  /v1/log/proof/consistency?from=A&to=B    → LogProof                 action log.read
//	GET  /v1/log/export?from=A&to=B               → LogBundle                action log.read
//	POST /v1/log/entries/{index}/redact  LogRedactRequest → LogRedacted      action log.redact
//	POST /v1/log/cosignatures  LogCosignRequest → LogCosigned                action log.read
//
// Byte fields ([]byte) are base64 in JSON. Ranges are half-open: start ≤ i < end.

// LogInfo describes the log and its latest checkpoint.
type LogInfo struct {
	Origin string `json:"origin"`
	// PublicKey is the signed-note verifier key clients pin.
	PublicKey string `json:"public_key"`
	// Checkpoint is the latest signed checkpoint note, with any witness
	// cosignatures.
	Checkpoint string `json:"checkpoint"`
	Size       uint64 `json:"size"`
	RootHash   []byte `json:"root_hash"`
	// Time is the checkpoint's signing time (unix seconds).
	Time int64 `json:"time"`
}

// LogEntries is a page of integrated entries.
type LogEntries struct {
	Entries []LogEntry `json:"entries"`
}

// LogEntry is one entry. Leaf is the exact canonical bytes hashed into the
// tree; Entry is the same JSON, for reading.
type LogEntry struct {
	Index uint64          `json:"index"`
	Leaf  []byte          `json:"leaf"`
	Entry json.RawMessage `json:"entry"`
	// Personal holds the personal fields not yet redacted, only when asked
	// for and allowed (log.redact).
	Personal map[string]string `json:"personal,omitempty"`
}

// LogProof is an inclusion or consistency proof (RFC 6962 order).
type LogProof struct {
	Hashes [][]byte `json:"hashes"`
}

// LogRedactRequest erases an entry's personal data.
type LogRedactRequest struct {
	Reason string `json:"reason"`
}

// LogRedacted confirms a redaction; the redaction entry is integrated
// with the next batch.
type LogRedacted struct {
	Index uint64 `json:"index"`
}

// LogCosignRequest carries a checkpoint cosigned by a witness (C2SP
// tlog-cosignature); the log stores cosignatures from its configured
// witnesses beside the checkpoint.
type LogCosignRequest struct {
	Checkpoint string `json:"checkpoint"`
}

// LogCosigned confirms that a cosignature was stored.
type LogCosigned struct {
	Stored bool `json:"stored"`
}

// LogBundle is an offline-verifiable export (see audit.Bundle): the same
// JSON is written to the bundle file.
type LogBundle = json.RawMessage
