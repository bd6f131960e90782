-- Just-in-time elevation (internal/elevate). A person is eligible for
-- roles they do not hold standing; a grant holds one of them for a while.
-- Times are unix nanoseconds (0: not yet / never). approver_roles and
-- policy_ids are comma-separated; approvals is a JSON array.
CREATE TABLE elevation_eligibility (
	person_id TEXT NOT NULL REFERENCES persons (id),
	role TEXT NOT NULL,
	granted_by TEXT NOT NULL,
	granted_at BIGINT NOT NULL,
	PRIMARY KEY (person_id, role)
);
CREATE TABLE elevation_grants (
	id TEXT PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	role TEXT NOT NULL,
	reason TEXT NOT NULL,
	duration_s BIGINT NOT NULL,
	state TEXT NOT NULL,
	requested_at BIGINT NOT NULL,
	needed INTEGER NOT NULL,
	approver_roles TEXT NOT NULL,
	policy_ids TEXT NOT NULL,
	approvals TEXT NOT NULL,
	starts_at BIGINT NOT NULL DEFAULT 0,
	expires_at BIGINT NOT NULL DEFAULT 0,
	ended_at BIGINT NOT NULL DEFAULT 0,
	ended_by TEXT NOT NULL DEFAULT '',
	end_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX elevation_grants_person ON elevation_grants (person_id, state, expires_at);
