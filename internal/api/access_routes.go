package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/elevate"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/policy"
	"github.com/interlock-dev/interlock/internal/training"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Directory names people: identity.Service.
type Directory interface {
	ListUsers(ctx context.Context) ([]identity.User, error)
}

// AccessRoutes serves just-in-time elevation and training (see
// internal/api/wire/access.go for the table).
func AccessRoutes(el *elevate.Service, tr *training.Service, people Directory) []Route {
	h := accessHandlers{el: el, tr: tr, people: people}
	return []Route{
		{Pattern: "POST /v1/grants", Action: policy.ActionElevateRequest, Handle: h.request},
		{Pattern: "GET /v1/grants", Action: policy.ActionElevateList, Handle: h.list},
		{Pattern: "GET /v1/grants/{id}", Action: policy.ActionElevateList, Handle: h.get},
		{Pattern: "POST /v1/grants/{id}/approve", Action: policy.ActionElevateApprove, Handle: h.approve},
		{Pattern: "POST /v1/grants/{id}/deny", Action: policy.ActionElevateDeny, Handle: h.deny},
		// Giving up one's own grant never loosens anything, so the route is
		// open to whoever may list grants; revoking another person's grant
		// is a finer decision (elevate.revoke) in the handler.
		{Pattern: "POST /v1/grants/{id}/revoke", Action: policy.ActionElevateList, Handle: h.revoke},
		{Pattern: "PUT /v1/eligibility/{user}", Action: policy.ActionElevateEligibility, Handle: h.setEligibility},
		{Pattern: "POST /v1/training", Action: policy.ActionTrainingRecord, Handle: h.recordTraining},
		{Pattern: "POST /v1/training/import", Action: policy.ActionTrainingRecord, Handle: h.importTraining},
		{Pattern: "GET /v1/training", Action: policy.ActionTrainingList, Handle: h.listTraining},
	}
}

type accessHandlers struct {
	el     *elevate.Service
	tr     *training.Service
	people Directory
}

func (h accessHandlers) names(c *Call) (map[string]string, error) {
	us, err := h.people.ListUsers(c.Context())
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(us))
	for _, u := range us {
		m[u.ID] = u.Username
	}
	return m, nil
}

// WireGrant is g as the API shows it at now; names maps person ids to usernames.
func WireGrant(g elevate.Grant, names map[string]string, now time.Time) wire.Grant {
	out := wire.Grant{ID: g.ID, Person: names[g.PersonID], PersonID: g.PersonID, Role: g.Role, Reason: g.Reason,
		DurationS: int64(g.Duration / time.Second), State: g.StateAt(now), RequestedAt: g.RequestedAt, Needed: g.Needed,
		ApproverRoles: g.ApproverRoles, PolicyIDs: g.PolicyIDs, StartsAt: g.StartsAt, ExpiresAt: g.ExpiresAt,
		EndedAt: g.EndedAt, EndedBy: g.EndedBy, EndReason: g.EndReason}
	for _, a := range g.Approvals {
		out.Approvals = append(out.Approvals, wire.GrantApproval{Person: names[a.PersonID], At: a.At})
	}
	return out
}

func (h accessHandlers) grantJSON(c *Call, status int, g elevate.Grant) error {
	names, err := h.names(c)
	if err != nil {
		return err
	}
	return c.JSON(status, WireGrant(g, names, h.el.Now()))
}

func (h accessHandlers) request(c *Call) error {
	var in wire.GrantRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	// Checked in seconds, before the multiplication: a huge duration_s
	// would wrap around in nanoseconds to a short, valid-looking one.
	if in.DurationS < int64(elevate.MinDuration/time.Second) || in.DurationS > int64(elevate.MaxDuration/time.Second) {
		return usererr.New(usererr.Invalid, "invalid_duration", "A grant lasts from %s to %s; duration_s %d is outside that.", elevate.MinDuration, elevate.MaxDuration, in.DurationS)
	}
	g, err := h.el.Request(c.Context(), c.Principal, in.Role, time.Duration(in.DurationS)*time.Second, in.Reason)
	if err != nil {
		return err
	}
	return h.grantJSON(c, http.StatusCreated, g)
}

func (h accessHandlers) list(c *Call) error {
	gs, err := h.el.List(c.Context(), "")
	if err != nil {
		return err
	}
	es, err := h.el.Eligibility(c.Context(), "")
	if err != nil {
		return err
	}
	return h.listJSON(c, gs, es)
}

func (h accessHandlers) listJSON(c *Call, gs []elevate.Grant, es []elevate.Eligibility) error {
	names, err := h.names(c)
	if err != nil {
		return err
	}
	now := h.el.Now()
	out := wire.GrantList{Grants: []wire.Grant{}, Eligibility: []wire.Eligibility{}}
	for _, g := range gs {
		out.Grants = append(out.Grants, WireGrant(g, names, now))
	}
	for _, e := range es {
		out.Eligibility = append(out.Eligibility, wire.Eligibility{Person: names[e.PersonID], PersonID: e.PersonID, Role: e.Role,
			GrantedBy: e.GrantedBy, GrantedAt: e.GrantedAt})
	}
	return c.JSON(http.StatusOK, out)
}

func (h accessHandlers) get(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	g, err := h.el.Get(c.Context(), id)
	if err != nil {
		return err
	}
	return h.grantJSON(c, http.StatusOK, g)
}

func (h accessHandlers) approve(c *Call) error {
	id, err := c.PathValue("id")
	if err != nil {
		return err
	}
	g, err := h.el.Approve(c.Context(), c.Principal, id)
	if err != nil {
		return err
	}
	return h.grantJSON(c, http.StatusOK, g)
}

func (h accessHandlers) reason(c *Call) (string, string, error) {
	id, err := c.PathValue("id")
	if err != nil {
		return "", "", err
	}
	var in wire.ReasonRequest
	if c.R.ContentLength != 0 {
		if err := c.Decode(&in); err != nil {
			return "", "", err
		}
	}
	return id, in.Reason, nil
}

func (h accessHandlers) deny(c *Call) error {
	id, reason, err := h.reason(c)
	if err != nil {
		return err
	}
	g, err := h.el.Deny(c.Context(), c.Principal, id, reason)
	if err != nil {
		return err
	}
	return h.grantJSON(c, http.StatusOK, g)
}

func (h accessHandlers) revoke(c *Call) error {
	id, reason, err := h.reason(c)
	if err != nil {
		return err
	}
	g, err := h.el.Get(c.Context(), id)
	if err != nil {
		return err
	}
	if g.PersonID != c.Principal.ID {
		if err := c.Authorize(policy.ActionElevateRevoke, Resource{Type: policy.ResourceSystem, ID: "interlock"}, nil); err != nil {
			return err
		}
	}
	if g, err = h.el.Revoke(c.Context(), c.Principal, id, reason); err != nil {
		return err
	}
	return h.grantJSON(c, http.StatusOK, g)
}

func (h accessHandlers) setEligibility(c *Call) error {
	user, err := c.PathValue("user")
	if err != nil {
		return err
	}
	var in wire.EligibilityRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	if len(in.Roles) > len(identity.Roles) {
		return usererr.New(usererr.Invalid, "too_many_roles", "name at most %d roles", len(identity.Roles))
	}
	es, err := h.el.SetEligible(c.Context(), c.Principal, user, in.Roles)
	if err != nil {
		return err
	}
	return h.listJSON(c, nil, es)
}

func (h accessHandlers) recordTraining(c *Call) error {
	var in wire.TrainingRecordRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	comp := training.Completion{Username: in.Username, Course: in.Course}
	var err error
	if strings.TrimSpace(in.Completed) != "" {
		if comp.CompletedAt, err = training.ParseDate(in.Completed); err != nil {
			return usererr.New(usererr.Invalid, "invalid_date", "completed: %v", err)
		}
	}
	if strings.TrimSpace(in.Expires) != "" {
		if comp.ExpiresAt, err = training.ParseDate(in.Expires); err != nil {
			return usererr.New(usererr.Invalid, "invalid_date", "expires: %v", err)
		}
	}
	r, err := h.tr.RecordOne(c.Context(), c.Principal, comp)
	if err != nil {
		return err
	}
	return h.trainingJSON(c, []training.Record{r})
}

func (h accessHandlers) importTraining(c *Call) error {
	var in wire.TrainingImportRequest
	if err := c.Decode(&in); err != nil {
		return err
	}
	rs, err := h.tr.Import(c.Context(), c.Principal, strings.NewReader(in.CSV))
	if err != nil {
		return err
	}
	return h.trainingJSON(c, rs)
}

func (h accessHandlers) listTraining(c *Call) error {
	rs, err := h.tr.List(c.Context(), "")
	if err != nil {
		return err
	}
	return h.trainingJSON(c, rs)
}

func (h accessHandlers) trainingJSON(c *Call, rs []training.Record) error {
	names, err := h.names(c)
	if err != nil {
		return err
	}
	now := h.el.Now()
	out := wire.TrainingList{Records: []wire.TrainingRecord{}}
	for _, r := range rs {
		out.Records = append(out.Records, wire.TrainingRecord{Person: names[r.PersonID], PersonID: r.PersonID, Course: r.Course,
			CompletedAt: r.CompletedAt, ExpiresAt: r.ExpiresAt, Current: r.CurrentAt(now), RecordedBy: r.RecordedBy})
	}
	return c.JSON(http.StatusOK, out)
}
