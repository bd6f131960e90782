-- Role grants (internal/identity): who gave each person each role, and
-- when, so that an approval can be refused when the approver got their
-- role from the person asking (a sock puppet) or got it after the request.
-- granted_by is the granter's audit actor ("person:<id>") or "bootstrap"
-- for the first admin. A replaced grant keeps its row with revoked_at set.
CREATE TABLE role_grants (
	id {{AUTOID}},
	person_id TEXT NOT NULL REFERENCES persons (id),
	role TEXT NOT NULL,
	granted_by TEXT NOT NULL,
	granted_at BIGINT NOT NULL,
	revoked_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX role_grants_person ON role_grants (person_id);
-- Existing persons: a role came with the person's latest invitation, from
-- its inviter; a person who was never invited is the bootstrap admin.
INSERT INTO role_grants (person_id, role, granted_by, granted_at)
SELECT p.id, p.roles,
	COALESCE((SELECT i.invited_by FROM invitations i WHERE i.person_id = p.id ORDER BY i.created_at DESC LIMIT 1), 'bootstrap'),
	COALESCE((SELECT i.created_at FROM invitations i WHERE i.person_id = p.id ORDER BY i.created_at DESC LIMIT 1), p.created_at)
FROM persons p WHERE p.roles <> '';
