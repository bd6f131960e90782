package kms

import (
	"context"
	"errors"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
)

// Errors a [Store] returns; internal/store wraps its own sentinels with
// these so that kms need not import it.
var (
	// ErrNoRecord means the row asked for does not exist.
	ErrNoRecord = errors.New("kms: no such record")
	// ErrDuplicate means an insert collided with an existing row.
	ErrDuplicate = errors.New("kms: record already exists")
)

// KeyRecord is a named key as stored.
type KeyRecord struct {
	Name                 string
	CreatedAt            time.Time
	CreatedBy            string // actor
	CurrentVersion       int
	MinDecryptionVersion int
	Disabled             bool
	RotationPeriod       time.Duration // 0: never on schedule
	MaxEncryptions       int64         // per version, before automatic rotation
}

// VersionRecord is one version of a named key. Wrapped is the
// key-encryption key sealed by the root key; it is nil once destroyed.
type VersionRecord struct {
	KeyName     string
	Version     int
	Wrapped     []byte
	CreatedAt   time.Time
	Encryptions int64
	Decryptions int64
	DestroyedAt time.Time // zero while the version exists
}

// SecretRecord is a secret path's metadata.
type SecretRecord struct {
	Path           string
	KeyName        string
	Critical       bool
	CurrentVersion int // 0 when deleted
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeletedAt      time.Time // zero unless deleted
}

// SecretVersionRecord is one stored value of a secret. Ciphertext is the
// envelope text form ("ilk:v1:…"); the store never sees the value.
type SecretVersionRecord struct {
	Path       string
	Version    int
	Ciphertext string
	CreatedAt  time.Time
	CreatedBy  string
}

// RequestRecord is a dual-control request as stored.
type RequestRecord struct {
	ID           string
	Action       string // see Action* constants
	Subject      string // "key:<name>" or "secret:<path>"
	Content      []byte // canonical JSON that Hash covers; never holds secrets
	Payload      []byte // sealed material the change needs (a new secret's ciphertext), or nil
	Hash         string // hex SHA-256 of Content
	RequestedBy  string // person ID
	RequestedAt  time.Time
	ExpiresAt    time.Time
	State        string // pending, scheduled, done, cancelled, failed
	ApprovedBy   string // person ID
	ApprovedAt   time.Time
	ExecuteAfter time.Time // when an approved request may run (destroy waits)
	FinishedAt   time.Time
	Note         string // why it failed or was cancelled
}

// Reader holds the reads kms needs, both inside and outside a transaction.
type Reader interface {
	GetKMSKey(ctx context.Context, name string) (KeyRecord, error)
	ListKMSKeys(ctx context.Context) ([]KeyRecord, error)
	ListKMSKeyVersions(ctx context.Context, name string) ([]VersionRecord, error)
	GetKMSSecret(ctx context.Context, path string) (SecretRecord, error)
	// ListKMSSecrets lists non-deleted secrets whose path starts with prefix.
	ListKMSSecrets(ctx context.Context, prefix string) ([]SecretRecord, error)
	GetKMSSecretVersion(ctx context.Context, path string, version int) (SecretVersionRecord, error)
	ListKMSSecretVersions(ctx context.Context, path string) ([]SecretVersionRecord, error)
	GetKMSRequest(ctx context.Context, id string) (RequestRecord, error)
	// ListKMSRequests lists requests in state (all states when empty), newest first.
	ListKMSRequests(ctx context.Context, state string) ([]RequestRecord, error)
	// GetKMSMeta returns a bookkeeping value, or ErrNoRecord.
	GetKMSMeta(ctx context.Context, name string) ([]byte, error)
}

// Tx is one transaction. Every change kms makes goes through a Tx together
// with its audit entry.
type Tx interface {
	audit.Tx
	Reader
	InsertKMSKey(ctx context.Context, k KeyRecord) error
	// UpdateKMSKey writes the mutable fields (current and minimum version,
	// disabled, rotation settings) of k.Name.
	UpdateKMSKey(ctx context.Context, k KeyRecord) error
	InsertKMSKeyVersion(ctx context.Context, v VersionRecord) error
	// AddKMSKeyUsage adds to a version's counters if, at this moment, the
	// version is not destroyed, the key is not disabled and the version is
	// at least the key's minimum decryption version. It reports whether it
	// did, so that a batch can refuse work that a concurrent change forbade.
	AddKMSKeyUsage(ctx context.Context, name string, version int, encryptions, decryptions int64) (bool, error)
	// DestroyKMSKeyVersion erases the wrapped key of a version.
	DestroyKMSKeyVersion(ctx context.Context, name string, version int, at time.Time) error
	// PutKMSSecret inserts or replaces a secret's metadata row.
	PutKMSSecret(ctx context.Context, s SecretRecord) error
	InsertKMSSecretVersion(ctx context.Context, v SecretVersionRecord) error
	// DeleteKMSSecretVersions erases every stored value of path.
	DeleteKMSSecretVersions(ctx context.Context, path string) error
	InsertKMSRequest(ctx context.Context, r RequestRecord) error
	// UpdateKMSRequest writes State, ApprovedBy, ApprovedAt, ExecuteAfter,
	// FinishedAt and Note of r.ID.
	UpdateKMSRequest(ctx context.Context, r RequestRecord) error
	PutKMSMeta(ctx context.Context, name string, value []byte) error
}

// Store is the persistence kms needs. internal/store implements it
// (db.KMSStore()); the conformance suite is storetest/kms.go.
type Store interface {
	Reader
	InTx(ctx context.Context, fn func(Tx) error) error
}
