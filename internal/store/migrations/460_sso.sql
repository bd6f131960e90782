-- Single sign-on (internal/sso, internal/identity/sso.go). A person signed in
-- through OpenID Connect is keyed by (issuer, subject), never by a name the
-- identity provider lets its users choose. sso_logins are sign-ins in
-- flight: the state and nonce are stored only as SHA-256 hashes, the PKCE
-- verifier sealed by internal/kms (aad "sso-login:<id>"), and each row is
-- bound to the device key that started it and works once (used_at).
CREATE TABLE sso_identities (
	issuer TEXT NOT NULL,
	subject TEXT NOT NULL,
	person_id TEXT NOT NULL UNIQUE REFERENCES persons (id),
	created_at BIGINT NOT NULL,
	PRIMARY KEY (issuer, subject)
);
CREATE TABLE sso_logins (
	id TEXT PRIMARY KEY,
	state_hash {{BLOB}} NOT NULL UNIQUE,
	issuer_name TEXT NOT NULL,
	jkt TEXT NOT NULL,
	redirect_uri TEXT NOT NULL,
	nonce_hash {{BLOB}} NOT NULL,
	verifier_sealed {{BLOB}} NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
