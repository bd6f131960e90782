-- Enrollment checks that no live host has the new host's name (ignoring
-- case). Without an index that check read every host, so enrolling N
-- hosts read N²/2 rows and a fleet of thousands enrolled ever slower.
CREATE INDEX ops_hosts_lower_name ON ops_hosts (lower(name));
