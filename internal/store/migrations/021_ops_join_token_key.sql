-- The public key a join token enrolled (SHA-256 of the CSR's
-- SubjectPublicKeyInfo, hex), so that an agent whose enrollment answer was
-- lost can present the same token with the same key again and get the
-- same host back instead of a spent token (ops.Manager.EnrollHost).
ALTER TABLE ops_join_tokens ADD COLUMN key_sha256 TEXT NOT NULL DEFAULT '';
