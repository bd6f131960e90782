package ops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/api/wire"
	"github.com/interlock-dev/interlock/internal/audit"
	"github.com/interlock-dev/interlock/internal/usererr"
)

// JoinTokenPrefix starts every join token's text form.
const JoinTokenPrefix = "ilk_join_"

// JoinToken is a one-time enrollment token as stored: only its hash.
type JoinToken struct {
	ID        string
	Hash      []byte // SHA-256 of the token's text form
	Services  []string
	Labels    map[string]string
	CreatedBy string // actor
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until used
	HostID    string    // the host it enrolled
	KeySHA256 string    // the enrolled public key (SHA-256 of its SubjectPublicKeyInfo, hex)
}

// Secret is a bearer value that never prints: String and LogValue redact it.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (s Secret) Reveal() string             { return string(s) }
func (Secret) GoString() string             { return `ops.Secret("[redacted]")` }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

func hashToken(t string) []byte {
	sum := sha256.Sum256([]byte(t))
	return sum[:]
}

// CreateJoinToken issues a one-time token with which one host enrolls into
// services with labels. Only the token's hash is stored. Services that do
// not exist yet are created without rules.
func (s *Manager) CreateJoinToken(ctx context.Context, by wire.Principal, services []string, labels map[string]string, ttl time.Duration) (Secret, error) {
	services = slices.Clone(services)
	sort.Strings(services)
	services = slices.Compact(services)
	if len(services) == 0 {
		return "", usererr.New(usererr.Invalid, "no_services", "A join token needs at least one service for its host to serve, like --services index,billing.")
	}
	for _, name := range services {
		if !namePattern.MatchString(name) {
			return "", badServiceName(name)
		}
	}
	for k, v := range labels {
		if k == "" || strings.ContainsAny(k+v, "=,\n\r\x00") {
			return "", usererr.New(usererr.Invalid, "bad_label", "Label %q=%q is not valid: names must be non-empty and neither may contain =, commas or line breaks.", k, v)
		}
	}
	if ttl <= 0 || ttl > s.cfg.MaxJoinTokenTTL {
		return "", usererr.New(usererr.Invalid, "bad_ttl", "A join token must expire within %s; got %s.", s.cfg.MaxJoinTokenTTL, ttl)
	}
	var raw [32]byte
	if _, err := io.ReadFull(s.rand, raw[:]); err != nil {
		return "", fmt.Errorf("join token: %w", err)
	}
	token := JoinTokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	id, err := s.newID("jt_")
	if err != nil {
		return "", err
	}
	now := s.clock()
	jt := JoinToken{ID: id, Hash: hashToken(token), Services: services, Labels: labels, CreatedBy: by.Actor(), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	err = s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.EnsureServices(ctx, services, now); err != nil {
			return err
		}
		if err := tx.InsertJoinToken(ctx, jt); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "host.join_token_created", Version: 1, Actor: by.Actor(), Subject: "join_token:" + id, Time: now,
			Data: map[string]any{"services": services, "labels": labels, "expires_at": jt.ExpiresAt.Format(time.RFC3339)}})
	})
	if err != nil {
		return "", fmt.Errorf("create join token: %w", err)
	}
	return Secret(token), nil
}

func badServiceName(name string) error {
	return usererr.New(usererr.Invalid, "bad_service_name", "Service name %q must be 1–63 lower-case letters, digits or dashes, starting with a letter or digit.", name)
}

// EnrollHost spends a join token and creates the host it names, for the
// agent key keySHA256 (SHA-256 of the CSR's SubjectPublicKeyInfo, hex). The
// token works once and only before it expires, except that the same key
// and hostname may present it again (enrollAgain); every failure says the
// same thing.
func (s *Manager) EnrollHost(ctx context.Context, token, hostname, keySHA256 string) (hostID string, services []string, labels map[string]string, err error) {
	hostname = strings.TrimSpace(hostname)
	if err := checkHostname(hostname); err != nil {
		return "", nil, nil, err
	}
	if !strings.HasPrefix(token, JoinTokenPrefix) {
		return "", nil, nil, badJoinToken()
	}
	id, err := s.newID("host_")
	if err != nil {
		return "", nil, nil, err
	}
	now := s.clock()
	var jt JoinToken
	err = s.inTxGrouped(ctx, func(tx Tx) error {
		// Serialise enrollments (and planning) so that two agents cannot
		// both take a free name.
		if err := tx.LockOps(ctx); err != nil {
			return err
		}
		jt, err = tx.ClaimJoinToken(ctx, hashToken(token), id, keySHA256, now)
		if errors.Is(err, ErrNotFound) && keySHA256 != "" {
			return s.enrollAgain(ctx, tx, token, hostname, keySHA256, now, &jt)
		}
		if err != nil {
			return err
		}
		if err := checkNameFree(ctx, tx, hostname); err != nil {
			return err // rolls the token back: it can enroll under another name
		}
		h := Host{ID: id, Name: hostname, Services: jt.Services, Labels: jt.Labels, InService: true, LastSeen: now, Healthy: true}
		if err := tx.InsertHost(ctx, h, now); err != nil {
			return err
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: "host.enrolled", Version: 1, Actor: "agent:" + id, Subject: "host:" + id, Time: now,
			Data: map[string]any{"hostname": hostname, "services": jt.Services, "labels": jt.Labels, "join_token": jt.ID}})
	})
	if errors.Is(err, ErrNotFound) {
		return "", nil, nil, badJoinToken()
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("enroll host %s: %w", hostname, err)
	}
	s.log.InfoContext(ctx, "host enrolled", slog.String("host", jt.HostID), slog.String("hostname", hostname))
	return jt.HostID, jt.Services, jt.Labels, nil
}

// enrollAgain answers an enrollment whose token is already spent when the
// same key (and hostname) spent it: the agent lost the first answer (a
// timeout, a failed response after the commit, a restart mid-enrollment)
// and asks again. Only the holder of both the token and the enrolled
// private key (the CSR proves possession) gets the same host back, and
// only until the token would have expired; everyone else gets ErrNotFound.
func (s *Manager) enrollAgain(ctx context.Context, tx Tx, token, hostname, keySHA256 string, now time.Time, jt *JoinToken) error {
	spent, err := tx.SpentJoinToken(ctx, hashToken(token), keySHA256, now)
	if err != nil {
		return err
	}
	h, err := tx.OpsHost(ctx, spent.HostID)
	if err != nil {
		return err
	}
	if h.Name != hostname || !h.RevokedAt.IsZero() {
		return ErrNotFound
	}
	*jt = spent
	return audit.Append(ctx, tx, audit.Entry{Kind: "host.enrolled_again", Version: 1, Actor: "agent:" + h.ID, Subject: "host:" + h.ID, Time: now,
		Data: map[string]any{"hostname": hostname, "join_token": spent.ID}})
}

// maxHostnameBytes is DNS's limit on a full name.
const maxHostnameBytes = 253

// checkHostname refuses names that could deceive a person reading a host
// list, a plan or the audit log: control characters (terminal escape
// sequences among them), anything outside printable ASCII letters, digits,
// dots, dashes and underscores (which keeps out invisible and look-alike
// Unicode), a trailing dot (DNS's root: "web1." is web1), and names longer
// than DNS allows. Its sentence never echoes
// more than the start of the name.
func checkHostname(name string) error {
	shown := name
	if len(shown) > 64 {
		shown = shown[:64] + "…"
	}
	if name == "" {
		return usererr.New(usererr.Invalid, "bad_hostname", "The hostname is empty; pass --hostname or give the machine a name.")
	}
	if len(name) > maxHostnameBytes {
		return usererr.New(usererr.Invalid, "bad_hostname", "The hostname %q is %d bytes long; a hostname has at most %d.", shown, len(name), maxHostnameBytes)
	}
	if strings.HasSuffix(name, ".") {
		// DNS reads "web1." and "web1" as one name (the dot is the root):
		// allowed, a second machine could look like the first everywhere.
		return usererr.New(usererr.Invalid, "bad_hostname",
			"The hostname %q ends with a dot, which DNS reads as the same name without it; leave the dot off.", shown)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '-' || c == '_')
		if !ok {
			what := "a character a hostname may not hold"
			switch {
			case c < 0x20 || c == 0x7f:
				what = "a control character (such as a terminal escape sequence)"
			case c >= 0x80:
				what = "a byte outside ASCII (hostnames are ASCII; Unicode could hide or imitate other names)"
			case i == 0:
				what = "a first character that is not a letter or digit"
			}
			return usererr.New(usererr.Invalid, "bad_hostname",
				"The hostname %q has %s at byte %d; use letters, digits, dots, dashes and underscores.", shown, what, i+1)
		}
	}
	return nil
}

// checkNameFree refuses a hostname that a host not revoked already has
// (case-insensitively, as DNS compares names), so that two machines never
// look like one in a plan or the log.
func checkNameFree(ctx context.Context, tx Tx, name string) error {
	if byName, ok := tx.(liveHostNamer); ok {
		h, taken, err := byName.OpsLiveHostNamed(ctx, name)
		if err != nil {
			return err
		}
		if taken {
			return errHostnameTaken(h)
		}
		return nil
	}
	hosts, err := tx.OpsHosts(ctx)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if h.RevokedAt.IsZero() && strings.EqualFold(h.Name, name) {
			return errHostnameTaken(h)
		}
	}
	return nil
}

// liveHostNamer finds a live host by name through an index (store.Tx);
// without it checkNameFree reads every host, which makes enrolling a
// large fleet quadratic.
type liveHostNamer interface {
	OpsLiveHostNamed(ctx context.Context, name string) (Host, bool, error)
}

func errHostnameTaken(h Host) error {
	return usererr.New(usererr.Conflict, "hostname_taken",
		"Host %s already has the name %q; give this machine another name (--hostname), or revoke that host first if this machine replaces it.", h.ID, h.Name)
}

func badJoinToken() error {
	return usererr.New(usererr.Unauthenticated, "bad_join_token", "The join token is unknown, expired or already used; create a new one with interlock join-token create.")
}

// RecordHeartbeat records that a host is alive and whether it says it is
// healthy. It writes an audit entry only when a host comes back: its
// previous heartbeat was unhealthy or older than the staleness window. A
// heartbeat that changes nothing is only remembered, and written with the
// next batch (liveness.go).
func (s *Manager) RecordHeartbeat(ctx context.Context, hostID string, healthy bool) error {
	now := s.clock()
	if s.fastHeartbeat(hostID, healthy, now) {
		return nil // nothing changed: written with the next batch (liveness.go)
	}
	err := s.inTxGrouped(ctx, func(tx Tx) error {
		prev, err := tx.OpsHost(ctx, hostID)
		if err != nil {
			return err
		}
		if !prev.RevokedAt.IsZero() {
			return hostRevoked(prev)
		}
		if err := tx.SetHostHeartbeat(ctx, hostID, healthy, now); err != nil {
			return err
		}
		wasLive := prev.Healthy && now.Sub(prev.LastSeen) <= s.cfg.StaleAfter
		if healthy && !wasLive {
			return audit.Append(ctx, tx, audit.Entry{Kind: "host.recovered", Version: 1, Actor: "agent:" + hostID, Subject: "host:" + hostID, Time: now,
				Data: map[string]any{"was_healthy": prev.Healthy, "last_seen": prev.LastSeen.UTC().Format(time.RFC3339Nano)}})
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return usererr.New(usererr.NotFound, "unknown_host", "Host %s is not enrolled.", hostID)
	}
	if err == nil {
		s.rememberHeartbeat(hostID, healthy, now)
	}
	return err
}

// RevokeHost revokes a host's agent identity, at once and for good: its
// certificate is refused on every agent route from the next request (on
// every server sharing the database), its live stream ends, it is never
// live or targetable again, and a spent join token cannot enroll it
// again. Use it for a host whose key may be stolen or that is being
// retired; the machine comes back only by enrolling as a new host with a
// new join token. It needs a reason, which goes to the audit log.
func (s *Manager) RevokeHost(ctx context.Context, by wire.Principal, hostID, reason string) (Host, error) {
	if strings.TrimSpace(reason) == "" {
		return Host{}, usererr.New(usererr.Invalid, "reason_required", "Say why host %s is revoked (--reason); it goes into the audit log.", hostID)
	}
	now := s.clock()
	var h Host
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		if h, err = tx.OpsHost(ctx, hostID); err != nil {
			return err
		}
		if !h.RevokedAt.IsZero() {
			return usererr.New(usererr.Conflict, "host_revoked", "Host %s (%s) was revoked already, at %s.", h.ID, h.Name, h.RevokedAt.UTC().Format(time.RFC3339))
		}
		if err := tx.RevokeHost(ctx, hostID, now); err != nil {
			return err
		}
		h.RevokedAt = now
		return audit.Append(ctx, tx, audit.Entry{Kind: "host.revoked", Version: 1, Actor: actorOf(by), Subject: "host:" + hostID, Time: now,
			Data: map[string]any{"hostname": h.Name}, Personal: map[string]string{"reason": reason}})
	})
	if errors.Is(err, ErrNotFound) {
		return Host{}, usererr.New(usererr.NotFound, "unknown_host", "Host %s is not enrolled.", hostID)
	}
	if err != nil {
		if _, ok := usererr.As(err); ok {
			return Host{}, err
		}
		return Host{}, fmt.Errorf("revoke host %s: %w", hostID, err)
	}
	s.forgetHeartbeats(hostID)
	if s.cfg.OnHostRevoked != nil {
		s.cfg.OnHostRevoked(hostID)
	}
	s.log.InfoContext(ctx, "host revoked", slog.String("host", hostID), slog.String("by", actorOf(by)))
	return h, nil
}

// HostRevoked reports whether host id's identity was revoked (an unknown
// host counts as revoked: nothing may act as it).
func (s *Manager) HostRevoked(ctx context.Context, id string) (bool, error) {
	h, err := s.store.OpsHost(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return true, fmt.Errorf("check host %s: %w", id, err)
	}
	return !h.RevokedAt.IsZero(), nil
}

func hostRevoked(h Host) error {
	return usererr.New(usererr.Unauthenticated, "host_revoked", "Host %s was revoked at %s; enroll the machine again with a new join token.", h.ID, h.RevokedAt.UTC().Format(time.RFC3339))
}

// ReturnHost puts a host back in service after a person checked it: an
// operation that removed capacity and was halted or aborted leaves the
// hosts it reached out of service. It needs a reason; a revoked host
// cannot come back (it re-enrolls as a new host).
func (s *Manager) ReturnHost(ctx context.Context, by wire.Principal, hostID, reason string) (Host, error) {
	if strings.TrimSpace(reason) == "" {
		return Host{}, usererr.New(usererr.Invalid, "reason_required", "Say why host %s can serve again (--reason); it goes into the audit log.", hostID)
	}
	h, err := s.store.OpsHost(ctx, hostID)
	if errors.Is(err, ErrNotFound) {
		return Host{}, usererr.New(usererr.NotFound, "unknown_host", "Host %s is not enrolled.", hostID)
	}
	if err != nil {
		return Host{}, fmt.Errorf("load host %s: %w", hostID, err)
	}
	switch {
	case !h.RevokedAt.IsZero():
		return Host{}, usererr.New(usererr.Conflict, "host_revoked", "Host %s (%s) is revoked; enroll the machine again as a new host.", h.ID, h.Name)
	case h.InService:
		return Host{}, usererr.New(usererr.Conflict, "host_in_service", "Host %s (%s) is in service already.", h.ID, h.Name)
	}
	if err := s.SetHostInService(ctx, by, hostID, true, reason); err != nil {
		return Host{}, err
	}
	h.InService = true
	return h, nil
}

// SetHostInService takes a host out of service or puts it back. The
// executor calls it for runbooks that remove capacity.
func (s *Manager) SetHostInService(ctx context.Context, by wire.Principal, hostID string, inService bool, reason string) error {
	now := s.clock()
	err := s.store.InTx(ctx, func(tx Tx) error {
		if err := tx.SetHostInService(ctx, hostID, inService); err != nil {
			return err
		}
		kind := "host.removed_from_service"
		if inService {
			kind = "host.returned_to_service"
		}
		return audit.Append(ctx, tx, audit.Entry{Kind: kind, Version: 1, Actor: actorOf(by), Subject: "host:" + hostID, Time: now,
			Personal: map[string]string{"reason": reason}})
	})
	if errors.Is(err, ErrNotFound) {
		return usererr.New(usererr.NotFound, "unknown_host", "Host %s is not enrolled.", hostID)
	}
	return err
}

func actorOf(p wire.Principal) string {
	if p.Kind == "" || p.ID == "" {
		return "system"
	}
	return p.Actor()
}

// SetService creates or replaces a service's capacity rules.
func (s *Manager) SetService(ctx context.Context, by wire.Principal, svc Service) error {
	return s.putServices(ctx, by, []Service{svc})
}

func (s *Manager) putServices(ctx context.Context, by wire.Principal, svcs []Service) error {
	for _, svc := range svcs {
		if err := validateService(svc); err != nil {
			return err
		}
	}
	return s.store.InTx(ctx, func(tx Tx) error { return s.PutServicesIn(ctx, tx, by, svcs) })
}

// PutServicesIn creates or replaces each service's rules in tx, each with
// its "service.set" audit entry. The caller validated them.
func (s *Manager) PutServicesIn(ctx context.Context, tx Tx, by wire.Principal, svcs []Service) error {
	now := s.clock()
	for _, svc := range svcs {
		if err := tx.PutService(ctx, svc, now); err != nil {
			return fmt.Errorf("put service %s: %w", svc.Name, err)
		}
		freezes := make([]map[string]any, 0, len(svc.Freezes))
		for _, w := range svc.Freezes {
			freezes = append(freezes, map[string]any{"start": w.Start.UTC().Format(time.RFC3339), "end": w.End.UTC().Format(time.RFC3339), "reason": w.Reason})
		}
		if err := audit.Append(ctx, tx, audit.Entry{Kind: "service.set", Version: 1, Actor: actorOf(by), Subject: "service:" + svc.Name, Time: now,
			Data: map[string]any{"min_healthy": svc.MinHealthy.String(), "max_per_operation": svc.MaxPerOperation.String(), "freezes": freezes}}); err != nil {
			return err
		}
	}
	return nil
}

func validateService(svc Service) error {
	if !namePattern.MatchString(svc.Name) {
		return badServiceName(svc.Name)
	}
	for _, t := range []Threshold{svc.MinHealthy, svc.MaxPerOperation} {
		if t.IsPercent && (t.Percent < 0 || t.Percent > 100) || t.Count < 0 {
			return usererr.New(usererr.Invalid, "bad_threshold", "Thresholds of service %s must be a count of hosts or a percentage from 0 to 100.", svc.Name)
		}
	}
	for _, w := range svc.Freezes {
		if w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start) {
			return usererr.New(usererr.Invalid, "bad_freeze", "A freeze window of service %s needs a start before its end.", svc.Name)
		}
	}
	return nil
}

// servicesFile is the YAML form of services: a list under "services".
type servicesFile struct {
	Services []serviceYAML `yaml:"services"`
}

type serviceYAML struct {
	Name            string       `yaml:"name"`
	MinHealthy      Threshold    `yaml:"min_healthy"`
	MaxPerOperation Threshold    `yaml:"max_per_operation"`
	Freezes         []windowYAML `yaml:"freezes"`
}

type windowYAML struct {
	Start  time.Time `yaml:"start"`
	End    time.Time `yaml:"end"`
	Reason string    `yaml:"reason"`
}

// ParseServices reads services from YAML, strictly:
//
//	services:
//	  - name: billing
//	    min_healthy: 50%
//	    max_per_operation: 10%
//	    freezes:
//	      - {start: 2026-12-24T00:00:00Z, end: 2026-12-27T00:00:00Z, reason: holidays}
func ParseServices(src []byte) ([]Service, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var f servicesFile
	if err := dec.Decode(&f); err != nil {
		return nil, usererr.New(usererr.Invalid, "bad_services_file", "The services file is not valid: %v.", err)
	}
	if len(f.Services) == 0 {
		return nil, usererr.New(usererr.Invalid, "bad_services_file", "The services file lists no services under \"services:\".")
	}
	out := make([]Service, 0, len(f.Services))
	seen := map[string]bool{}
	for _, y := range f.Services {
		if seen[y.Name] {
			return nil, usererr.New(usererr.Invalid, "bad_services_file", "Service %s appears twice in the file.", y.Name)
		}
		seen[y.Name] = true
		svc := Service{Name: y.Name, MinHealthy: y.MinHealthy, MaxPerOperation: y.MaxPerOperation}
		for _, w := range y.Freezes {
			svc.Freezes = append(svc.Freezes, Window{Start: w.Start.UTC(), End: w.End.UTC(), Reason: w.Reason})
		}
		if err := validateService(svc); err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, nil
}

// LoadServices applies every service in a YAML file (see [ParseServices])
// in one transaction.
func (s *Manager) LoadServices(ctx context.Context, by wire.Principal, src []byte) ([]Service, error) {
	svcs, err := ParseServices(src)
	if err != nil {
		return nil, err
	}
	if err := s.putServices(ctx, by, svcs); err != nil {
		return nil, err
	}
	return svcs, nil
}

// HostStatus is a host as `interlock hosts` shows it.
type HostStatus struct {
	Host
	Live   bool   // healthy and heard from within the staleness window
	HeldBy string // the operation holding it, if any
}

// ListHosts returns every host, sorted by name.
func (s *Manager) ListHosts(ctx context.Context) ([]HostStatus, error) {
	inv, err := s.snapshot(ctx, s.store)
	if err != nil {
		return nil, err
	}
	held := inv.held("")
	out := make([]HostStatus, 0, len(inv.hosts))
	for i := range inv.hosts {
		h := &inv.hosts[i]
		out = append(out, HostStatus{Host: *h, Live: inv.Live(h), HeldBy: held[h.ID]})
	}
	return out, nil
}

// ServiceStatus is a service with its capacity figures.
type ServiceStatus struct {
	Service
	Capacity
}

// ListServices returns every service with its capacity, sorted by name.
func (s *Manager) ListServices(ctx context.Context) ([]ServiceStatus, error) {
	inv, err := s.snapshot(ctx, s.store)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(inv.services))
	for n := range inv.services {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]ServiceStatus, 0, len(names))
	for _, n := range names {
		out = append(out, ServiceStatus{Service: inv.services[n], Capacity: inv.Capacity(n)})
	}
	return out, nil
}
