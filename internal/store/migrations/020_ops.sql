-- Inventory, runbooks and operations (internal/ops). Lists and maps are
-- JSON text; booleans are INTEGER 0/1; times are unix nanoseconds (0: none).

-- One-time join tokens: only the SHA-256 of the token is kept.
CREATE TABLE ops_join_tokens (
	id TEXT PRIMARY KEY,
	hash {{BLOB}} NOT NULL UNIQUE,
	services TEXT NOT NULL,
	labels TEXT NOT NULL,
	created_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL,
	host_id TEXT NOT NULL
);

CREATE TABLE ops_hosts (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	services TEXT NOT NULL,
	labels TEXT NOT NULL,
	in_service INTEGER NOT NULL,
	healthy INTEGER NOT NULL,
	last_seen BIGINT NOT NULL,
	enrolled_at BIGINT NOT NULL
);

-- Thresholds in the text form ops.ParseThreshold reads ("50%", "3", "").
CREATE TABLE ops_services (
	name TEXT PRIMARY KEY,
	min_healthy TEXT NOT NULL,
	max_per_operation TEXT NOT NULL,
	freezes TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- Every applied version of every runbook, as the YAML that was applied.
CREATE TABLE ops_runbooks (
	name TEXT NOT NULL,
	version INTEGER NOT NULL,
	source {{BLOB}} NOT NULL,
	applied_by TEXT NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (name, version)
);

CREATE TABLE ops_operations (
	id TEXT PRIMARY KEY,
	runbook TEXT NOT NULL,
	state TEXT NOT NULL,
	requester_id TEXT NOT NULL,
	reason TEXT NOT NULL,
	break_glass INTEGER NOT NULL,
	plan TEXT NOT NULL,
	plan_hash TEXT NOT NULL,
	approvals TEXT NOT NULL,
	needed INTEGER NOT NULL,
	needed_roles TEXT NOT NULL,
	current_wave INTEGER NOT NULL,
	detail TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX ops_operations_state ON ops_operations (state);
CREATE INDEX ops_operations_runbook ON ops_operations (runbook, state);
