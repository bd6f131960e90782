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
	// IntegratedSize counts the entries already in the tree; those from
	// Size on are not yet covered by a signed checkpoint (seconds).
	IntegratedSize uint64 `json:"integrated_size,omitempty"`
	// Refusing, when set, says why the log's signer refuses to sign (its
	// database does not extend what it signed); Checkpoint is then the
	// last checkpoint the signer signed.
	Refusing string `json:"refusing,omitempty"`
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
	// PersonalSalts are the salts of Personal, by name: with them a
	// client checks each value against the commitment in Leaf.
	PersonalSalts map[string][]byte `json:"personal_salts,omitempty"`
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

// LogForkRequest is the body of POST /v1/log/fork.
type LogForkRequest struct {
	Reason string `json:"reason"`
}

// LogForkResponse is what a fork recorded.
type LogForkResponse struct {
	// Index is the fork entry's index; Epoch the epoch it begins.
	Index uint64 `json:"index"`
	Epoch uint64 `json:"epoch"`
	// PreviousSize and PreviousRootHash are the checkpoint the signer had
	// signed before the fork; entries from Index up to PreviousSize of
	// the old epoch are not in the new one.
	PreviousSize     uint64 `json:"previous_size"`
	PreviousRootHash []byte `json:"previous_root_hash"`
	// Checkpoint is the first signed checkpoint of the new epoch.
	Checkpoint string `json:"checkpoint"`
}
