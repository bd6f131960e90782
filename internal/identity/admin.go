package identity

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// User is a person as lists show them: no credentials.
type User struct {
	ID        string
	Username  string
	Roles     []string
	Status    string
	CreatedAt time.Time
}

// ListUsers lists every person, invited and disabled ones too.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	ps, err := s.store.ListPersons(ctx)
	if err != nil {
		return nil, fmt.Errorf("list persons: %w", err)
	}
	out := make([]User, 0, len(ps))
	for _, p := range ps {
		out = append(out, User{ID: p.ID, Username: p.Username, Roles: p.Roles, Status: p.Status, CreatedAt: p.CreatedAt})
	}
	return out, nil
}

// DisableUser stops username from signing in and ends their sessions at
// once. Nobody can disable themselves (so the last admin cannot lock
// everyone out by accident). Disabling a disabled user changes nothing.
func (s *Service) DisableUser(ctx context.Context, by wire.Principal, username string) error {
	now := s.now()
	return s.store.InTx(ctx, func(tx Tx) error {
		p, err := tx.PersonByUsername(ctx, username)
		if s.store.IsNotFound(err) {
			return usererr.New(usererr.NotFound, "user_not_found", "There is no user %s.", username)
		} else if err != nil {
			return fmt.Errorf("load person: %w", err)
		}
		if p.ID == by.ID {
			return usererr.New(usererr.Forbidden, "cannot_disable_self", "You cannot disable your own account; ask another admin.")
		}
		if p.Status == StatusDisabled {
			return nil
		}
		if err := tx.SetPersonStatus(ctx, p.ID, StatusDisabled); err != nil {
			return fmt.Errorf("disable person: %w", err)
		}
		if err := tx.RevokePersonLoginSessions(ctx, p.ID, now); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.user_disabled", Actor: by.Actor(), Subject: personSubject(p.ID), Time: now,
			Data: map[string]any{"previous_status": p.Status}, Personal: map[string]string{"username": username}})
	})
}

// DeviceInfo is a device as lists show it.
type DeviceInfo struct {
	ID        string
	PersonID  string
	Username  string
	Name      string
	JKT       string
	CreatedAt time.Time
	LastUsed  time.Time
	RevokedAt time.Time
}

// ListDevices lists personID's devices, or everyone's when personID is "".
func (s *Service) ListDevices(ctx context.Context, personID string) ([]DeviceInfo, error) {
	ds, err := s.store.ListDevices(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	ps, err := s.store.ListPersons(ctx)
	if err != nil {
		return nil, fmt.Errorf("list persons: %w", err)
	}
	names := map[string]string{}
	for _, p := range ps {
		names[p.ID] = p.Username
	}
	out := make([]DeviceInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeviceInfo{ID: d.ID, PersonID: d.PersonID, Username: names[d.PersonID], Name: d.Name, JKT: d.JKT,
			CreatedAt: d.CreatedAt, LastUsed: d.LastUsed, RevokedAt: d.RevokedAt})
	}
	return out, nil
}

// RevokeDevice revokes a device and its sessions; its next request is
// refused. A person may revoke their own devices; an admin anyone's.
// Revoking a revoked device changes nothing.
func (s *Service) RevokeDevice(ctx context.Context, by wire.Principal, deviceID string) error {
	now := s.now()
	return s.store.InTx(ctx, func(tx Tx) error {
		d, err := tx.DeviceByID(ctx, deviceID)
		if s.store.IsNotFound(err) {
			return usererr.New(usererr.NotFound, "device_not_found", "There is no device %s; interlock device list shows them.", deviceID)
		} else if err != nil {
			return fmt.Errorf("load device: %w", err)
		}
		if d.PersonID != by.ID && !slices.Contains(by.Roles, RoleAdmin) {
			return usererr.New(usererr.Forbidden, "not_your_device", "Device %s belongs to someone else; only an admin may revoke it.", deviceID)
		}
		if !d.RevokedAt.IsZero() {
			return nil
		}
		if err := tx.RevokeDevice(ctx, d.ID, now); err != nil {
			return fmt.Errorf("revoke device: %w", err)
		}
		return appendAudit(ctx, tx, audit.Entry{Kind: "identity.device_revoked", Actor: by.Actor(), Subject: "device:" + d.ID, Time: now,
			Data: map[string]any{"person_id": d.PersonID, "jkt": d.JKT}, Personal: map[string]string{"device_name": d.Name}})
	})
}
