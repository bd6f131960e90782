package passkey

import (
	"context"
	"errors"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
)

// ErrNotFound is what the store wraps when no passkey has the asked id.
var ErrNotFound = errors.New("passkey not found")

// Passkey is one stored credential.
type Passkey struct {
	ID         string // base64url of the WebAuthn credential id
	PersonID   string
	Name       string
	Credential []byte // go-webauthn Credential as JSON (public)
	CreatedAt  time.Time
	LastUsed   time.Time
}

// Store keeps passkeys; internal/store implements it (migration 440).
type Store interface {
	InTx(ctx context.Context, fn func(Tx) error) error
	Passkeys(ctx context.Context, personID string) ([]Passkey, error)
	Passkey(ctx context.Context, id string) (Passkey, error)
}

// Tx is one transaction: a passkey change and its audit entry commit
// together.
type Tx interface {
	audit.Tx
	InsertPasskey(ctx context.Context, p Passkey) error
	DeletePasskey(ctx context.Context, personID, id string) (bool, error)
	UpdatePasskeyUse(ctx context.Context, id string, credential []byte, at time.Time) error
}
