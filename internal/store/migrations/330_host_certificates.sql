-- The one client certificate each host's agent may use (internal/ops
-- hostcert.go): every agent route refuses any other, so a renewal retires
-- the certificate it replaces at once. fingerprint is the SHA-256 of the
-- certificate's DER (hex); previous is the fingerprint of the certificate
-- the last renewal replaced ('' after an enrollment), which may only fetch
-- its replacement again; pem is the current certificate (public).
-- issued_at (unix nanoseconds) rate-limits renewals. A host without a row
-- was enrolled before certificates were pinned.
CREATE TABLE ops_host_certificates (
	host_id TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	previous TEXT NOT NULL,
	pem TEXT NOT NULL,
	not_after BIGINT NOT NULL,
	issued_at BIGINT NOT NULL
);
