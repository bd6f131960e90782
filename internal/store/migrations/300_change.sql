-- Change requests (internal/change): a change to the gate's own
-- configuration that waits for another person's approval. content and base
-- are the exact new content and what it replaces; hash binds them (the
-- server recomputes it before applying, so an edited row cannot be
-- approved). Times are unix nanoseconds, 0 for "not yet".
CREATE TABLE change_requests (
	id TEXT PRIMARY KEY,
	kind TEXT NOT NULL,
	target TEXT NOT NULL,
	content TEXT NOT NULL,
	base TEXT NOT NULL,
	hash TEXT NOT NULL,
	summary TEXT NOT NULL,
	requester_id TEXT NOT NULL,
	requester_name TEXT NOT NULL,
	state TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	decided_by TEXT NOT NULL DEFAULT '',
	decided_at BIGINT NOT NULL DEFAULT 0,
	detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX change_requests_state ON change_requests (state, created_at);
