package identity

import (
	"context"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
)

// Store is what the identity service needs from the database. internal/store
// implements it (internal/store/identity.go) and the storetest suite checks
// both dialects; fake_test.go holds an in-memory one for unit tests.
//
// Read methods return an error wrapping store.ErrNotFound (tested through
// [Store.IsNotFound]) when the row does not exist.
type Store interface {
	Reader
	// InTx runs fn in one transaction; fn's writes and audit entries commit
	// together or not at all. fn MAY be run more than once.
	InTx(ctx context.Context, fn func(Tx) error) error
	// IsNotFound reports whether err means "no such row".
	IsNotFound(err error) bool
}

// Reader holds the reads, available both outside and inside a transaction.
type Reader interface {
	CountPersons(ctx context.Context) (int, error)
	PersonByID(ctx context.Context, id string) (Person, error)
	PersonByUsername(ctx context.Context, username string) (Person, error)
	ListPersons(ctx context.Context) ([]Person, error)
	DeviceByID(ctx context.Context, id string) (Device, error)
	DeviceByJKT(ctx context.Context, jkt string) (Device, error)
	// ListDevices lists personID's devices, or every device when personID is "".
	ListDevices(ctx context.Context, personID string) ([]Device, error)
	// LoginSessionByTokenHash returns the session, its device and its
	// person in one read, so that Authenticate sees one consistent state.
	LoginSessionByTokenHash(ctx context.Context, tokenHash []byte) (SessionView, error)
	BootstrapCodeByHash(ctx context.Context, codeHash []byte) (BootstrapCode, error)
	InvitationByCodeHash(ctx context.Context, codeHash []byte) (Invitation, error)
	// LoginFailuresSince returns the times of username's failed sign-ins
	// at or after since, oldest first.
	LoginFailuresSince(ctx context.Context, username string, since time.Time) ([]time.Time, error)
	// InvitationsOfPerson lists every invitation of personID (accepted or
	// not), oldest first.
	InvitationsOfPerson(ctx context.Context, personID string) ([]Invitation, error)
	// RoleGrantsOfPerson lists every role grant of personID, replaced ones
	// too (RevokedAt set), oldest first.
	RoleGrantsOfPerson(ctx context.Context, personID string) ([]RoleGrant, error)
}

// Tx is one transaction. Method names are chosen not to clash with other
// domains' Tx methods, since one store transaction implements them all.
type Tx interface {
	audit.Tx
	Reader

	InsertPerson(ctx context.Context, p Person) error
	// SetPersonCredentials stores sealed credentials, resets the TOTP
	// step to 0, and sets status.
	SetPersonCredentials(ctx context.Context, personID string, passwordSealed, totpSealed []byte, status string) error
	SetPersonStatus(ctx context.Context, personID, status string) error
	SetPersonRoles(ctx context.Context, personID string, roles []string) error
	// AdvancePersonTOTPStep sets the person's last accepted TOTP time step
	// to step if it is greater than the stored one, and reports whether it
	// did. It MUST be a single conditional write so that two servers
	// cannot both accept the same code.
	AdvancePersonTOTPStep(ctx context.Context, personID string, step int64) (bool, error)

	// ReplaceBootstrapCode deletes every bootstrap code and stores c.
	ReplaceBootstrapCode(ctx context.Context, c BootstrapCode) error
	// UseBootstrapCode marks the code used if it was unused, and reports
	// whether it did.
	UseBootstrapCode(ctx context.Context, codeHash []byte, at time.Time) (bool, error)

	// ReplaceInvitation deletes the person's unaccepted invitations and stores inv.
	ReplaceInvitation(ctx context.Context, inv Invitation) error
	// AcceptInvitation marks the invitation accepted if it was not, and
	// reports whether it did.
	AcceptInvitation(ctx context.Context, id string, at time.Time) (bool, error)

	// ReplaceRoleGrants marks the person's current grants replaced at at
	// and records grants, which MUST match the roles the person now holds.
	ReplaceRoleGrants(ctx context.Context, personID string, at time.Time, grants []RoleGrant) error

	InsertDevice(ctx context.Context, d Device) error
	// RevokeDevice sets the device's revocation time (if not yet revoked)
	// and revokes its sessions.
	RevokeDevice(ctx context.Context, id string, at time.Time) error
	TouchDevice(ctx context.Context, id string, at time.Time) error

	InsertLoginSession(ctx context.Context, s LoginSession) error
	RevokeLoginSession(ctx context.Context, id string, at time.Time) error
	// RevokePersonLoginSessions revokes every unrevoked session of the person.
	RevokePersonLoginSessions(ctx context.Context, personID string, at time.Time) error
	SetLoginSessionMFA(ctx context.Context, id string, at time.Time) error

	InsertLoginFailure(ctx context.Context, username string, at time.Time) error
	// ReserveLoginAttempt atomically counts username's failures since
	// since and, if fewer than max, records this attempt as one (at now)
	// and returns true. Counting and recording MUST be one atomic step
	// (a lock on the username across servers), so that concurrent attempts
	// cannot all pass the count before any of them is recorded; a
	// successful sign-in deletes the reservation with DeleteLoginFailures.
	ReserveLoginAttempt(ctx context.Context, username string, since, now time.Time, max int) (bool, error)
	// DeleteLoginFailures forgets every failure of username (none when it
	// is ""), and everyone's failures older than before (housekeeping).
	DeleteLoginFailures(ctx context.Context, username string, before time.Time) error
}

// Person statuses.
const (
	StatusInvited  = "invited"  // invited, has not set credentials yet
	StatusActive   = "active"   // may sign in
	StatusDisabled = "disabled" // may not sign in; sessions refused
)

// Person is one human with an account. Credentials are sealed (see
// [Sealer]); the password is an Argon2id PHC string before sealing.
type Person struct {
	ID             string
	Username       string
	Roles          []string
	Status         string
	PasswordSealed []byte
	TOTPSealed     []byte
	TOTPLastStep   int64
	CreatedAt      time.Time
}

// Device is a key pair on one of a person's machines, known by its JWK
// thumbprint.
type Device struct {
	ID        string
	PersonID  string
	JKT       string
	PublicJWK string
	Name      string
	CreatedAt time.Time
	LastUsed  time.Time
	RevokedAt time.Time // zero when not revoked
}

// LoginSession is a signed-in session, bound to one device. Only the
// SHA-256 of its token is stored.
type LoginSession struct {
	ID        string
	TokenHash []byte
	PersonID  string
	DeviceID  string
	CreatedAt time.Time
	ExpiresAt time.Time
	MFAAt     time.Time
	RevokedAt time.Time // zero when not revoked
}

// SessionView is a session joined with its device and person.
type SessionView struct {
	Session LoginSession
	Device  Device
	Person  Person
}

// BootstrapCode is the one-time code that creates the first admin.
type BootstrapCode struct {
	CodeHash  []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero when unused
}

// Invitation lets one invited person set their own credentials.
type Invitation struct {
	ID         string
	PersonID   string
	CodeHash   []byte
	InvitedBy  string // the inviter's audit actor, "person:<id>"
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt time.Time // zero when not accepted
}

// GrantedByBootstrap is RoleGrant.GrantedBy for the first admin's role.
const GrantedByBootstrap = "bootstrap"

// RoleGrant records who gave a person a role and when: separation of
// duties needs to know that an approver did not get their power from the
// person they approve for.
type RoleGrant struct {
	PersonID  string
	Role      string
	GrantedBy string // the granter's audit actor, "person:<id>", or GrantedByBootstrap
	GrantedAt time.Time
	RevokedAt time.Time // zero while the grant stands
}
