-- When a host's agent identity was revoked (0: never). A revoked host's
-- certificate is refused on every agent route and the host is never live
-- or targetable again; the machine re-enrolls as a new host.
ALTER TABLE ops_hosts ADD COLUMN revoked_at BIGINT NOT NULL DEFAULT 0;
