package kms

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Defaults for [Config].
const (
	// DefaultMaxEncryptions is how many encryptions one key version does
	// before it is rotated automatically: 2^30, a quarter of the 2^32
	// random-nonce limit of AES-GCM.
	DefaultMaxEncryptions = 1 << 30
	// HardMaxEncryptions is the highest per-key limit a key may set.
	HardMaxEncryptions = 1 << 31
	// DefaultRotationPeriod is the age at which a key version is rotated.
	DefaultRotationPeriod = 90 * 24 * time.Hour
	// DefaultDestroyDelay is how long an approved key version destruction
	// waits before it runs (and can still be cancelled).
	DefaultDestroyDelay = 7 * 24 * time.Hour
	// DefaultRequestTTL is how long a dual-control request waits for its
	// approval.
	DefaultRequestTTL = 72 * time.Hour
)

// Config configures a [Service]. Store and Root are required.
type Config struct {
	Store Store
	Root  *RootKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand supplies request IDs; nil means crypto/rand. Key material and
	// nonces always come from crypto/rand (inside the FIPS module when it
	// is on), never from Rand.
	Rand io.Reader
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// MaxEncryptions is the default per-version encryption limit of new
	// keys; 0 means DefaultMaxEncryptions.
	MaxEncryptions int64
	// RotationPeriod is the default rotation period of new keys; 0 means
	// DefaultRotationPeriod, negative means no scheduled rotation.
	RotationPeriod time.Duration
	// DestroyDelay is the wait between approving a key version's
	// destruction and carrying it out; 0 means DefaultDestroyDelay,
	// negative means none (tests).
	DestroyDelay time.Duration
	// RequestTTL is how long dual-control requests stay open; 0 means
	// DefaultRequestTTL.
	RequestTTL time.Duration
	// DefaultSecretKey names the key new secrets use when the caller does
	// not name one; empty means "secrets".
	DefaultSecretKey string
	// CacheTTL bounds how long this process trusts its copy of a key's
	// state before re-reading it (other servers may have changed it);
	// 0 means 2 s. Disabling, destroying and raising the minimum version
	// are enforced at commit regardless.
	CacheTTL time.Duration
	// MaxBatch caps how many calls share one audit transaction; 0 means 1024.
	MaxBatch int
	// Independence refuses dual-control approvers who owe their account
	// or role to the requester, or got it after the request (sock
	// puppets). internal/app MUST set it; nil checks only that the
	// approver is not the requester.
	Independence IndependenceChecker
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("kms: Config.Store is required")
	case c.Root == nil:
		return errors.New("kms: Config.Root is required")
	case c.MaxEncryptions < 0 || c.MaxEncryptions > HardMaxEncryptions:
		return fmt.Errorf("kms: MaxEncryptions %d is outside 1..%d", c.MaxEncryptions, int64(HardMaxEncryptions))
	case c.DefaultSecretKey != "" && !ValidKeyName(c.DefaultSecretKey):
		return fmt.Errorf("kms: DefaultSecretKey %q is not a valid key name", c.DefaultSecretKey)
	}
	return nil
}

// Caller is who asks. internal/api builds it from wire.Principal:
// Caller{Kind: p.Kind, ID: p.ID}. Dual control compares IDs of persons.
type Caller struct {
	Kind string // "person", "agent" or "system"
	ID   string
}

// Actor is the caller as audit entries name it.
func (c Caller) Actor() string {
	if c.Kind == "system" {
		return "system"
	}
	return c.Kind + ":" + c.ID
}

func (c Caller) check() error {
	if c.Kind == "" || (c.Kind != "system" && c.ID == "") {
		return errors.New("kms: caller has no identity")
	}
	return nil
}

// Service is the KMS: keys, envelope encryption, secrets and dual
// control. It is safe for concurrent use. Call Close when done.
type Service struct {
	cfg     Config
	store   Store
	now     func() time.Time
	rnd     io.Reader
	log     *slog.Logger
	kek     *Sealer // wraps key-encryption keys
	ctxHash contextHasher
	batch   *batcher

	mu   sync.Mutex
	keys map[string]*keyState

	rotMu sync.Mutex // serializes rotations in this process
}

// keyState is this process's copy of a key, with its unwrapped versions.
type keyState struct {
	rec      KeyRecord
	versions map[int]*versionState
	loadedAt time.Time
}

type versionState struct {
	rec   VersionRecord
	aead  cipher.AEAD // nil once destroyed
	count int64       // encryptions: stored count at load plus those since
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxEncryptions == 0 {
		cfg.MaxEncryptions = DefaultMaxEncryptions
	}
	if cfg.RotationPeriod == 0 {
		cfg.RotationPeriod = DefaultRotationPeriod
	}
	if cfg.DestroyDelay == 0 {
		cfg.DestroyDelay = DefaultDestroyDelay
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.DefaultSecretKey == "" {
		cfg.DefaultSecretKey = "secrets"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 2 * time.Second
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1024
	}
	s := &Service{cfg: cfg, store: cfg.Store, now: cfg.Now, rnd: cfg.Rand, log: cfg.Log, keys: map[string]*keyState{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rnd == nil {
		s.rnd = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.kek, err = newSealer(cfg.Root, "kek"); err != nil {
		return nil, err
	}
	s.ctxHash = contextHasher{key: cfg.Root.derive("context-hmac")}
	s.batch = newBatcher(cfg.Store, cfg.MaxBatch)
	return s, nil
}

// Close stops the audit batcher. Calls after Close fail.
func (s *Service) Close() error {
	s.batch.close()
	return nil
}

const rootCheckName = "root_key_check"

var rootCheckPlain = []byte("interlock kms root key check v1")

// CheckRootKey verifies that the root key is the one this database was
// set up with (a wrong unseal passphrase gives a different key), and
// records the check value on first start. Call it once at startup.
func (s *Service) CheckRootKey(ctx context.Context) error {
	v, err := s.store.GetKMSMeta(ctx, rootCheckName)
	if err == nil {
		pt, err := s.kek.Open(v, []byte(rootCheckName))
		if err != nil || string(pt) != string(rootCheckPlain) {
			return errors.New("the root key does not match this database: the unseal passphrase, key file or environment variable is not the one the data was sealed with")
		}
		return nil
	}
	if !errors.Is(err, ErrNoRecord) {
		return fmt.Errorf("read root key check: %w", err)
	}
	sealed, err := s.kek.Seal(rootCheckPlain, []byte(rootCheckName))
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.PutKMSMeta(ctx, rootCheckName, sealed); err != nil {
			return fmt.Errorf("store root key check: %w", err)
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "kms.root_key.initialized", Version: 1, Actor: "system",
			Subject: "kms", Time: s.now()})
	})
}

func (s *Service) newID(prefix string) (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(s.rnd, b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + hex.EncodeToString(b[:]), nil
}

// --- key state cache -------------------------------------------------------

func unknownKey(name string) error {
	return usererr.New(usererr.NotFound, "unknown_key", "there is no key named %q; `interlock kms key list` shows the keys", clip(name))
}

// load returns the key's state, from the cache when it is fresh.
func (s *Service) load(ctx context.Context, name string) (*keyState, error) {
	s.mu.Lock()
	ks := s.keys[name]
	s.mu.Unlock()
	if ks != nil && s.now().Sub(ks.loadedAt) < s.cfg.CacheTTL && !s.now().Before(ks.loadedAt) {
		return ks, nil
	}
	return s.reload(ctx, name)
}

func (s *Service) reload(ctx context.Context, name string) (*keyState, error) {
	rec, err := s.store.GetKMSKey(ctx, name)
	if errors.Is(err, ErrNoRecord) {
		return nil, unknownKey(name)
	}
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", name, err)
	}
	vers, err := s.store.ListKMSKeyVersions(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load versions of key %s: %w", name, err)
	}
	ks := &keyState{rec: rec, versions: map[int]*versionState{}, loadedAt: s.now()}
	for _, v := range vers {
		vs := &versionState{rec: v, count: v.Encryptions}
		if v.DestroyedAt.IsZero() {
			kek, err := s.kek.Open(v.Wrapped, kekAAD(name, v.Version))
			if err != nil {
				return nil, fmt.Errorf("unwrap key %s version %d: %w", name, v.Version, err)
			}
			vs.aead, err = newAEAD(kek)
			clear(kek)
			if err != nil {
				return nil, err
			}
		}
		vs.rec.Wrapped = nil
		ks.versions[v.Version] = vs
	}
	if ks.versions[rec.CurrentVersion] == nil {
		return nil, fmt.Errorf("key %s: current version %d is missing", name, rec.CurrentVersion)
	}
	s.mu.Lock()
	if old := s.keys[name]; old != nil {
		// Keep counts this process reserved that the store may not show yet.
		for v, ov := range old.versions {
			if nv := ks.versions[v]; nv != nil && ov.count > nv.count {
				nv.count = ov.count
			}
		}
	}
	s.keys[name] = ks
	s.mu.Unlock()
	return ks, nil
}

func (s *Service) forget(name string) {
	s.mu.Lock()
	delete(s.keys, name)
	s.mu.Unlock()
}

func kekAAD(name string, version int) []byte {
	return []byte("kek:" + name + ":" + strconv.Itoa(version))
}

// reserve picks the version to encrypt with and counts one encryption on
// it, rotating first when the version reached its encryption limit or its
// rotation period.
func (s *Service) reserve(ctx context.Context, name string) (cipher.AEAD, int, error) {
	return s.reserveN(ctx, name, 1)
}

// reserveN is reserve for n encryptions at once, all with one version: a
// version that cannot take all n is rotated first.
func (s *Service) reserveN(ctx context.Context, name string, n int64) (cipher.AEAD, int, error) {
	for attempt := 0; attempt < 4; attempt++ {
		ks, err := s.load(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		s.mu.Lock()
		if ks.rec.Disabled {
			s.mu.Unlock()
			return nil, 0, keyDisabled(name)
		}
		if n > ks.rec.MaxEncryptions {
			limit := ks.rec.MaxEncryptions
			s.mu.Unlock()
			return nil, 0, usererr.New(usererr.Invalid, "batch_over_key_limit",
				"the batch has %d items but key %q rotates every %d encryptions; send at most %d items at once", n, clip(name), limit, limit)
		}
		cv := ks.versions[ks.rec.CurrentVersion]
		reason := ""
		switch {
		case cv.count+n > ks.rec.MaxEncryptions:
			reason = "encryption_limit"
		case ks.rec.RotationPeriod > 0 && !s.now().Before(cv.rec.CreatedAt.Add(ks.rec.RotationPeriod)):
			reason = "schedule"
		}
		if reason == "" {
			cv.count += n
			aead, v := cv.aead, ks.rec.CurrentVersion
			s.mu.Unlock()
			return aead, v, nil
		}
		cur := ks.rec.CurrentVersion
		s.mu.Unlock()
		if _, err := s.rotate(ctx, Caller{Kind: "system"}, name, cur, reason); err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("key %s: could not settle on a version to encrypt with", name)
}

func keyDisabled(name string) error {
	return usererr.New(usererr.Conflict, "key_disabled", "key %q is disabled, so it neither encrypts nor decrypts until it is enabled again", clip(name))
}

// decryptable returns the AEAD of a version after checking that the key and
// version may decrypt.
func (s *Service) decryptable(ctx context.Context, name string, version int) (cipher.AEAD, error) {
	ks, err := s.load(ctx, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks.rec.Disabled {
		return nil, keyDisabled(name)
	}
	vs := ks.versions[version]
	if vs == nil {
		return nil, usererr.New(usererr.NotFound, "unknown_key_version", "key %q has no version %d (its newest is %d)", name, version, ks.rec.CurrentVersion)
	}
	if !vs.rec.DestroyedAt.IsZero() {
		return nil, usererr.New(usererr.Conflict, "key_version_destroyed",
			"version %d of key %q was destroyed on %s; data encrypted under it cannot be recovered", version, name, vs.rec.DestroyedAt.UTC().Format(time.RFC3339))
	}
	if version < ks.rec.MinDecryptionVersion {
		return nil, usererr.New(usererr.Forbidden, "version_below_minimum",
			"version %d of key %q is below the key's minimum decryption version %d; rewrapping had to happen before the minimum was raised", version, name, ks.rec.MinDecryptionVersion)
	}
	return vs.aead, nil
}
