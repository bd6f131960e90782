package cli

import (
	"context"
	"strings"

	"github.com/interlock-dev/interlock/internal/api/wire"
)

// Names for people. The API and the log name people by ID (an ID never
// changes and is not personal data in the log's public part); people read
// names. These helpers resolve IDs to user names at display time, from
// GET /v1/users, best effort: without the right to list users, or for a
// person who no longer exists, the ID alone is shown.

// nameDoer is the one call personNames makes; *apiclient.Client implements it.
type nameDoer interface {
	Do(ctx context.Context, method, path string, in, out any) error
}

// personNames maps person IDs to user names; empty when users cannot be listed.
func personNames(ctx context.Context, c nameDoer) map[string]string {
	var out wire.UserList
	if err := c.Do(ctx, "GET", "/v1/users", nil, &out); err != nil {
		return map[string]string{}
	}
	names := make(map[string]string, len(out.Users))
	for _, u := range out.Users {
		names[u.ID] = u.Username
	}
	return names
}

// personLabel shows a person ID or a "person:<id>" actor with the user
// name beside it: "person:p_abc (approver1)". Anything else is returned as
// it is.
func personLabel(names map[string]string, id string) string {
	bare := strings.TrimPrefix(id, "person:")
	if n := names[bare]; n != "" {
		return id + " (" + n + ")"
	}
	return id
}

// personLabels replaces every "person:<id>" in s by its label.
func personLabels(names map[string]string, s string) string {
	if !strings.Contains(s, "person:") {
		return s
	}
	fields := strings.Fields(s)
	for i, f := range fields {
		if strings.HasPrefix(f, "person:") {
			fields[i] = personLabel(names, f)
		}
	}
	return strings.Join(fields, " ")
}
