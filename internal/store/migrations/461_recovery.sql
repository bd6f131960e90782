-- Account recovery (internal/identity/recovery.go). recovery_codes are a
-- person's own one-time codes, issued at enrolment and kept only as SHA-256
-- hashes (each has 80 random bits, so a fast hash is enough). A
-- credential_reset is the one-time code, issued once another admin approved
-- the reset as a change request, with which the person re-enrols the reset
-- credentials; also stored only as a hash.
CREATE TABLE recovery_codes (
	id {{AUTOID}},
	person_id TEXT NOT NULL REFERENCES persons (id),
	code_hash {{BLOB}} NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX recovery_codes_person ON recovery_codes (person_id);
CREATE TABLE credential_resets (
	id TEXT PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	code_hash {{BLOB}} NOT NULL UNIQUE,
	what TEXT NOT NULL,
	issued_by TEXT NOT NULL,
	change_id TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX credential_resets_person ON credential_resets (person_id);
