package kms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Secrets are versioned values stored by path (e.g. "prod/db/password"),
// each version envelope-encrypted under a named key with the path and
// version as encryption context, so a stored value cannot be moved to
// another path or version. Reading a value requires a reason, which the
// audit entry keeps as personal data. Changing or deleting a secret marked
// critical needs a second person (see Approve).

var secretPathRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$`)

const (
	maxSecretPath = 256
	maxReason     = 500
)

func checkSecretPath(p string) error {
	if len(p) > maxSecretPath || !secretPathRE.MatchString(p) {
		return usererr.New(usererr.Invalid, "invalid_secret_path",
			"%q is not a valid secret path: use up to %d characters of segments like prod/db/password (letters, digits, '_', '.', '-'; no empty segments)", clip(p), maxSecretPath)
	}
	return nil
}

func unknownSecret(p string) error {
	return usererr.New(usererr.NotFound, "unknown_secret", "there is no secret at %q", clip(p))
}

// secretContext is the encryption context of a secret's stored value.
func secretContext(path string, version int) Context {
	return Context{"interlock.secret.path": path, "interlock.secret.version": strconv.Itoa(version)}
}

// SecretInfo describes a secret without its value.
type SecretInfo struct {
	Path           string
	Key            string
	Critical       bool
	CurrentVersion int
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Deleted        bool
}

func secretInfo(r SecretRecord) SecretInfo {
	return SecretInfo{Path: r.Path, Key: r.KeyName, Critical: r.Critical, CurrentVersion: r.CurrentVersion,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Deleted: !r.DeletedAt.IsZero()}
}

// PutOptions qualify a put. Zero values keep the secret's settings.
type PutOptions struct {
	// Key names the key for the new version; empty keeps the secret's key,
	// or Config.DefaultSecretKey for a new secret.
	Key string
	// Critical, when set, changes whether the secret is critical. Marking
	// a secret critical is immediate; clearing the mark is a change to a
	// critical secret and needs a second person.
	Critical *bool
}

// PutResult is the outcome of PutSecret: either the new version was
// stored (Pending is nil), or, for a critical secret, a request awaits a
// second person and nothing changed yet.
type PutResult struct {
	Secret  SecretInfo
	Pending *Request
}

// PutSecret stores value as the next version of the secret at path.
func (s *Service) PutSecret(ctx context.Context, c Caller, path string, value []byte, opt PutOptions) (PutResult, error) {
	if err := c.check(); err != nil {
		return PutResult{}, err
	}
	if err := checkSecretPath(path); err != nil {
		return PutResult{}, err
	}
	if len(value) == 0 {
		return PutResult{}, usererr.New(usererr.Invalid, "empty_secret", "the secret value is empty; to remove a secret, delete it")
	}
	if len(value) > MaxPlaintext {
		return PutResult{}, usererr.New(usererr.TooLarge, "secret_too_large", "the secret value is %d bytes; at most %d are accepted", len(value), MaxPlaintext)
	}
	if opt.Key != "" {
		if err := checkKeyName(opt.Key); err != nil {
			return PutResult{}, err
		}
	}
	for attempt := 0; ; attempt++ {
		res, err := s.putSecret(ctx, c, path, value, opt)
		if errors.Is(err, errStale) && attempt == 0 {
			continue
		}
		if err != nil {
			return PutResult{}, s.staleErr(err, opt.Key)
		}
		return res, nil
	}
}

func (s *Service) putSecret(ctx context.Context, c Caller, path string, value []byte, opt PutOptions) (PutResult, error) {
	old, err := s.store.GetKMSSecret(ctx, path)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNoRecord) {
		return PutResult{}, fmt.Errorf("read secret %s: %w", path, err)
	}
	live := exists && old.DeletedAt.IsZero()
	keyName := opt.Key
	if keyName == "" {
		keyName = old.KeyName
		if !live || keyName == "" {
			keyName = s.cfg.DefaultSecretKey
		}
	}
	critical := live && old.Critical
	if opt.Critical != nil {
		critical = *opt.Critical
	}
	dual := live && old.Critical
	if dual {
		if err := requirePerson(c, "ask to change a critical secret"); err != nil {
			return PutResult{}, err
		}
	}
	base := old.CurrentVersion
	version := base + 1
	kek, kv, err := s.reserve(ctx, keyName)
	if err != nil {
		var ue *usererr.Error
		if errors.As(err, &ue) && ue.Code == "unknown_key" {
			return PutResult{}, usererr.New(usererr.NotFound, "unknown_key",
				"there is no key named %q to encrypt the secret with; create it with `interlock kms key create %s` or name another with --key", keyName, keyName)
		}
		return PutResult{}, err
	}
	ct, err := seal(kek, keyName, kv, secretContext(path, version).canonical(), value)
	if err != nil {
		return PutResult{}, err
	}
	ctText := ct.String()
	now := s.now()
	var res PutResult
	err = s.store.InTx(ctx, func(tx Tx) error {
		cur, err := tx.GetKMSSecret(ctx, path)
		if err != nil && !errors.Is(err, ErrNoRecord) {
			return err
		}
		if cur.CurrentVersion != base || (err == nil) != exists {
			return usererr.New(usererr.Conflict, "secret_changed", "the secret at %q changed while it was being written; try again", path)
		}
		ok, err := tx.AddKMSKeyUsage(ctx, keyName, kv, 1, 0)
		if err != nil {
			return err
		}
		if !ok {
			return errStale
		}
		if dual {
			sum := sha256.Sum256([]byte(ctText))
			r, err := s.newRequest(ctx, tx, c, requestContent{Action: ActionSecretPut, Subject: "secret:" + path, Path: path, Key: keyName,
				BaseVersion: base, Version: version, Critical: critical, CiphertextSHA256: hex.EncodeToString(sum[:])}, []byte(ctText))
			if err != nil {
				return err
			}
			res = PutResult{Secret: secretInfo(cur), Pending: &r}
			return nil
		}
		rec := SecretRecord{Path: path, KeyName: keyName, Critical: critical, CurrentVersion: version, CreatedAt: now, UpdatedAt: now}
		if exists {
			rec.CreatedAt = cur.CreatedAt
		}
		if err := s.storeSecretVersion(ctx, tx, rec, ctText, c.Actor()); err != nil {
			if errors.Is(err, ErrDuplicate) {
				return usererr.Wrap(err, usererr.Conflict, "secret_changed", "the secret at %q changed while it was being written; try again", path)
			}
			return err
		}
		if err := audit.Append(ctx, tx, audit.Entry{Kind: "secret.put", Version: 1, Actor: c.Actor(), Subject: "secret:" + path, Time: now,
			Data: map[string]any{"path": path, "version": version, "key": keyName, "key_version": kv, "critical": critical}}); err != nil {
			return err
		}
		res = PutResult{Secret: secretInfo(rec)}
		return nil
	})
	return res, err
}

func (s *Service) storeSecretVersion(ctx context.Context, tx Tx, rec SecretRecord, ct, by string) error {
	if err := tx.PutKMSSecret(ctx, rec); err != nil {
		return fmt.Errorf("write secret %s: %w", rec.Path, err)
	}
	if err := tx.InsertKMSSecretVersion(ctx, SecretVersionRecord{Path: rec.Path, Version: rec.CurrentVersion, Ciphertext: ct,
		CreatedAt: rec.UpdatedAt, CreatedBy: by}); err != nil {
		return fmt.Errorf("insert secret %s version %d: %w", rec.Path, rec.CurrentVersion, err)
	}
	return nil
}

// applySecret carries out an approved put or delete of a critical secret.
func (s *Service) applySecret(ctx context.Context, tx Tx, r RequestRecord, rc requestContent, entry audit.Entry, drift func(string) error) error {
	cur, err := tx.GetKMSSecret(ctx, rc.Path)
	if err != nil && !errors.Is(err, ErrNoRecord) {
		return err
	}
	if cur.CurrentVersion != rc.BaseVersion || !cur.DeletedAt.IsZero() {
		return drift(fmt.Sprintf("the secret is at version %d now, not %d", cur.CurrentVersion, rc.BaseVersion))
	}
	now := s.now()
	data := entry.Data
	data["path"] = rc.Path
	switch r.Action {
	case ActionSecretPut:
		sum := sha256.Sum256(r.Payload)
		if hex.EncodeToString(sum[:]) != rc.CiphertextSHA256 {
			return fmt.Errorf("request %s: stored ciphertext does not match the approved hash", r.ID)
		}
		rec := SecretRecord{Path: rc.Path, KeyName: rc.Key, Critical: rc.Critical, CurrentVersion: rc.Version, CreatedAt: cur.CreatedAt, UpdatedAt: now}
		if err := s.storeSecretVersion(ctx, tx, rec, string(r.Payload), "person:"+r.RequestedBy); err != nil {
			return err
		}
		entry.Kind, data["version"], data["key"], data["critical"] = "secret.put", rc.Version, rc.Key, rc.Critical
	case ActionSecretDelete:
		if err := tx.DeleteKMSSecretVersions(ctx, rc.Path); err != nil {
			return err
		}
		cur.DeletedAt, cur.UpdatedAt = now, now
		if err := tx.PutKMSSecret(ctx, cur); err != nil {
			return err
		}
		entry.Kind, data["versions"] = "secret.deleted", cur.CurrentVersion
	}
	return audit.Append(ctx, tx, entry)
}

// SecretValue is one decrypted version of a secret.
type SecretValue struct {
	Path      string
	Version   int
	Value     Plaintext
	CreatedAt time.Time
}

// GetSecret decrypts version (0: the current one) of the secret at path.
// reason is required; it is audited as personal data.
func (s *Service) GetSecret(ctx context.Context, c Caller, path string, version int, reason string) (SecretValue, error) {
	if err := c.check(); err != nil {
		return SecretValue{}, err
	}
	if err := checkSecretPath(path); err != nil {
		return SecretValue{}, err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > maxReason || !utf8.ValidString(reason) {
		return SecretValue{}, usererr.New(usererr.Invalid, "reason_required",
			"reading a secret needs a reason of 1 to %d characters (e.g. --reason \"rotate db creds, INC-1234\"); it is recorded in the audit log", maxReason)
	}
	if version < 0 {
		return SecretValue{}, usererr.New(usererr.Invalid, "invalid_secret_version", "secret versions start at 1")
	}
	sec, err := s.store.GetKMSSecret(ctx, path)
	if errors.Is(err, ErrNoRecord) || (err == nil && !sec.DeletedAt.IsZero()) {
		return SecretValue{}, unknownSecret(path)
	}
	if err != nil {
		return SecretValue{}, err
	}
	if version == 0 {
		version = sec.CurrentVersion
	}
	sv, err := s.store.GetKMSSecretVersion(ctx, path, version)
	if errors.Is(err, ErrNoRecord) {
		return SecretValue{}, usererr.New(usererr.NotFound, "unknown_secret_version", "the secret at %q has no version %d (its newest is %d)", path, version, sec.CurrentVersion)
	}
	if err != nil {
		return SecretValue{}, err
	}
	ct, err := parseCiphertext(sv.Ciphertext)
	if err != nil {
		return SecretValue{}, fmt.Errorf("secret %s version %d: stored ciphertext: %w", path, version, err)
	}
	pt, err := s.decrypt(ctx, c, ct, secretContext(path, version), audit.Entry{Kind: "secret.read", Subject: "secret:" + path,
		Data: map[string]any{"path": path, "secret_version": version}, Personal: map[string]string{"reason": reason}})
	if err != nil {
		return SecretValue{}, err
	}
	return SecretValue{Path: path, Version: version, Value: Plaintext{b: pt}, CreatedAt: sv.CreatedAt}, nil
}

// ListSecrets lists live secrets whose path starts with prefix.
func (s *Service) ListSecrets(ctx context.Context, prefix string) ([]SecretInfo, error) {
	if len(prefix) > maxSecretPath {
		return nil, usererr.New(usererr.Invalid, "invalid_secret_path", "the path prefix is longer than %d characters", maxSecretPath)
	}
	rs, err := s.store.ListKMSSecrets(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]SecretInfo, 0, len(rs))
	for _, r := range rs {
		out = append(out, secretInfo(r))
	}
	return out, nil
}

// SecretVersionInfo describes one stored version.
type SecretVersionInfo struct {
	Version   int
	CreatedAt time.Time
	CreatedBy string
}

// SecretVersions lists the stored versions of the secret at path.
func (s *Service) SecretVersions(ctx context.Context, path string) (SecretInfo, []SecretVersionInfo, error) {
	if err := checkSecretPath(path); err != nil {
		return SecretInfo{}, nil, err
	}
	sec, err := s.store.GetKMSSecret(ctx, path)
	if errors.Is(err, ErrNoRecord) {
		return SecretInfo{}, nil, unknownSecret(path)
	}
	if err != nil {
		return SecretInfo{}, nil, err
	}
	vs, err := s.store.ListKMSSecretVersions(ctx, path)
	if err != nil {
		return SecretInfo{}, nil, err
	}
	out := make([]SecretVersionInfo, 0, len(vs))
	for _, v := range vs {
		out = append(out, SecretVersionInfo{Version: v.Version, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy})
	}
	return secretInfo(sec), out, nil
}

// DeleteSecret erases every stored version of the secret at path. For a
// critical secret it returns a pending request instead, and nothing
// changes until a second person approves.
func (s *Service) DeleteSecret(ctx context.Context, c Caller, path string) (*Request, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := checkSecretPath(path); err != nil {
		return nil, err
	}
	var req *Request
	err := s.store.InTx(ctx, func(tx Tx) error {
		cur, err := tx.GetKMSSecret(ctx, path)
		if errors.Is(err, ErrNoRecord) || (err == nil && !cur.DeletedAt.IsZero()) {
			return unknownSecret(path)
		}
		if err != nil {
			return err
		}
		if cur.Critical {
			if err := requirePerson(c, "ask to delete a critical secret"); err != nil {
				return err
			}
			r, err := s.newRequest(ctx, tx, c, requestContent{Action: ActionSecretDelete, Subject: "secret:" + path, Path: path, BaseVersion: cur.CurrentVersion}, nil)
			req = &r
			return err
		}
		now := s.now()
		if err := tx.DeleteKMSSecretVersions(ctx, path); err != nil {
			return err
		}
		cur.DeletedAt, cur.UpdatedAt = now, now
		if err := tx.PutKMSSecret(ctx, cur); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "secret.deleted", Version: 1, Actor: c.Actor(), Subject: "secret:" + path, Time: now,
			Data: map[string]any{"path": path, "versions": cur.CurrentVersion}})
	})
	return req, err
}
