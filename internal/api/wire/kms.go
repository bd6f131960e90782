package wire

import (
	"encoding/json"
	"time"
)

// KMS and secrets routes (internal/api/kms_routes.go). Binary values
// (plaintexts, data keys, secret values) travel as standard base64.
// Resources: Key::"<name>" and Secret::"<path>".
//
//	POST   /v1/kms/keys                          KMSKeyCreateRequest → KMSKey           kms.key.create (System)
//	GET    /v1/kms/keys                          → KMSKeyList                           kms.key.list (System)
//	GET    /v1/kms/keys/{name}                   → KMSKey                               kms.key.get
//	POST   /v1/kms/keys/{name}/rotate            → KMSKey                               kms.key.rotate
//	POST   /v1/kms/keys/{name}/disable           → 202 KMSRequest                       kms.key.disable
//	POST   /v1/kms/keys/{name}/enable            → KMSKey                               kms.key.disable
//	POST   /v1/kms/keys/{name}/versions/{v}/destroy → 202 KMSRequest                    kms.key.destroy
//	PUT    /v1/kms/keys/{name}/min-decryption-version KMSSetMinVersionRequest
//	                                             → 200 KMSChange{Key} | 202 KMSChange{Pending}  kms.key.set_min_version
//	POST   /v1/kms/keys/{name}/encrypt           KMSEncryptRequest → KMSEncryptResponse kms.encrypt
//	POST   /v1/kms/keys/{name}/decrypt           KMSDecryptRequest → KMSDecryptResponse kms.decrypt
//	POST   /v1/kms/keys/{name}/encrypt-batch     KMSEncryptBatchRequest → KMSEncryptBatchResponse kms.encrypt
//	POST   /v1/kms/keys/{name}/decrypt-batch     KMSDecryptBatchRequest → KMSDecryptBatchResponse kms.decrypt
//	POST   /v1/kms/keys/{name}/datakey           KMSDataKeyRequest → KMSDataKeyResponse kms.datakey
//	POST   /v1/kms/keys/{name}/rewrap            KMSRewrapRequest → KMSEncryptResponse  kms.rewrap
//	GET    /v1/kms/requests?state=pending        → KMSRequestList                       kms.key.list (System)
//	GET    /v1/kms/requests/{id}                 → KMSRequest                           kms.key.list (System)
//	POST   /v1/kms/requests/{id}/approve         KMSApproveRequest → KMSRequest         kms.key.list, then the request's own action on its subject with context.approval = true
//	POST   /v1/kms/requests/{id}/cancel          → KMSRequest                           kms.key.list, then the request's own action on its subject with context.cancel = true
//	PUT    /v1/secrets/value/{path...}           SecretPutRequest → 200|202 SecretPutResponse secret.put
//	POST   /v1/secrets/read/{path...}            SecretReadRequest → SecretValue        secret.get
//	GET    /v1/secrets?prefix=p                  → SecretList                           secret.list (Secret::"<prefix>")
//	GET    /v1/secrets/versions/{path...}        → SecretVersions                       secret.versions
//	DELETE /v1/secrets/value/{path...}           → 200|202 SecretDeleteResponse         secret.delete
//
// Decrypt and rewrap name the key in the path; the server refuses a
// ciphertext made with another key (the CLI takes the name from the
// ciphertext's "ilk:v1:<name>:" prefix).

// KMSKey describes a named key; it never carries key material.
type KMSKey struct {
	Name                 string          `json:"name"`
	CreatedAt            time.Time       `json:"created_at"`
	CreatedBy            string          `json:"created_by"`
	CurrentVersion       int             `json:"current_version"`
	MinDecryptionVersion int             `json:"min_decryption_version"`
	Disabled             bool            `json:"disabled"`
	RotationPeriodS      int64           `json:"rotation_period_s"` // 0: no scheduled rotation
	MaxEncryptions       int64           `json:"max_encryptions"`   // per version before automatic rotation
	NextRotationAt       time.Time       `json:"next_rotation_at,omitzero"`
	Versions             []KMSKeyVersion `json:"versions"`
}

// KMSKeyVersion describes one version of a key.
type KMSKeyVersion struct {
	Version     int       `json:"version"`
	CreatedAt   time.Time `json:"created_at"`
	Encryptions int64     `json:"encryptions"`
	Decryptions int64     `json:"decryptions"`
	Destroyed   bool      `json:"destroyed,omitempty"`
	DestroyedAt time.Time `json:"destroyed_at,omitzero"`
}

// KMSKeyCreateRequest creates a key. Zero values take server defaults.
type KMSKeyCreateRequest struct {
	Name string `json:"name"`
	// RotationPeriodS: 0 = server default (90 days), -1 = never on schedule.
	RotationPeriodS int64 `json:"rotation_period_s,omitempty"`
	MaxEncryptions  int64 `json:"max_encryptions,omitempty"`
}

// KMSKeyList lists keys by name.
type KMSKeyList struct {
	Keys []KMSKey `json:"keys"`
}

// KMSEncryptRequest encrypts Plaintext (base64) bound to Context.
type KMSEncryptRequest struct {
	Plaintext string            `json:"plaintext"`
	Context   map[string]string `json:"context,omitempty"`
}

// KMSEncryptResponse is a ciphertext in text form: ilk:v1:<key>:<version>:<base64url>.
type KMSEncryptResponse struct {
	Ciphertext string `json:"ciphertext"`
	Key        string `json:"key"`
	Version    int    `json:"version"`
}

// KMSDecryptRequest decrypts a ciphertext; Context must equal the one
// given at encryption.
type KMSDecryptRequest struct {
	Ciphertext string            `json:"ciphertext"`
	Context    map[string]string `json:"context,omitempty"`
}

// KMSDecryptResponse carries the plaintext (base64).
type KMSDecryptResponse struct {
	Plaintext string `json:"plaintext"`
	Key       string `json:"key"`
	Version   int    `json:"version"`
}

// KMSEncryptBatchRequest encrypts up to 500 items in one call (one
// policy decision, one audit entry); any invalid item refuses the whole
// batch with a problem naming it (items[i]).
type KMSEncryptBatchRequest struct {
	Items []KMSEncryptRequest `json:"items"`
}

// KMSEncryptBatchResponse holds one ciphertext per item, in request order.
type KMSEncryptBatchResponse struct {
	Key   string           `json:"key"`
	Items []KMSBatchCipher `json:"items"`
}

// KMSBatchCipher is one ciphertext of a batch.
type KMSBatchCipher struct {
	Ciphertext string `json:"ciphertext"`
	Version    int    `json:"version"`
}

// KMSDecryptBatchRequest decrypts up to 500 ciphertexts of the key the
// path names, all or none.
type KMSDecryptBatchRequest struct {
	Items []KMSDecryptRequest `json:"items"`
}

// KMSDecryptBatchResponse holds one plaintext (base64) per item, in
// request order.
type KMSDecryptBatchResponse struct {
	Key   string          `json:"key"`
	Items []KMSBatchPlain `json:"items"`
}

// KMSBatchPlain is one plaintext of a batch.
type KMSBatchPlain struct {
	Plaintext string `json:"plaintext"`
	Version   int    `json:"version"`
}

// KMSDataKeyRequest asks for a fresh 256-bit data key.
type KMSDataKeyRequest struct {
	Context map[string]string `json:"context,omitempty"`
}

// KMSDataKeyResponse is a data key (base64) and its ciphertext under the
// named key; keep Ciphertext with the data and forget Plaintext.
type KMSDataKeyResponse struct {
	Plaintext  string `json:"plaintext"`
	Ciphertext string `json:"ciphertext"`
	Key        string `json:"key"`
	Version    int    `json:"version"`
}

// KMSRewrapRequest re-wraps a ciphertext under its key's newest version.
type KMSRewrapRequest struct {
	Ciphertext string            `json:"ciphertext"`
	Context    map[string]string `json:"context,omitempty"`
}

// KMSSetMinVersionRequest sets a key's minimum decryption version.
type KMSSetMinVersionRequest struct {
	Version int `json:"version"`
}

// KMSChange is the answer to a change that may need a second person:
// either Key (done, 200) or Pending (202, nothing changed yet).
type KMSChange struct {
	Key     *KMSKey     `json:"key,omitempty"`
	Pending *KMSRequest `json:"pending,omitempty"`
}

// KMSRequest is a dual-control request. A second person approves it by
// Hash, the SHA-256 of Content, after reading Content.
type KMSRequest struct {
	ID           string          `json:"id"`
	Action       string          `json:"action"`
	Subject      string          `json:"subject"`
	Content      json.RawMessage `json:"content"`
	Hash         string          `json:"hash"`
	RequestedBy  string          `json:"requested_by"`
	RequestedAt  time.Time       `json:"requested_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	State        string          `json:"state"` // pending, scheduled, done, cancelled, expired, failed
	ApprovedBy   string          `json:"approved_by,omitempty"`
	ApprovedAt   time.Time       `json:"approved_at,omitzero"`
	ExecuteAfter time.Time       `json:"execute_after,omitzero"`
	FinishedAt   time.Time       `json:"finished_at,omitzero"`
	Note         string          `json:"note,omitempty"`
	// Warning, on an approval's answer, says that separation of duties
	// rests on one person (a single active admin).
	Warning string `json:"warning,omitempty"`
}

// KMSRequestList lists requests, newest first.
type KMSRequestList struct {
	Requests []KMSRequest `json:"requests"`
}

// KMSApproveRequest approves a request by the hash of what it says.
type KMSApproveRequest struct {
	Hash string `json:"hash"`
}

// Secret describes a secret without its value.
type Secret struct {
	Path           string    `json:"path"`
	Key            string    `json:"key"`
	Critical       bool      `json:"critical"`
	CurrentVersion int       `json:"current_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Deleted        bool      `json:"deleted,omitempty"`
}

// SecretPutRequest stores Value (base64) as the secret's next version.
type SecretPutRequest struct {
	Value    string `json:"value"`
	Key      string `json:"key,omitempty"`      // empty: the secret's key, or the server default
	Critical *bool  `json:"critical,omitempty"` // nil: unchanged
}

// SecretPutResponse is the stored secret (200) or, for a critical secret,
// the request awaiting a second person (202).
type SecretPutResponse struct {
	Secret  *Secret     `json:"secret,omitempty"`
	Pending *KMSRequest `json:"pending,omitempty"`
}

// SecretReadRequest reads a secret. Reason is required and audited.
type SecretReadRequest struct {
	Reason  string `json:"reason"`
	Version int    `json:"version,omitempty"` // 0: current
}

// SecretValue is one version of a secret, Value in base64.
type SecretValue struct {
	Path      string    `json:"path"`
	Version   int       `json:"version"`
	Value     string    `json:"value"`
	CreatedAt time.Time `json:"created_at"`
}

// SecretList lists secrets by path.
type SecretList struct {
	Secrets []Secret `json:"secrets"`
}

// SecretVersion describes one stored version.
type SecretVersion struct {
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// SecretVersions is a secret and its stored versions.
type SecretVersions struct {
	Secret   Secret          `json:"secret"`
	Versions []SecretVersion `json:"versions"`
}

// SecretDeleteResponse reports a deletion (200) or the request awaiting a
// second person (202).
type SecretDeleteResponse struct {
	Deleted bool        `json:"deleted"`
	Pending *KMSRequest `json:"pending,omitempty"`
}
