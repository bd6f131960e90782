-- KMS: named keys, their versions (key-encryption keys sealed by the root
-- key), secrets and their versions (envelope ciphertext text), dual-control
-- requests, and bookkeeping (the root key check value). No column holds a
-- plaintext key or secret.
CREATE TABLE kms_keys (
	name TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	current_version INTEGER NOT NULL,
	min_decryption_version INTEGER NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0,
	rotation_period_ns BIGINT NOT NULL,
	max_encryptions BIGINT NOT NULL
);

CREATE TABLE kms_key_versions (
	key_name TEXT NOT NULL REFERENCES kms_keys (name),
	version INTEGER NOT NULL,
	wrapped {{BLOB}},
	created_at BIGINT NOT NULL,
	encryptions BIGINT NOT NULL DEFAULT 0,
	decryptions BIGINT NOT NULL DEFAULT 0,
	destroyed_at BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (key_name, version)
);

CREATE TABLE kms_secrets (
	path TEXT PRIMARY KEY,
	key_name TEXT NOT NULL,
	critical INTEGER NOT NULL DEFAULT 0,
	current_version INTEGER NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	deleted_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE kms_secret_versions (
	path TEXT NOT NULL REFERENCES kms_secrets (path),
	version INTEGER NOT NULL,
	ciphertext TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	created_by TEXT NOT NULL,
	PRIMARY KEY (path, version)
);

CREATE TABLE kms_requests (
	id TEXT PRIMARY KEY,
	action TEXT NOT NULL,
	subject TEXT NOT NULL,
	content {{BLOB}} NOT NULL,
	payload {{BLOB}},
	hash TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	requested_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	state TEXT NOT NULL,
	approved_by TEXT NOT NULL DEFAULT '',
	approved_at BIGINT NOT NULL DEFAULT 0,
	execute_after BIGINT NOT NULL DEFAULT 0,
	finished_at BIGINT NOT NULL DEFAULT 0,
	note TEXT NOT NULL DEFAULT ''
);

CREATE INDEX kms_requests_state ON kms_requests (state, requested_at);

CREATE TABLE kms_meta (
	name TEXT PRIMARY KEY,
	value {{BLOB}} NOT NULL
);
