package kms

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Dual control. Disabling a key, destroying a key version, lowering a
// key's minimum decryption version, and changing or deleting a critical
// secret do not happen when asked: they create a Request whose exact
// content (canonical JSON, never a secret) is hashed with SHA-256. A
// second person approves by that hash; the requester can never approve
// their own request (compared by person ID). Approval carries the change
// out in the same transaction, except destruction, which waits
// Config.DestroyDelay and can be cancelled until RunDue performs it.
//
// This is deliberately small and local to kms; operations have their own
// approval engine in internal/ops.

// Actions that need a second person. They match the Cedar action names.
const (
	ActionDisableKey    = "kms.key.disable"
	ActionDestroyKey    = "kms.key.destroy"
	ActionSetMinVersion = "kms.key.set_min_version"
	ActionSecretPut     = "secret.put"
	ActionSecretDelete  = "secret.delete"
)

// Request states.
const (
	StatePending   = "pending"   // waiting for a second person
	StateScheduled = "scheduled" // approved, waiting for its delay
	StateDone      = "done"
	StateCancelled = "cancelled"
	StateExpired   = "expired"
)

// Request is a dual-control request as callers see it.
type Request struct {
	ID      string
	Action  string
	Subject string
	// Content is exactly the bytes Hash covers: what will happen.
	Content      json.RawMessage
	Hash         string
	RequestedBy  string // person ID
	RequestedAt  time.Time
	ExpiresAt    time.Time
	State        string
	ApprovedBy   string
	ApprovedAt   time.Time
	ExecuteAfter time.Time
	FinishedAt   time.Time
	Note         string
}

// requestContent is what a request says will happen. Its JSON is hashed.
type requestContent struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"`
	Subject     string    `json:"subject"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Key         string    `json:"key,omitempty"`
	Version     int       `json:"version,omitempty"`
	// Set minimum decryption version: from → to.
	FromMinVersion int `json:"from_min_version,omitempty"`
	ToMinVersion   int `json:"to_min_version,omitempty"`
	// Secrets: the version the change was asked against (drift check),
	// the critical flag afterwards, and the SHA-256 of the new ciphertext.
	Path             string `json:"path,omitempty"`
	BaseVersion      int    `json:"base_version"`
	Critical         bool   `json:"critical,omitempty"`
	CiphertextSHA256 string `json:"ciphertext_sha256,omitempty"`
}

func requestView(r RequestRecord) Request {
	return Request{ID: r.ID, Action: r.Action, Subject: r.Subject, Content: json.RawMessage(r.Content), Hash: r.Hash,
		RequestedBy: r.RequestedBy, RequestedAt: r.RequestedAt, ExpiresAt: r.ExpiresAt, State: r.State, ApprovedBy: r.ApprovedBy,
		ApprovedAt: r.ApprovedAt, ExecuteAfter: r.ExecuteAfter, FinishedAt: r.FinishedAt, Note: r.Note}
}

func requirePerson(c Caller, what string) error {
	if c.Kind != "person" || c.ID == "" {
		return usererr.New(usererr.Forbidden, "person_required", "only a person can %s; agents and services cannot", what)
	}
	return nil
}

// newRequest records a request inside tx.
func (s *Service) newRequest(ctx context.Context, tx Tx, c Caller, rc requestContent, payload []byte) (Request, error) {
	id, err := s.newID("kreq_")
	if err != nil {
		return Request{}, err
	}
	now := s.now().UTC()
	rc.ID, rc.RequestedBy, rc.RequestedAt, rc.ExpiresAt = id, c.ID, now, now.Add(s.cfg.RequestTTL)
	content, err := json.Marshal(rc)
	if err != nil {
		return Request{}, err
	}
	sum := sha256.Sum256(content)
	r := RequestRecord{ID: id, Action: rc.Action, Subject: rc.Subject, Content: content, Payload: payload, Hash: hex.EncodeToString(sum[:]),
		RequestedBy: c.ID, RequestedAt: now, ExpiresAt: rc.ExpiresAt, State: StatePending}
	if err := tx.InsertKMSRequest(ctx, r); err != nil {
		return Request{}, fmt.Errorf("insert request: %w", err)
	}
	if err := audit.Append(ctx, tx, audit.Entry{Kind: "kms.request.created", Version: 1, Actor: c.Actor(), Subject: rc.Subject, Time: now,
		Data: map[string]any{"request": id, "action": rc.Action, "hash": r.Hash}}); err != nil {
		return Request{}, err
	}
	return requestView(r), nil
}

// DisableKey asks to disable key name. A second person must approve.
func (s *Service) DisableKey(ctx context.Context, c Caller, name string) (Request, error) {
	if err := requirePerson(c, "ask to disable a key"); err != nil {
		return Request{}, err
	}
	if err := checkKeyName(name); err != nil {
		return Request{}, err
	}
	var req Request
	err := s.store.InTx(ctx, func(tx Tx) error {
		k, err := getKey(ctx, tx, name)
		if err != nil {
			return err
		}
		if k.Disabled {
			return usererr.New(usererr.Conflict, "key_already_disabled", "key %q is already disabled", name)
		}
		req, err = s.newRequest(ctx, tx, c, requestContent{Action: ActionDisableKey, Subject: "key:" + name, Key: name}, nil)
		return err
	})
	return req, err
}

// DestroyKeyVersion asks to destroy one version of key name. After a
// second person's approval and Config.DestroyDelay, RunDue erases the
// version's key material: everything encrypted under it becomes
// permanently unreadable. The current version cannot be destroyed; rotate
// first.
func (s *Service) DestroyKeyVersion(ctx context.Context, c Caller, name string, version int) (Request, error) {
	if err := requirePerson(c, "ask to destroy a key version"); err != nil {
		return Request{}, err
	}
	if err := checkKeyName(name); err != nil {
		return Request{}, err
	}
	var req Request
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := checkDestroyable(ctx, tx, name, version); err != nil {
			return err
		}
		var err error
		req, err = s.newRequest(ctx, tx, c, requestContent{Action: ActionDestroyKey, Subject: "key:" + name, Key: name, Version: version}, nil)
		return err
	})
	return req, err
}

func checkDestroyable(ctx context.Context, tx Tx, name string, version int) error {
	k, err := getKey(ctx, tx, name)
	if err != nil {
		return err
	}
	if version == k.CurrentVersion {
		return usererr.New(usererr.Conflict, "destroy_current_version",
			"version %d is key %q's current version; rotate the key (and rewrap what you keep) before destroying it", version, name)
	}
	vers, err := tx.ListKMSKeyVersions(ctx, name)
	if err != nil {
		return err
	}
	for _, v := range vers {
		if v.Version == version {
			if !v.DestroyedAt.IsZero() {
				return usererr.New(usererr.Conflict, "already_destroyed", "version %d of key %q is already destroyed", version, name)
			}
			return nil
		}
	}
	return usererr.New(usererr.NotFound, "unknown_key_version", "key %q has no version %d", name, version)
}

// SetMinDecryptionVersion sets the oldest version of key name that may
// decrypt. Raising it takes effect at once (and returns a nil Request);
// lowering it re-opens old ciphertext, so it needs a second person.
func (s *Service) SetMinDecryptionVersion(ctx context.Context, c Caller, name string, version int) (*Request, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	var req *Request
	err := s.store.InTx(ctx, func(tx Tx) error {
		k, err := getKey(ctx, tx, name)
		if err != nil {
			return err
		}
		if version < 1 || version > k.CurrentVersion {
			return usererr.New(usererr.Invalid, "invalid_min_version", "the minimum decryption version of key %q must be between 1 and its current version %d", name, k.CurrentVersion)
		}
		switch {
		case version == k.MinDecryptionVersion:
			return nil
		case version > k.MinDecryptionVersion:
			from := k.MinDecryptionVersion
			k.MinDecryptionVersion = version
			if err := tx.UpdateKMSKey(ctx, k); err != nil {
				return err
			}
			return audit.Append(ctx, tx, audit.Entry{Kind: "kms.key.min_version_set", Version: 1, Actor: c.Actor(), Subject: "key:" + name, Time: s.now(),
				Data: map[string]any{"key": name, "from": from, "to": version}})
		}
		if err := requirePerson(c, "ask to lower a minimum decryption version"); err != nil {
			return err
		}
		r, err := s.newRequest(ctx, tx, c, requestContent{Action: ActionSetMinVersion, Subject: "key:" + name, Key: name,
			FromMinVersion: k.MinDecryptionVersion, ToMinVersion: version}, nil)
		req = &r
		return err
	})
	s.forget(name)
	return req, err
}

func getKey(ctx context.Context, tx Tx, name string) (KeyRecord, error) {
	k, err := tx.GetKMSKey(ctx, name)
	if errors.Is(err, ErrNoRecord) {
		return k, unknownKey(name)
	}
	if err != nil {
		return k, fmt.Errorf("read key %s: %w", name, err)
	}
	return k, nil
}

func unknownRequest(id string) error {
	return usererr.New(usererr.NotFound, "unknown_request", "there is no key or secret request %q", clip(id))
}

// GetRequest returns one request.
func (s *Service) GetRequest(ctx context.Context, id string) (Request, error) {
	r, err := s.store.GetKMSRequest(ctx, id)
	if errors.Is(err, ErrNoRecord) {
		return Request{}, unknownRequest(id)
	}
	if err != nil {
		return Request{}, err
	}
	return requestView(r), nil
}

// ListRequests lists requests in state (every state when empty), newest first.
func (s *Service) ListRequests(ctx context.Context, state string) ([]Request, error) {
	rs, err := s.store.ListKMSRequests(ctx, state)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(rs))
	for _, r := range rs {
		out = append(out, requestView(r))
	}
	return out, nil
}

// IndependenceChecker says whether approverID may approve a request that
// requesterID made at requestedAt: nil when independent, a usererr
// sentence otherwise (the requester invited the approver or granted their
// role, or the approver's account or role is younger than the request).
// *identity.Service implements it; internal/app wires it.
type IndependenceChecker interface {
	CheckIndependentApprover(ctx context.Context, requesterID, approverID string, requestedAt time.Time) error
}

// Approve approves request id as c, who must be a person other than the
// requester and independent of them (Config.Independence), naming the
// content hash they reviewed. The change is made in the same transaction,
// or scheduled when it must wait (destruction). A refused approver leaves
// the request pending and a kms.request.approval_refused entry behind.
func (s *Service) Approve(ctx context.Context, c Caller, id, hash string) (Request, error) {
	if err := requirePerson(c, "approve a key or secret request"); err != nil {
		return Request{}, err
	}
	var out RequestRecord
	var refused error
	err := s.store.InTx(ctx, func(tx Tx) error {
		refused = nil
		r, err := tx.GetKMSRequest(ctx, id)
		if errors.Is(err, ErrNoRecord) {
			return unknownRequest(id)
		}
		if err != nil {
			return err
		}
		now := s.now()
		switch {
		case r.State != StatePending:
			return usererr.New(usererr.Conflict, "request_not_pending", "request %s is %s, so it cannot be approved", id, r.State)
		case !now.Before(r.ExpiresAt):
			return usererr.New(usererr.Conflict, "request_expired", "request %s expired at %s; ask again", id, r.ExpiresAt.UTC().Format(time.RFC3339))
		case c.ID == r.RequestedBy:
			return usererr.New(usererr.Forbidden, "self_approval", "you asked for request %s, so you cannot approve it; a second person must", id)
		}
		if s.cfg.Independence != nil {
			if err := s.cfg.Independence.CheckIndependentApprover(ctx, r.RequestedBy, c.ID, r.RequestedAt); err != nil {
				ue, ok := usererr.As(err)
				if !ok {
					return fmt.Errorf("check approver independence: %w", err)
				}
				refused = usererr.New(usererr.Forbidden, ue.Code, "%s Request %s stays pending.", ue.Msg, id)
				return audit.Append(ctx, tx, audit.Entry{Kind: "kms.request.approval_refused", Version: 1, Actor: c.Actor(), Subject: r.Subject, Time: now,
					Data:     map[string]any{"request": id, "action": r.Action, "code": ue.Code, "requested_by": "person:" + r.RequestedBy},
					Personal: map[string]string{"why": ue.Msg}})
			}
		}
		sum := sha256.Sum256(r.Content)
		if hex.EncodeToString(sum[:]) != r.Hash {
			return fmt.Errorf("request %s: stored content does not match its hash", id)
		}
		if subtle.ConstantTimeCompare([]byte(hash), []byte(r.Hash)) != 1 {
			return usererr.New(usererr.Conflict, "hash_mismatch",
				"the approval names hash %q, but request %s hashes to %s; review the request again and approve what it says", clip(hash), id, r.Hash)
		}
		r.ApprovedBy, r.ApprovedAt = c.ID, now
		if err := audit.Append(ctx, tx, audit.Entry{Kind: "kms.request.approved", Version: 1, Actor: c.Actor(), Subject: r.Subject, Time: now,
			Data: map[string]any{"request": id, "action": r.Action, "hash": r.Hash, "requested_by": "person:" + r.RequestedBy}}); err != nil {
			return err
		}
		if r.Action == ActionDestroyKey && s.cfg.DestroyDelay > 0 {
			r.State, r.ExecuteAfter = StateScheduled, now.Add(s.cfg.DestroyDelay)
		} else {
			if err := s.apply(ctx, tx, r); err != nil {
				return err
			}
			r.State, r.FinishedAt = StateDone, now
		}
		out = r
		return tx.UpdateKMSRequest(ctx, r)
	})
	if err != nil {
		return Request{}, err
	}
	if refused != nil {
		return Request{}, refused
	}
	s.afterApply(ctx, out)
	return requestView(out), nil
}

func (s *Service) afterApply(ctx context.Context, r RequestRecord) {
	var rc requestContent
	if json.Unmarshal(r.Content, &rc) == nil && rc.Key != "" {
		s.forget(rc.Key)
	}
	if r.Action == ActionDestroyKey && r.State == StateDone {
		// Push the overwritten key out of the SQLite WAL into the main file.
		if cp, ok := s.store.(interface{ CheckpointKMS(context.Context) error }); ok {
			if err := cp.CheckpointKMS(ctx); err != nil {
				s.log.WarnContext(ctx, "checkpoint after key destruction failed", "err", err)
			}
		}
	}
}

// apply carries out an approved request inside tx, after checking that
// what it was asked against still holds.
func (s *Service) apply(ctx context.Context, tx Tx, r RequestRecord) error {
	var rc requestContent
	if err := json.Unmarshal(r.Content, &rc); err != nil {
		return fmt.Errorf("request %s: decode content: %w", r.ID, err)
	}
	drift := func(what string) error {
		return usererr.New(usererr.Conflict, "request_drifted", "request %s no longer applies: %s; cancel it and ask again", r.ID, what)
	}
	now := s.now()
	data := map[string]any{"request": r.ID, "requested_by": "person:" + r.RequestedBy, "approved_by": "person:" + r.ApprovedBy}
	entry := audit.Entry{Version: 1, Actor: "person:" + r.ApprovedBy, Subject: r.Subject, Time: now, Data: data}
	switch r.Action {
	case ActionDisableKey:
		k, err := getKey(ctx, tx, rc.Key)
		if err != nil {
			return err
		}
		k.Disabled = true
		if err := tx.UpdateKMSKey(ctx, k); err != nil {
			return err
		}
		entry.Kind, data["key"] = "kms.key.disabled", rc.Key
	case ActionDestroyKey:
		if err := checkDestroyable(ctx, tx, rc.Key, rc.Version); err != nil {
			return drift(err.Error())
		}
		if err := tx.DestroyKMSKeyVersion(ctx, rc.Key, rc.Version, now); err != nil {
			return err
		}
		entry.Kind, data["key"], data["version"] = "kms.key.version_destroyed", rc.Key, rc.Version
		if r.State == StateScheduled {
			entry.Actor = "system"
		}
	case ActionSetMinVersion:
		k, err := getKey(ctx, tx, rc.Key)
		if err != nil {
			return err
		}
		if k.MinDecryptionVersion != rc.FromMinVersion {
			return drift(fmt.Sprintf("the minimum decryption version is now %d, not %d", k.MinDecryptionVersion, rc.FromMinVersion))
		}
		k.MinDecryptionVersion = rc.ToMinVersion
		if err := tx.UpdateKMSKey(ctx, k); err != nil {
			return err
		}
		entry.Kind, data["key"], data["from"], data["to"] = "kms.key.min_version_set", rc.Key, rc.FromMinVersion, rc.ToMinVersion
	case ActionSecretPut, ActionSecretDelete:
		return s.applySecret(ctx, tx, r, rc, entry, drift)
	default:
		return fmt.Errorf("request %s: unknown action %q", r.ID, r.Action)
	}
	return audit.Append(ctx, tx, entry)
}

// Cancel withdraws a pending or scheduled request.
func (s *Service) Cancel(ctx context.Context, c Caller, id string) (Request, error) {
	if err := requirePerson(c, "cancel a key or secret request"); err != nil {
		return Request{}, err
	}
	var out RequestRecord
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.GetKMSRequest(ctx, id)
		if errors.Is(err, ErrNoRecord) {
			return unknownRequest(id)
		}
		if err != nil {
			return err
		}
		if r.State != StatePending && r.State != StateScheduled {
			return usererr.New(usererr.Conflict, "request_not_open", "request %s is %s; only pending or scheduled requests can be cancelled", id, r.State)
		}
		now := s.now()
		r.State, r.FinishedAt, r.Note = StateCancelled, now, "cancelled by person:"+c.ID
		if err := tx.UpdateKMSRequest(ctx, r); err != nil {
			return err
		}
		out = r
		return audit.Append(ctx, tx, audit.Entry{Kind: "kms.request.cancelled", Version: 1, Actor: c.Actor(), Subject: r.Subject, Time: now,
			Data: map[string]any{"request": id, "action": r.Action}})
	})
	return requestView(out), err
}

// RunDue performs the periodic work: destructions whose waiting period
// has passed, expiry of unapproved requests, and scheduled rotation of
// keys that were not used (used keys rotate on their next encryption).
// internal/app calls it every minute or so. It returns how many changes
// it made.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	n := 0
	now := s.now()
	scheduled, err := s.store.ListKMSRequests(ctx, StateScheduled)
	if err != nil {
		return n, err
	}
	var errs []error
	for _, r := range scheduled {
		if now.Before(r.ExecuteAfter) {
			continue
		}
		var done RequestRecord
		err := s.store.InTx(ctx, func(tx Tx) error {
			cur, err := tx.GetKMSRequest(ctx, r.ID)
			if err != nil || cur.State != StateScheduled {
				return err
			}
			if err := s.apply(ctx, tx, cur); err != nil {
				cur.State, cur.FinishedAt, cur.Note = "failed", now, err.Error()
				if err := tx.UpdateKMSRequest(ctx, cur); err != nil {
					return err
				}
				return audit.Append(ctx, tx, audit.Entry{Kind: "kms.request.failed", Version: 1, Actor: "system", Subject: cur.Subject, Time: now,
					Data: map[string]any{"request": cur.ID, "action": cur.Action}})
			}
			cur.State, cur.FinishedAt = StateDone, now
			done = cur
			return tx.UpdateKMSRequest(ctx, cur)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("run request %s: %w", r.ID, err))
			continue
		}
		if done.ID != "" {
			n++
			s.afterApply(ctx, done)
		}
	}
	pending, err := s.store.ListKMSRequests(ctx, StatePending)
	if err != nil {
		return n, err
	}
	for _, r := range pending {
		if now.Before(r.ExpiresAt) {
			continue
		}
		err := s.store.InTx(ctx, func(tx Tx) error {
			cur, err := tx.GetKMSRequest(ctx, r.ID)
			if err != nil || cur.State != StatePending {
				return err
			}
			cur.State, cur.FinishedAt = StateExpired, now
			if err := tx.UpdateKMSRequest(ctx, cur); err != nil {
				return err
			}
			return audit.Append(ctx, tx, audit.Entry{Kind: "kms.request.expired", Version: 1, Actor: "system", Subject: cur.Subject, Time: now,
				Data: map[string]any{"request": cur.ID, "action": cur.Action}})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("expire request %s: %w", r.ID, err))
			continue
		}
		n++
	}
	keys, err := s.store.ListKMSKeys(ctx)
	if err != nil {
		return n, err
	}
	for _, k := range keys {
		if k.Disabled || k.RotationPeriod <= 0 {
			continue
		}
		vers, err := s.store.ListKMSKeyVersions(ctx, k.Name)
		if err != nil {
			return n, err
		}
		for _, v := range vers {
			if v.Version == k.CurrentVersion && !now.Before(v.CreatedAt.Add(k.RotationPeriod)) {
				if _, err := s.rotate(ctx, Caller{Kind: "system"}, k.Name, k.CurrentVersion, "schedule"); err != nil {
					errs = append(errs, err)
				} else {
					n++
				}
			}
		}
	}
	return n, errors.Join(errs...)
}
