-- Passkeys (WebAuthn credentials) of persons, for the web console: sign-in
-- and step-up MFA. credential is go-webauthn's Credential as JSON: a public
-- key, its sign counter and flags; nothing in it is secret.
CREATE TABLE passkeys (
	id TEXT PRIMARY KEY,
	person_id TEXT NOT NULL REFERENCES persons (id),
	name TEXT NOT NULL,
	credential {{BLOB}} NOT NULL,
	created_at BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_person ON passkeys (person_id);
