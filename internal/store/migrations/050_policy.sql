-- Policy versions: every applied Cedar policy text, never updated or
-- deleted. The highest version is the policy in force.
CREATE TABLE policy_versions (
	version BIGINT PRIMARY KEY,
	text TEXT NOT NULL,
	hash TEXT NOT NULL,
	author TEXT NOT NULL,
	created_at_unix_nano BIGINT NOT NULL
);
