package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/change"
	"github.com/interlock-dev/interlock/internal/detect"
	"github.com/interlock-dev/interlock/internal/identity"
	"github.com/interlock-dev/interlock/internal/kms"
	"github.com/interlock-dev/interlock/internal/notify"
	"github.com/interlock-dev/interlock/internal/ops"
	"github.com/interlock-dev/interlock/internal/scan/secrets"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Notifications follow the record, never precede it: the announcer
// subscribes to the audit log's sequencer (audit.Log.OnSequenced), which
// hands over each entry once its transaction committed and it joined the
// Merkle tree. So nobody is told about an approval request that rolled
// back, every message names the log entry it announces, and the operation
// itself never waits: the subscriber only enqueues. The price is the
// sequencer's cadence (1 s) before a message leaves, and at-most-once
// delivery per process (entries integrated while a server is down are
// not announced after it restarts).
//
// These audit kinds mean an event people act on:
//
//	op.requested (state pending_approval), change.requested → approval_needed
//	op.approved, change.approved                            → approved
//	op.halt_reason, op.abort_reason (a person halted or aborted) → halted
//	op.halted by the system (failures, floors), op.needs_attention → failed
//
// A person's halt or abort is announced by the entry that records their
// reason (required, and written right after the state change), so that the
// message says why; op.halted and op.aborted by a person are not announced
// a second time.
//
//	op.break_glass                                            → break_glass
//	detect.alert (shared credentials, misuse; internal/detect)  → misuse
var notifyKinds = map[string]bool{
	"op.requested": true, "op.break_glass": true, "op.approved": true, "op.halted": true,
	"op.halt_reason": true, "op.abort_reason": true, "op.needs_attention": true, "change.requested": true, "change.approved": true,
	detect.KindAlert: true,
}

// announcer turns sequenced audit entries into notify.Events: it looks up
// the operation or change request, and the people's names, so that the
// message says who and what.
type announcer struct {
	n       *notify.Notifier
	ops     *ops.Manager
	changes *change.Service
	people  *identity.Service
	log     *slog.Logger
	entries chan audit.StoredEntry
	// lost counts announceable entries no sink was given: dropped because
	// too many waited, or not described (the operation could not be read).
	lost prometheus.Counter
}

func newUnannounced() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "interlock_notify_unannounced_total",
		Help: "Log entries that should have been announced but reached no sink (too many waited, or the operation or request could not be read): people were not told."})
}

// setupNotifications builds the notifier from the config and subscribes
// it to the log. Without sinks it does nothing.
func (a *App) setupNotifications() error {
	n, err := notify.New(notify.Config{Sinks: a.cfg.Notifications, Secrets: notifySecrets{a.KMS}, Log: a.log, Now: a.now})
	if err != nil {
		return err
	}
	a.notifier = n
	if !n.Enabled() {
		return nil
	}
	a.announcer = &announcer{n: n, ops: a.Ops, changes: a.Changes, people: a.Identity, log: a.log,
		entries: make(chan audit.StoredEntry, 4096), lost: newUnannounced()}
	a.Audit.OnSequenced(a.announcer.take)
	return nil
}

// take runs on the sequencer's goroutine: it must not block.
func (an *announcer) take(es []audit.StoredEntry) {
	for _, e := range es {
		if !notifyKinds[e.Kind] {
			continue
		}
		select {
		case an.entries <- e:
		default:
			an.lost.Inc()
			an.log.Warn("notification dropped: too many log entries waiting to be announced", slog.String("kind", e.Kind), slog.String("subject", e.Subject))
		}
	}
}

// run describes and hands on entries until ctx ends.
func (an *announcer) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-an.entries:
			ev, ok, err := an.describeSafely(ctx, e)
			if err != nil {
				an.lost.Inc()
				an.log.Error("describe a log entry for notification", slog.String("kind", e.Kind), slog.String("subject", e.Subject), slog.String("error", err.Error()))
				continue
			}
			if ok {
				an.n.Notify(redactEvent(ctx, ev))
			}
		}
	}
}

// describeSafely is describe, with a panic turned into an error: the
// announcer shares the server's process, and one malformed entry or bug
// in a message must cost that message, not every operation in flight.
func (an *announcer) describeSafely(ctx context.Context, e audit.StoredEntry) (ev notify.Event, ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, ok, err = notify.Event{}, false, fmt.Errorf("entry %d: panic while describing it: %v\n%s", e.Index, r, debug.Stack())
		}
	}()
	return an.describe(ctx, e)
}

// describe says in words what entry e means, or ok=false when it means
// nothing to notify (an operation that needs no approval).
func (an *announcer) describe(ctx context.Context, e audit.StoredEntry) (notify.Event, bool, error) {
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		return notify.Event{}, false, fmt.Errorf("entry %d data: %w", e.Index, err)
	}
	names, err := an.names(ctx)
	if err != nil {
		return notify.Event{}, false, err
	}
	actor := names.of(e.Actor)
	ev := notify.Event{Subject: e.Subject, Time: e.Time, LogIndex: e.Index}
	if e.Kind == detect.KindAlert {
		return misuseEvent(ev, names.of(e.Subject), data), true, nil
	}
	kind, id, _ := strings.Cut(e.Subject, ":")
	switch kind {
	case "op":
		op, err := an.ops.Get(ctx, id)
		if err != nil {
			return notify.Event{}, false, err
		}
		hosts, err := an.hostNames(ctx)
		if err != nil {
			return notify.Event{}, false, err
		}
		what := describeOp(op, names)
		requester := names.of("person:" + op.RequesterID)
		ev.Details = map[string]any{"operation": op.ID, "runbook": op.Plan.Runbook, "runbook_version": op.Plan.RunbookVersion,
			"requester": requester, "reason": op.Reason, "hosts": len(op.Plan.Hosts()), "plan_hash": op.Plan.Hash,
			"approvals_needed": op.Needed, "state": string(op.State), "by": actor}
		detail, _ := data["detail"].(string)
		switch e.Kind {
		case "op.requested":
			if s, _ := data["state"].(string); s != string(ops.OpPending) {
				return notify.Event{}, false, nil
			}
			ev.Name = notify.EventApprovalNeeded
			ev.Title = fmt.Sprintf("%s asks to run %s on %s: approval needed", requester, op.Plan.Runbook, plural(len(op.Plan.Hosts()), "host"))
			ev.Text = "Approval needed. " + what + "\n" + opFacts(op, data, hosts) +
				fmt.Sprintf("Needs %s from role %s; %s cannot approve it.\n", plural(op.Needed, "approval"), strings.Join(op.NeededRoles, " or "), requester) +
				fmt.Sprintf("Review the plan and approve: interlock approve %s  (or deny: interlock deny %s --reason …)", op.ID, op.ID)
		case "op.break_glass":
			ev.Name = notify.EventBreakGlass
			ev.Title = fmt.Sprintf("BREAK GLASS: %s runs %s on %s without approval", requester, op.Plan.Runbook, plural(len(op.Plan.Hosts()), "host"))
			ev.Text = "BREAK GLASS: no approval was asked for. " + what + "\n" + opFacts(op, data, hosts) +
				fmt.Sprintf("Guardrails still apply. Watch it: interlock ops watch %s; stop it: interlock ops halt %s --reason …", op.ID, op.ID)
		case "op.approved":
			ev.Name = notify.EventApproved
			got, _ := data["approvals"].(float64)
			needed, _ := data["needed"].(float64)
			ready, _ := data["ready"].(bool)
			ev.Title = fmt.Sprintf("%s approved %s's %s", actor, requester, op.Plan.Runbook)
			next := fmt.Sprintf("It needs %d more.", int(needed-got))
			if ready {
				next = "It starts now: interlock ops watch " + op.ID
			}
			ev.Text = fmt.Sprintf("%s approved (%d of %d). %s\n%s", actor, int(got), int(needed), what, next)
		case "op.halted", "op.needs_attention":
			if e.Kind == "op.halted" && e.Actor != "system" {
				return notify.Event{}, false, nil // announced with its reason (op.halt_reason)
			}
			ev.Name = notify.EventFailed
			ev.Title = fmt.Sprintf("%s's %s stopped and needs a person", requester, op.Plan.Runbook)
			ev.Text = fmt.Sprintf("Operation stopped and needs a person: %s\n%s\nLook at it: interlock ops show %s",
				hosts.inText(names.inText(detail)), what, op.ID)
		case "op.halt_reason", "op.abort_reason":
			verb := "halted"
			if e.Kind == "op.abort_reason" {
				verb = "aborted"
			}
			reason := "(no reason recorded)"
			if fs, err := e.Openings(); err == nil {
				for _, f := range fs {
					if f.Name == "reason" {
						reason = typed(f.Value)
					}
				}
			}
			ev.Name = notify.EventHalted
			ev.Details["reason_given"] = reason
			ev.Title = fmt.Sprintf("%s %s %s's %s", actor, verb, requester, op.Plan.Runbook)
			ev.Text = fmt.Sprintf("%s %s the operation. Their reason: %s\n%s\nLook at it: interlock ops show %s", actor, verb, reason, what, op.ID)
		default:
			return notify.Event{}, false, nil
		}
	case "change":
		v, err := an.changes.Get(ctx, id)
		if err != nil {
			return notify.Event{}, false, err
		}
		r := v.Request
		requester := r.RequesterName
		if requester == "" {
			requester = names.of("person:" + r.RequesterID)
		}
		ev.Details = map[string]any{"change_request": r.ID, "kind": string(r.Kind), "target": r.Target, "summary": r.Summary,
			"requester": requester, "hash": r.Hash, "expires_at": r.ExpiresAt.UTC(), "state": string(r.State), "by": actor}
		what := fmt.Sprintf("Change request %s by %s: %s (%s %s).", r.ID, requester, typed(r.Summary), r.Kind, typed(r.Target))
		switch e.Kind {
		case "change.requested":
			ev.Name = notify.EventApprovalNeeded
			ev.Title = fmt.Sprintf("%s asks to change %s %s: approval needed", requester, r.Kind, typed(r.Target))
			ev.Text = fmt.Sprintf("Approval needed. %s\nContent hash: %s. It expires at %s.\nAnother person reviews the diff and approves: interlock change approve %s",
				what, r.Hash, r.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"), r.ID)
		case "change.approved":
			ev.Name = notify.EventApproved
			ev.Title = fmt.Sprintf("%s approved %s's change to %s %s", actor, requester, r.Kind, typed(r.Target))
			ev.Text = fmt.Sprintf("%s approved. %s", actor, what)
		default:
			return notify.Event{}, false, nil
		}
	default:
		return notify.Event{}, false, nil
	}
	ev.Text += fmt.Sprintf("\n(audit log entry %d: interlock log show %d)", e.Index, e.Index)
	return ev, true, nil
}

// notifySecretDetector is the secret scanner over the bundled rules (built
// once per process, shared with nothing that could change it).
var notifySecretDetector = secrets.BundledDetector

// redactEvent replaces every secret the scanner's rules find in ev's title,
// text and details with "[redacted:<rule-id>]". A reason is typed by a
// person, who may paste a live token into it; the audit log keeps it for
// its readers, but a chat channel or a mailing list is a wider audience.
// It fails closed: text that could not be checked is withheld.
func redactEvent(ctx context.Context, ev notify.Event) notify.Event {
	d, err := notifySecretDetector()
	redact := func(s string) (string, bool) {
		if err != nil {
			return "", false
		}
		out, _, rerr := d.RedactText(context.WithoutCancel(ctx), []byte(s))
		if rerr != nil {
			return "", false
		}
		return string(out), true
	}
	title, ok1 := redact(ev.Title)
	text, ok2 := redact(ev.Text)
	details := make(map[string]any, len(ev.Details))
	ok3 := true
	for k, v := range ev.Details {
		if s, isString := v.(string); isString {
			r, ok := redact(s)
			ok3 = ok3 && ok
			v = r
		}
		details[k] = v
	}
	if !ok1 || !ok2 || !ok3 {
		ev.Title = "A notification was withheld"
		ev.Text = fmt.Sprintf("Interlock could not check this notification for secrets, so it withheld it. Read it in the log: interlock log show %d", ev.LogIndex)
		ev.Details = nil
		return ev
	}
	ev.Title, ev.Text, ev.Details = title, text, details
	return ev
}

// describeOp is one sentence: who runs what, where, and why.
func describeOp(op ops.Operation, names idNames) string {
	return fmt.Sprintf("%s asks to run runbook %s (version %d) on %s in %s, operation %s. Reason: %s",
		names.of("person:"+op.RequesterID), op.Plan.Runbook, op.Plan.RunbookVersion, plural(len(op.Plan.Hosts()), "host"),
		plural(len(op.Plan.Waves), "wave"), op.ID, typed(op.Reason))
}

// typed makes text a person typed (a reason, a parameter's value) safe to
// put inside a message people trust: on one line, so that it cannot add
// lines that read as Interlock's own ("… approved (2 of 2)", a fake wave
// or plan hash), and without the invisible format characters (bidi
// overrides, zero-width joiners) that make what a reader sees differ from
// what is there. Line breaks and other controls become a space; format
// characters are dropped. Details keep the value as typed, for machines.
func typed(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			return ' '
		case unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, s)
}

// opFacts lists what an approver weighs: parameters (secret ones are
// references, never values), services, secrets read, unusual inputs, hash.
func opFacts(op ops.Operation, data map[string]any, hosts idNames) string {
	var b strings.Builder
	keys := make([]string, 0, len(op.Plan.Params))
	for k := range op.Plan.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ps []string
	for _, k := range keys {
		ps = append(ps, typed(k)+"="+typed(op.Plan.Params[k]))
	}
	fmt.Fprintf(&b, "Parameters: %s\n", strings.Join(ps, ", "))
	for i, w := range op.Plan.Waves {
		if i == 5 {
			fmt.Fprintf(&b, "… and %s more (interlock ops show %s)\n", plural(len(op.Plan.Waves)-i, "wave"), op.ID)
			break
		}
		var hs []string
		for j, h := range w.Hosts {
			if j == 10 {
				hs = append(hs, fmt.Sprintf("… %d more", len(w.Hosts)-j))
				break
			}
			hs = append(hs, hosts.of(h))
		}
		fmt.Fprintf(&b, "Wave %d: %s\n", w.Number, strings.Join(hs, ", "))
	}
	fmt.Fprintf(&b, "Services on these hosts: %s\n", strings.Join(op.Plan.Services, ", "))
	if len(op.Plan.SecretRefs) > 0 {
		fmt.Fprintf(&b, "Secrets it reads (paths only): %s\n", strings.Join(op.Plan.SecretRefs, ", "))
	}
	if u, ok := data["unusual"].([]any); ok && len(u) > 0 {
		var us []string
		for _, x := range u {
			us = append(us, typed(fmt.Sprint(x)))
		}
		fmt.Fprintf(&b, "Unusual: %s\n", strings.Join(us, "; "))
	}
	fmt.Fprintf(&b, "Plan hash: %s\n", op.Plan.Hash)
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// idNames maps audit actors ("person:<id>") to usernames, or host IDs to hostnames.
type idNames map[string]string

func (p idNames) of(actor string) string {
	if n, ok := p[actor]; ok {
		return n
	}
	if actor == "system" {
		return "Interlock"
	}
	return actor
}

// inText replaces every "person:<id>" in s (the executor's details name
// actors so) with the person's name.
func (p idNames) inText(s string) string {
	for actor, name := range p {
		s = strings.ReplaceAll(s, actor, name)
	}
	return s
}

// hostNames maps host IDs to hostnames (a idNames keyed by host ID).
func (an *announcer) hostNames(ctx context.Context) (idNames, error) {
	hs, err := an.ops.ListHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("host names: %w", err)
	}
	m := make(idNames, len(hs))
	for _, h := range hs {
		m[h.ID] = h.Name
	}
	return m, nil
}

func (an *announcer) names(ctx context.Context) (idNames, error) {
	us, err := an.people.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("people's names: %w", err)
	}
	m := make(idNames, len(us))
	for _, u := range us {
		m["person:"+u.ID] = u.Username
	}
	return m, nil
}

// notifySecrets reads sinks' secrets from the secrets store as the
// system; each read is audited (secret.read) with why.
type notifySecrets struct{ kms *kms.Service }

func (s notifySecrets) Secret(ctx context.Context, path, why string) ([]byte, error) {
	v, err := s.kms.GetSecret(ctx, kms.Caller{Kind: "system", ID: "notify"}, path, 0, why)
	if ue, ok := usererr.As(err); ok && ue.Kind == usererr.NotFound {
		return nil, fmt.Errorf("%w: put it with interlock secret put %s (%v)", notify.ErrNoSecret, path, err)
	}
	if err != nil {
		return nil, err
	}
	return v.Value.Bytes(), nil
}

// misuseEvent words a detect.alert entry: whose account, which rule, and
// the log entries that are its evidence.
func misuseEvent(ev notify.Event, person string, data map[string]any) notify.Event {
	rule, _ := data["rule"].(string)
	detail, _ := data["detail"].(string)
	ev.Name = notify.EventMisuse
	ev.Title = fmt.Sprintf("Possible misuse of %s's account (%s)", person, rule)
	ev.Text = fmt.Sprintf("%s\n%s\nEvidence: log entries %v. Check with %s; `interlock log show` gives each entry.",
		ev.Title, typed(detail), data["evidence"], person)
	ev.Details = map[string]any{"rule": rule, "person": person, "evidence": data["evidence"]}
	return ev
}
