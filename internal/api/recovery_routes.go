package api

import (
	"net/http"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/policy"
)

// RecoveryRoutes serves account recovery and the person-management calls
// that can loosen (see internal/api/wire/recovery.go for the table):
// resetting credentials (always a change request), a person's own
// recovery with a recovery code, re-enrolment with a reset code, enabling
// a person and setting their roles. Recovery and re-enrolment are public:
// the password + recovery code, and the reset code, are their credentials.
func RecoveryRoutes(ids *identity.Service, changes *change.Service) []Route {
	h := recoveryHandlers{ids: ids, changes: changes}
	return []Route{
		{Pattern: "POST /v1/users/{name}/reset", Action: policy.ActionUserReset, Handle: h.reset},
		{Pattern: "POST /v1/users/{name}/enable", Action: policy.ActionUserEnable, Handle: h.enable},
		{Pattern: "POST /v1/users/{name}/roles", Action: policy.ActionUserSetRoles, Handle: h.setRoles},
		{Pattern: "POST /v1/recover", Public: true, Handle: h.recover},
		{Pattern: "POST /v1/resets/accept", Public: true, Handle: h.acceptReset},
	}
}

type recoveryHandlers struct {
	ids     *identity.Service
	changes *change.Service
}

func (h recoveryHandlers) outcome(c *Call, out change.Outcome, err error) error {
	if err != nil {
		return err
	}
	if out.Change != nil {
		return pending(c, out.Change)
	}
	return noContent(c)
}

func (h recoveryHandlers) reset(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	var in wire.UserResetRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	out, err := h.changes.ProposeReset(c.Context(), c.Principal, name, in.Reset)
	return h.outcome(c, out, err)
}

func (h recoveryHandlers) enable(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	out, err := h.changes.Enable(c.Context(), c.Principal, name)
	return h.outcome(c, out, err)
}

func (h recoveryHandlers) setRoles(c *Call) error {
	name, err := c.PathValue("name")
	if err != nil {
		return err
	}
	var in wire.SetRolesRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	out, err := h.changes.SetRoles(c.Context(), c.Principal, name, in.Roles)
	return h.outcome(c, out, err)
}

func (h recoveryHandlers) recover(c *Call) error {
	var in wire.RecoverRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	enr, err := h.ids.Recover(c.Context(), identity.RecoverRequest{Username: in.Username, Password: in.Password, RecoveryCode: in.RecoveryCode, SourceIP: c.SourceIP()})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, enrollmentWire(enr))
}

func (h recoveryHandlers) acceptReset(c *Call) error {
	var in wire.ResetAcceptRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	enr, err := h.ids.AcceptReset(c.Context(), in.Code, in.Password)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, enrollmentWire(enr))
}
