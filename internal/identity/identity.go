// Package identity owns who may act in Interlock: persons and their roles,
// credentials (Argon2id passwords and single-use TOTP), the one-time
// bootstrap code that creates the first admin, invitations, device keys
// and the device-bound sessions that [Service.Authenticate] turns into a
// [wire.Principal].
//
// There is no default account or password anywhere: the first admin comes
// from a bootstrap code printed on the server's terminal. Every state
// change is written with its audit entry in the same transaction. Secrets
// (password hashes, TOTP seeds) reach the store only sealed by a [Sealer];
// bearer codes and session tokens reach it only as SHA-256 hashes.
//
// internal/app builds the [Service]; internal/api calls it. It imports
// internal/dpop (thumbprints), internal/audit and internal/api/wire, never
// the store or a SQL driver.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Sealer encrypts sensitive columns; internal/kms provides it. Callers pass
// the row's identity (e.g. "totp:<personID>") as aad, so a sealed value
// cannot be moved to another row.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Roles a person may hold. Their meaning is the Cedar policy's.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleApprover = "approver"
	RoleAdmin    = "admin"
)

// Roles lists every role, in order of privilege.
var Roles = []string{RoleViewer, RoleOperator, RoleApprover, RoleAdmin}

// Text prefixes of bearer secrets, so that Interlock's scanner finds leaks.
const (
	SessionTokenPrefix   = "ilk_sess_"
	BootstrapCodePrefix  = "ilk_boot_"
	InvitationCodePrefix = "ilk_inv_"
)

// Defaults for Config.
const (
	DefaultSessionTTL       = 12 * time.Hour
	DefaultBootstrapCodeTTL = time.Hour
	DefaultInvitationTTL    = 72 * time.Hour
	DefaultLockoutWindow    = 30 * time.Minute
	DefaultMaxFailures      = 10
	DefaultIssuer           = "Interlock"
)

// Config configures a Service. Store and Sealer are required; every other
// zero value means the documented default.
type Config struct {
	Store  Store
	Sealer Sealer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TOTPNow is the clock one-time codes are checked against; nil means
	// Now. End-to-end tests move it a 30-second step forward per code
	// instead of sleeping until the next step (a code is never accepted
	// twice, so each use needs a new step).
	TOTPNow func() time.Time
	// Rand supplies every random byte (tokens, codes, salts, TOTP seeds);
	// nil means crypto/rand.
	Rand io.Reader
	// Log receives operational messages; nil discards them. Security
	// events go to the audit log, not here.
	Log *slog.Logger

	// SessionTTL is how long a session lasts; zero means 12 h.
	SessionTTL time.Duration
	// BootstrapCodeTTL is how long a bootstrap code works; zero means 1 h.
	BootstrapCodeTTL time.Duration
	// InvitationTTL is how long an invitation code works; zero means 72 h.
	InvitationTTL time.Duration
	// LockoutWindow and MaxFailures: after MaxFailures failed sign-ins
	// (bad password, bad or replayed one-time code) within LockoutWindow, an
	// account refuses every sign-in, even a correct one, until the oldest of
	// them leaves the window. Zero means 30 min and 10.
	LockoutWindow time.Duration
	MaxFailures   int
	// Issuer names the TOTP account in authenticator apps; "" means "Interlock".
	Issuer string
	// Argon2 sets the password hashing cost; the zero value means
	// [DefaultArgon2]. Tests use a cheap one.
	Argon2 Argon2Params
	// MaxConcurrentHashes bounds the password hashes computed at once
	// (each takes Argon2.MemoryKiB); zero means 4. Callers beyond it wait.
	MaxConcurrentHashes int
}

// Service carries out identity use cases. It is safe for concurrent use.
type Service struct {
	store  Store
	sealer Sealer
	now    func() time.Time
	// totpNow is the clock one-time codes are checked against (Config.TOTPNow).
	totpNow func() time.Time
	rand    io.Reader
	log     *slog.Logger

	sessionTTL, bootstrapTTL, invitationTTL, lockoutWindow time.Duration
	maxFailures                                            int
	issuer                                                 string
	argon                                                  Argon2Params

	hashSem   chan struct{}
	dummyOnce sync.Once
	dummy     string // a password hash to verify against for unknown users

	// lockNoted holds, per locked username, until when its lock has been
	// audited, so that a stream of attempts on a locked account writes one
	// entry per lock rather than one per attempt.
	lockMu    sync.Mutex
	lockNoted map[string]time.Time
}

// New returns a Service. It fails when a required field is missing.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("identity: Config.Store is required")
	}
	if cfg.Sealer == nil {
		return nil, errors.New("identity: Config.Sealer is required")
	}
	s := &Service{
		store: cfg.Store, sealer: cfg.Sealer, now: cfg.Now, totpNow: cfg.TOTPNow, rand: cfg.Rand, log: cfg.Log,
		sessionTTL: cfg.SessionTTL, bootstrapTTL: cfg.BootstrapCodeTTL, invitationTTL: cfg.InvitationTTL,
		lockoutWindow: cfg.LockoutWindow, maxFailures: cfg.MaxFailures, issuer: cfg.Issuer, argon: cfg.Argon2,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.sessionTTL, DefaultSessionTTL)
	def(&s.bootstrapTTL, DefaultBootstrapCodeTTL)
	def(&s.invitationTTL, DefaultInvitationTTL)
	def(&s.lockoutWindow, DefaultLockoutWindow)
	if s.maxFailures <= 0 {
		s.maxFailures = DefaultMaxFailures
	}
	if s.issuer == "" {
		s.issuer = DefaultIssuer
	}
	n := cfg.MaxConcurrentHashes
	if n <= 0 {
		n = 4
	}
	s.hashSem = make(chan struct{}, n)
	if s.argon == (Argon2Params{}) {
		s.argon = DefaultArgon2
	}
	if err := s.argon.validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Secret is a bearer secret in text form (a session token, a bootstrap or
// invitation code, a TOTP seed). It prints as "[redacted]" through fmt and
// slog; use [Secret.Reveal] where it must be shown or sent.
type Secret string

// Reveal returns the secret's text.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]".
func (Secret) String() string { return "[redacted]" }

// GoString returns "[redacted]".
func (Secret) GoString() string { return "[redacted]" }

// LogValue returns "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Enrollment is what a person needs to set up their authenticator app.
type Enrollment struct {
	PersonID   string
	Username   string
	TOTPSecret Secret // base32 seed
	TOTPURI    Secret // otpauth:// URI, for a QR code
	// RecoveryCodes are one-time codes for a lost authenticator, shown
	// once (recovery.go); RecoveryCodesLeft counts the unused ones after a
	// recovery used one.
	RecoveryCodes     []Secret
	RecoveryCodesLeft int
}

func (s *Service) randBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("identity: read random: %w", err)
	}
	return b, nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID returns prefix + 16 lower-case base32 characters (80 random bits).
func (s *Service) newID(prefix string) (string, error) {
	b, err := s.randBytes(10)
	if err != nil {
		return "", err
	}
	return prefix + strings.ToLower(idEncoding.EncodeToString(b)), nil
}

// newToken returns prefix + base64url of 32 random bytes, and its hash.
func (s *Service) newToken(prefix string) (Secret, []byte, error) {
	b, err := s.randBytes(32)
	if err != nil {
		return "", nil, err
	}
	tok := prefix + base64.RawURLEncoding.EncodeToString(b)
	return Secret(tok), hashToken(tok), nil
}

// hashToken is how bearer tokens and codes are stored.
func hashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// validRole reports whether r is a known role.
func validRole(r string) bool { return slices.Contains(Roles, r) }

// validateUsername checks a username: 2–64 characters, lower-case letters,
// digits, '.', '_' and '-', starting with a letter.
func validateUsername(u string) error {
	ok := len(u) >= 2 && len(u) <= 64 && u[0] >= 'a' && u[0] <= 'z'
	for i := 0; ok && i < len(u); i++ {
		c := u[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return usererr.New(usererr.Invalid, "invalid_username",
			"A username must be 2 to 64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter.")
	}
	return nil
}

func personActor(id string) string   { return "person:" + id }
func personSubject(id string) string { return "person:" + id }

// appendAudit is audit.Append with the entry's version defaulted to 1.
func appendAudit(ctx context.Context, tx Tx, e audit.Entry) error {
	if e.Version == 0 {
		e.Version = 1
	}
	return audit.Append(ctx, tx, e)
}
