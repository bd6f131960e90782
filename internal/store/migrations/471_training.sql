-- Training completions (internal/training): one row per person and
-- course, the latest completion. Times are unix nanoseconds; expires_at 0
-- means the course does not expire.
CREATE TABLE training_records (
	person_id TEXT NOT NULL REFERENCES persons (id),
	course TEXT NOT NULL,
	completed_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	recorded_by TEXT NOT NULL,
	recorded_at BIGINT NOT NULL,
	PRIMARY KEY (person_id, course)
);
-- Misuse detection (internal/detect): the next log index the detector
-- reads. One row.
CREATE TABLE detect_cursor (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	next_index BIGINT NOT NULL
);
