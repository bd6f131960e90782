package api

import (
	"net/http"

	"github.com/interlock-dev/interlock/internal/policy"
)

// AgentHub is the server side of agent connections; *agenthub.Hub
// implements it.
type AgentHub interface {
	EnrollHandler() http.Handler
	ConnectHandler() http.Handler
	HeartbeatHandler() http.Handler
	ResultsHandler() http.Handler
	RenewHandler() http.Handler
	HostIDFromRequest(r *http.Request) (string, bool)
}

// AgentRoutes mounts the agent protocol. Enrollment is public (the
// one-time join token in its body is the credential); everything else
// needs the agent's client certificate and a Cedar decision on the agent's
// own Host.
func AgentRoutes(hub AgentHub) []Route {
	serve := func(h http.Handler) func(*Call) error {
		return func(c *Call) error { h.ServeHTTP(c.W, c.R); return nil }
	}
	self := func(r *http.Request) Resource {
		id, _ := hub.HostIDFromRequest(r) // authentication already required it
		return Resource{Type: policy.ResourceHost, ID: id}
	}
	return []Route{
		{Pattern: "POST /v1/agent/enroll", Public: true, ChargeFailures: true, Handle: serve(hub.EnrollHandler())},
		{Pattern: "GET /v1/agent/connect", Agent: true, Action: policy.ActionAgentConnect, Stream: true, Resource: self, Handle: serve(hub.ConnectHandler())},
		{Pattern: "POST /v1/agent/heartbeat", Agent: true, Action: policy.ActionAgentReport, Resource: self, Handle: serve(hub.HeartbeatHandler())},
		{Pattern: "POST /v1/agent/results", Agent: true, Action: policy.ActionAgentReport, Resource: self, Handle: serve(hub.ResultsHandler())},
		{Pattern: "POST /v1/agent/renew", Agent: true, Action: policy.ActionAgentReport, Resource: self, Handle: serve(hub.RenewHandler())},
	}
}
