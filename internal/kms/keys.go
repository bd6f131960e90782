package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// KeyOptions are the settings of a new key. Zero values take the
// service's defaults.
type KeyOptions struct {
	// RotationPeriod: 0 means the service default, negative means never on
	// schedule (the encryption limit still applies).
	RotationPeriod time.Duration
	// MaxEncryptions per version: 0 means the service default; at most
	// HardMaxEncryptions.
	MaxEncryptions int64
}

// KeyInfo describes a named key. It holds no key material.
type KeyInfo struct {
	Name                 string
	CreatedAt            time.Time
	CreatedBy            string
	CurrentVersion       int
	MinDecryptionVersion int
	Disabled             bool
	RotationPeriod       time.Duration
	MaxEncryptions       int64
	// NextRotationAt is when the current version rotates on schedule
	// (zero when the key has no schedule).
	NextRotationAt time.Time
	Versions       []VersionInfo
}

// VersionInfo describes one version of a key.
type VersionInfo struct {
	Version     int
	CreatedAt   time.Time
	Encryptions int64
	Decryptions int64
	Destroyed   bool
	DestroyedAt time.Time
}

// CreateKey creates key name with version 1.
func (s *Service) CreateKey(ctx context.Context, c Caller, name string, opt KeyOptions) (KeyInfo, error) {
	if err := c.check(); err != nil {
		return KeyInfo{}, err
	}
	if err := checkKeyName(name); err != nil {
		return KeyInfo{}, err
	}
	if opt.MaxEncryptions < 0 || opt.MaxEncryptions > HardMaxEncryptions {
		return KeyInfo{}, usererr.New(usererr.Invalid, "invalid_max_encryptions",
			"the encryption limit must be between 1 and %d (AES-GCM with random nonces must stay well below 2^32 messages per key)", int64(HardMaxEncryptions))
	}
	if opt.MaxEncryptions == 0 {
		opt.MaxEncryptions = s.cfg.MaxEncryptions
	}
	switch {
	case opt.RotationPeriod == 0:
		opt.RotationPeriod = s.cfg.RotationPeriod
	case opt.RotationPeriod > 0 && opt.RotationPeriod < time.Hour:
		return KeyInfo{}, usererr.New(usererr.Invalid, "invalid_rotation_period", "the rotation period must be at least one hour")
	}
	if opt.RotationPeriod < 0 {
		opt.RotationPeriod = 0
	}
	now := s.now()
	rec := KeyRecord{Name: name, CreatedAt: now, CreatedBy: c.Actor(), CurrentVersion: 1, MinDecryptionVersion: 1,
		RotationPeriod: opt.RotationPeriod, MaxEncryptions: opt.MaxEncryptions}
	ver, err := s.newVersion(name, 1, now)
	if err != nil {
		return KeyInfo{}, err
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.InsertKMSKey(ctx, rec); err != nil {
			if errors.Is(err, ErrDuplicate) {
				return usererr.New(usererr.Conflict, "key_exists", "a key named %q already exists; rotate it instead", name)
			}
			return fmt.Errorf("insert key %s: %w", name, err)
		}
		if err := tx.InsertKMSKeyVersion(ctx, ver); err != nil {
			return fmt.Errorf("insert key %s version 1: %w", name, err)
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "kms.key.created", Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: now,
			Data: map[string]any{"key": name, "version": 1, "rotation_period_s": int64(opt.RotationPeriod / time.Second), "max_encryptions": opt.MaxEncryptions}})
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return s.GetKey(ctx, name)
}

// newVersion draws a key-encryption key and seals it under the root key.
func (s *Service) newVersion(name string, version int, now time.Time) (VersionRecord, error) {
	var kek [32]byte
	if _, err := rand.Read(kek[:]); err != nil {
		return VersionRecord{}, fmt.Errorf("generate key-encryption key: %w", err)
	}
	defer clear(kek[:])
	wrapped, err := s.kek.Seal(kek[:], kekAAD(name, version))
	if err != nil {
		return VersionRecord{}, err
	}
	return VersionRecord{KeyName: name, Version: version, Wrapped: wrapped, CreatedAt: now}, nil
}

// RotateKey adds a new version to key name and makes it current. Older
// versions keep decrypting (down to the minimum decryption version).
func (s *Service) RotateKey(ctx context.Context, c Caller, name string) (KeyInfo, error) {
	if err := c.check(); err != nil {
		return KeyInfo{}, err
	}
	if err := checkKeyName(name); err != nil {
		return KeyInfo{}, err
	}
	if _, err := s.rotate(ctx, c, name, 0, "manual"); err != nil {
		return KeyInfo{}, err
	}
	return s.GetKey(ctx, name)
}

// rotate makes a new current version. If from is not 0, it rotates only
// when from is still current (so that racing automatic rotations, here or
// on another server, make one version, not several).
func (s *Service) rotate(ctx context.Context, c Caller, name string, from int, reason string) (int, error) {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	var newV int
	err := s.store.InTx(ctx, func(tx Tx) error {
		k, err := tx.GetKMSKey(ctx, name)
		if errors.Is(err, ErrNoRecord) {
			return unknownKey(name)
		}
		if err != nil {
			return fmt.Errorf("read key %s: %w", name, err)
		}
		if from != 0 && k.CurrentVersion != from {
			newV = k.CurrentVersion
			return nil
		}
		if k.Disabled {
			return keyDisabled(name)
		}
		now := s.now()
		newV = k.CurrentVersion + 1
		ver, err := s.newVersion(name, newV, now)
		if err != nil {
			return err
		}
		if err := tx.InsertKMSKeyVersion(ctx, ver); err != nil {
			if errors.Is(err, ErrDuplicate) {
				// Another server rotated at the same moment.
				return usererr.Wrap(err, usererr.Conflict, "key_changed", "key %q was rotated by someone else at the same moment; look at it again", name)
			}
			return fmt.Errorf("insert key %s version %d: %w", name, newV, err)
		}
		k.CurrentVersion = newV
		if err := tx.UpdateKMSKey(ctx, k); err != nil {
			return fmt.Errorf("update key %s: %w", name, err)
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "kms.key.rotated", Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: now,
			Data: map[string]any{"key": name, "from_version": newV - 1, "version": newV, "reason": reason}})
	})
	s.forget(name)
	if ue, ok := usererr.As(err); ok && ue.Code == "key_changed" && from != 0 {
		return 0, nil // an automatic rotation raced another: the key has a new version either way
	}
	if err != nil {
		return 0, err
	}
	if reason != "manual" {
		s.log.InfoContext(ctx, "key rotated automatically", "key", name, "version", newV, "reason", reason)
	}
	return newV, nil
}

// GetKey describes key name.
func (s *Service) GetKey(ctx context.Context, name string) (KeyInfo, error) {
	if err := checkKeyName(name); err != nil {
		return KeyInfo{}, err
	}
	k, err := s.store.GetKMSKey(ctx, name)
	if errors.Is(err, ErrNoRecord) {
		return KeyInfo{}, unknownKey(name)
	}
	if err != nil {
		return KeyInfo{}, fmt.Errorf("read key %s: %w", name, err)
	}
	vers, err := s.store.ListKMSKeyVersions(ctx, name)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("read versions of key %s: %w", name, err)
	}
	return keyInfo(k, vers), nil
}

// ListKeys describes every key, by name.
func (s *Service) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	keys, err := s.store.ListKMSKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		vers, err := s.store.ListKMSKeyVersions(ctx, k.Name)
		if err != nil {
			return nil, fmt.Errorf("read versions of key %s: %w", k.Name, err)
		}
		out = append(out, keyInfo(k, vers))
	}
	return out, nil
}

func keyInfo(k KeyRecord, vers []VersionRecord) KeyInfo {
	ki := KeyInfo{Name: k.Name, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, CurrentVersion: k.CurrentVersion,
		MinDecryptionVersion: k.MinDecryptionVersion, Disabled: k.Disabled, RotationPeriod: k.RotationPeriod, MaxEncryptions: k.MaxEncryptions}
	for _, v := range vers {
		ki.Versions = append(ki.Versions, VersionInfo{Version: v.Version, CreatedAt: v.CreatedAt, Encryptions: v.Encryptions,
			Decryptions: v.Decryptions, Destroyed: !v.DestroyedAt.IsZero(), DestroyedAt: v.DestroyedAt})
		if v.Version == k.CurrentVersion && k.RotationPeriod > 0 {
			ki.NextRotationAt = v.CreatedAt.Add(k.RotationPeriod)
		}
	}
	return ki
}

// EnableKey re-enables a disabled key. Enabling restores service, so it
// needs no second person; disabling does (see DisableKey).
func (s *Service) EnableKey(ctx context.Context, c Caller, name string) (KeyInfo, error) {
	if err := c.check(); err != nil {
		return KeyInfo{}, err
	}
	if err := checkKeyName(name); err != nil {
		return KeyInfo{}, err
	}
	err := s.store.InTx(ctx, func(tx Tx) error {
		k, err := tx.GetKMSKey(ctx, name)
		if errors.Is(err, ErrNoRecord) {
			return unknownKey(name)
		}
		if err != nil {
			return err
		}
		if !k.Disabled {
			return nil
		}
		k.Disabled = false
		if err := tx.UpdateKMSKey(ctx, k); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "kms.key.enabled", Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: s.now(),
			Data: map[string]any{"key": name}})
	})
	s.forget(name)
	if err != nil {
		return KeyInfo{}, err
	}
	return s.GetKey(ctx, name)
}
