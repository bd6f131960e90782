// Package training records which courses each person completed and until
// when they count, so that policy can require a current course: the
// authorizer puts the names of a person's unexpired courses in the Cedar
// context as `training` (a set), and a rule such as
//
//	forbid (principal is Person, action == Action::"op.run", resource is Runbook)
//	when { resource has removes_capacity && resource.removes_capacity &&
//	       !(context has training && context.training.contains("production-change")) };
//
// refuses an operation that removes capacity to a person whose
// "production-change" course has lapsed. Completions come one at a time
// (interlock training record) or from a CSV export of a learning system
// (interlock training import), all or nothing; each is an audit entry.
package training

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// KindRecorded is the audit kind of one completion (pinned in
// internal/cli/testdata/audit_kinds.golden). v1 (2026-12-03): Data
// course, completed_at, expires_at (unix s, 0: never), source ("cli" or
// "import"); Personal username. Subject person:<id>.
const KindRecorded = "training.recorded"

// Record is one person's latest completion of one course.
type Record struct {
	PersonID    string
	Course      string
	CompletedAt time.Time
	ExpiresAt   time.Time // zero: does not expire
	RecordedBy  string    // audit actor
	RecordedAt  time.Time
}

// CurrentAt reports whether the completion still counts at now.
func (r Record) CurrentAt(now time.Time) bool {
	return !r.CompletedAt.After(now) && (r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt))
}

// Store is what the service needs from the database.
type Store interface {
	Reader
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Reader holds the reads.
type Reader interface {
	// TrainingRecords lists personID's records, or everyone's for "",
	// ordered by person and course.
	TrainingRecords(ctx context.Context, personID string) ([]Record, error)
}

// Tx is one transaction.
type Tx interface {
	audit.Tx
	Reader
	// PutTrainingRecord stores r, replacing the person's record of the course.
	PutTrainingRecord(ctx context.Context, r Record) error
}

// People lists accounts: identity.Service.
type People interface {
	ListUsers(ctx context.Context) ([]identity.User, error)
}

// Service records and reads training.
type Service struct {
	store Store
	ppl   People
	now   func() time.Time
	// logNow dates audit entries: the server's clock, which the log keeps
	// in order (tests move now alone, to let courses lapse).
	logNow func() time.Time
	log    *slog.Logger
}

// New returns a Service. now says which courses are current (nil:
// time.Now); logNow dates audit entries (nil: now).
func New(store Store, people People, now, logNow func() time.Time, log *slog.Logger) (*Service, error) {
	if store == nil || people == nil {
		return nil, errors.New("training: Store and People are required")
	}
	if now == nil {
		now = time.Now
	}
	if logNow == nil {
		logNow = now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, ppl: people, now: now, logNow: logNow, log: log}, nil
}

var courseName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Completion is one completion to record, by username.
type Completion struct {
	Username    string
	Course      string
	CompletedAt time.Time // zero: now
	ExpiresAt   time.Time // zero: never
}

// MaxImportRows bounds one import.
const MaxImportRows = 10_000

// RecordOne records one completion.
func (s *Service) RecordOne(ctx context.Context, by wire.Principal, c Completion) (Record, error) {
	rs, err := s.record(ctx, by, []Completion{c}, "cli", nil)
	if err != nil {
		return Record{}, err
	}
	return rs[0], nil
}

// Import reads a CSV with the header username,course,completed,expires
// (dates as 2006-01-02 or RFC 3339; an empty expires never expires) and
// records every row, or none when any row is wrong: the error names the
// line and what is wrong with it.
func (s *Service) Import(ctx context.Context, by wire.Principal, r io.Reader) ([]Record, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, usererr.New(usererr.Invalid, "csv_invalid", "The CSV has no header line; the first line must be username,course,completed,expires.")
	}
	want := []string{"username", "course", "completed", "expires"}
	if len(header) != len(want) {
		return nil, usererr.New(usererr.Invalid, "csv_header", "The CSV header is %q; it must be username,course,completed,expires.", strings.Join(header, ","))
	}
	for i, h := range header {
		if strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) != want[i] {
			return nil, usererr.New(usererr.Invalid, "csv_header", "The CSV header is %q; it must be username,course,completed,expires.", strings.Join(header, ","))
		}
	}
	var cs []Completion
	var lines []int
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, usererr.New(usererr.Invalid, "csv_invalid", "The CSV cannot be read near line %d: %v.", line, err)
		}
		if len(rec) != 4 {
			return nil, usererr.New(usererr.Invalid, "csv_row", "Line %d has %d fields; it needs username,course,completed,expires.", line, len(rec))
		}
		if len(cs) >= MaxImportRows {
			return nil, usererr.New(usererr.TooLarge, "csv_too_long", "The CSV has more than %d rows; split it.", MaxImportRows)
		}
		c := Completion{Username: strings.TrimSpace(rec[0]), Course: strings.TrimSpace(rec[1])}
		if c.CompletedAt, err = parseDate(rec[2], false); err != nil {
			return nil, usererr.New(usererr.Invalid, "csv_row", "Line %d: completed %v.", line, err)
		}
		if c.ExpiresAt, err = parseDate(rec[3], true); err != nil {
			return nil, usererr.New(usererr.Invalid, "csv_row", "Line %d: expires %v.", line, err)
		}
		cs = append(cs, c)
		lines = append(lines, line)
	}
	if len(cs) == 0 {
		return nil, usererr.New(usererr.Invalid, "csv_empty", "The CSV has a header but no rows.")
	}
	return s.record(ctx, by, cs, "import", lines)
}

// ParseDate reads 2006-01-02 (midnight UTC) or RFC 3339.
func ParseDate(v string) (time.Time, error) { return parseDate(v, false) }

func parseDate(v string, emptyOK bool) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		if emptyOK {
			return time.Time{}, nil
		}
		return time.Time{}, errors.New("is empty; give a date such as 2027-03-01")
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date such as 2027-03-01 or 2027-03-01T09:00:00Z", v)
}

func (s *Service) record(ctx context.Context, by wire.Principal, cs []Completion, source string, lines []int) ([]Record, error) {
	us, err := s.ppl.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	ids := map[string]string{}
	for _, u := range us {
		ids[u.Username] = u.ID
	}
	now := s.now()
	at := func(i int) string {
		if lines != nil {
			return fmt.Sprintf("Line %d: ", lines[i])
		}
		return ""
	}
	out := make([]Record, 0, len(cs))
	for i, c := range cs {
		id, ok := ids[c.Username]
		if !ok {
			return nil, usererr.New(usererr.NotFound, "user_not_found", "%sthere is no user %q.", at(i), c.Username)
		}
		// A course that policy may require is a control on the person who
		// holds it; recording it oneself would let them pass it alone.
		if id == by.ID {
			return nil, usererr.New(usererr.Forbidden, "own_training", "%syou cannot record your own training (%s); another admin records it.", at(i), c.Course)
		}
		if !courseName.MatchString(c.Course) {
			return nil, usererr.New(usererr.Invalid, "invalid_course", "%sthe course name %q is not valid; use lower-case letters, digits, '.', '_' and '-' (at most 64).", at(i), c.Course)
		}
		if c.CompletedAt.IsZero() {
			c.CompletedAt = now
		}
		if c.CompletedAt.After(now.Add(time.Minute)) {
			return nil, usererr.New(usererr.Invalid, "completed_in_future", "%sthe completion date %s is in the future.", at(i), c.CompletedAt.Format(time.DateOnly))
		}
		if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(c.CompletedAt) {
			return nil, usererr.New(usererr.Invalid, "expires_before_completed", "%sthe course would expire (%s) before it was completed (%s).", at(i),
				c.ExpiresAt.Format(time.DateOnly), c.CompletedAt.Format(time.DateOnly))
		}
		out = append(out, Record{PersonID: id, Course: c.Course, CompletedAt: c.CompletedAt, ExpiresAt: c.ExpiresAt, RecordedBy: by.Actor(), RecordedAt: now})
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		for i, r := range out {
			if err := tx.PutTrainingRecord(ctx, r); err != nil {
				return fmt.Errorf("store training record: %w", err)
			}
			var exp int64
			if !r.ExpiresAt.IsZero() {
				exp = r.ExpiresAt.Unix()
			}
			if err := audit.Append(ctx, tx, audit.Entry{Kind: KindRecorded, Version: 1, Actor: by.Actor(), Subject: "person:" + r.PersonID, Time: s.logNow(),
				Data:     map[string]any{"course": r.Course, "completed_at": r.CompletedAt.Unix(), "expires_at": exp, "source": source},
				Personal: map[string]string{"username": cs[i].Username}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// List lists personID's records, or everyone's for "".
func (s *Service) List(ctx context.Context, personID string) ([]Record, error) {
	rs, err := s.store.TrainingRecords(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("list training: %w", err)
	}
	return rs, nil
}

// Current lists the names of personID's courses that count now, sorted.
func (s *Service) Current(ctx context.Context, personID string) ([]string, error) {
	rs, err := s.List(ctx, personID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []string{}
	for _, r := range rs {
		if r.CurrentAt(now) {
			out = append(out, r.Course)
		}
	}
	return out, nil
}
