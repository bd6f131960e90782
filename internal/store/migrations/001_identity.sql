-- Identity (internal/identity): persons, bootstrap codes, invitations,
-- devices, sessions and failed sign-ins. Times are unix nanoseconds, 0 for
-- "not yet". Secrets never appear here in plaintext: password hashes and
-- TOTP seeds are sealed by internal/kms (aad "password:<id>", "totp:<id>"),
-- and bearer codes and session tokens are stored as SHA-256 hashes.
CREATE TABLE persons (
	id TEXT PRIMARY KEY,
	username TEXT NOT NULL UNIQUE,
	roles TEXT NOT NULL,
	status TEXT NOT NULL,
	password_sealed {{BLOB}},
	totp_sealed {{BLOB}},
	totp_last_step BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL
);
CREATE TABLE bootstrap_codes (
	code_hash {{BLOB}} PRIMARY KEY,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE invitations (
	id TEXT PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	code_hash {{BLOB}} NOT NULL UNIQUE,
	invited_by TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	accepted_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX invitations_person ON invitations (person_id);
CREATE TABLE devices (
	id TEXT PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	jkt TEXT NOT NULL UNIQUE,
	public_jwk TEXT NOT NULL,
	name TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL DEFAULT 0,
	revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_person ON devices (person_id);
CREATE TABLE login_sessions (
	id TEXT PRIMARY KEY,
	token_hash {{BLOB}} NOT NULL UNIQUE,
	person_id TEXT NOT NULL REFERENCES persons (id),
	device_id TEXT NOT NULL REFERENCES devices (id),
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	mfa_at BIGINT NOT NULL,
	revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX login_sessions_person ON login_sessions (person_id);
CREATE INDEX login_sessions_device ON login_sessions (device_id);
CREATE TABLE login_failures (
	id {{AUTOID}},
	username TEXT NOT NULL,
	at BIGINT NOT NULL
);
CREATE INDEX login_failures_username_at ON login_failures (username, at);
CREATE INDEX login_failures_at ON login_failures (at);
