package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// SSOIssuer is one OpenID Connect identity provider. Interlock is a
// confidential client of it: the server exchanges the authorization code
// and verifies the ID token itself, so the client secret never reaches a
// person's machine.
type SSOIssuer struct {
	// Name is how `interlock login --sso --issuer NAME` picks it; letters,
	// digits, '-' and '_'.
	Name string `yaml:"name"`
	// Issuer is the issuer URL; its discovery document is at
	// Issuer + "/.well-known/openid-configuration". https, except on a
	// loopback address (for tests and local IdPs).
	Issuer string `yaml:"issuer"`
	// ClientID is Interlock's client at the IdP.
	ClientID string `yaml:"client_id"`
	// ClientSecret is a reference, never the secret itself:
	// "env:NAME" (an environment variable of `serve`) or "secret:PATH"
	// (an Interlock secret, `interlock secret put PATH`), read when a
	// sign-in needs it.
	ClientSecret string `yaml:"client_secret"`
	// Audiences are the ID token audiences accepted; empty means just
	// ClientID. A token must name at least one of them.
	Audiences []string `yaml:"audiences"`
	// Scopes requested beside "openid"; empty means profile, email, groups.
	Scopes []string `yaml:"scopes"`
	// UsernameClaim names a new person (default preferred_username, then
	// email). It never finds an existing person: (issuer, sub) does.
	UsernameClaim string `yaml:"username_claim"`
	// MFAMethods are the amr values that count as a fresh second factor
	// at auth_time; empty means mfa, otp, hwk, swk, fpt, face, iris, sms.
	MFAMethods []string `yaml:"mfa_amr"`
	// MFAACRs are acr values that count as multi-factor too.
	MFAACRs []string `yaml:"mfa_acr"`
	// SessionTTL caps the sessions this issuer's sign-ins mint (0: serve's
	// session_ttl). Roles follow the IdP's groups only at sign-in, so a
	// shorter session makes a removal from a group bite sooner.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// Roles map claims to roles. A person holds every role whose rule
	// matches at sign-in, and nothing else: roles follow the IdP's groups.
	Roles []SSORoleRule `yaml:"role_rules"`
}

// SSORoleRule gives Role to a person whose claim Claim equals Value, or,
// for a list claim such as groups, contains it.
type SSORoleRule struct {
	Claim string `yaml:"claim"`
	Value string `yaml:"value"`
	Role  string `yaml:"role"`
}

var ssoNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

var ssoRoles = []string{"viewer", "operator", "approver", "admin"}

func validateSSO(issuers []SSOIssuer) []error {
	var errs []error
	seen := map[string]bool{}
	for i, is := range issuers {
		where := fmt.Sprintf("sso[%d] (%s)", i, is.Name)
		if !ssoNameRE.MatchString(is.Name) {
			errs = append(errs, fmt.Errorf("%s: name must be 1 to 64 letters, digits, '-' or '_'", where))
		}
		if seen[is.Name] {
			errs = append(errs, fmt.Errorf("%s: the name is used twice", where))
		}
		seen[is.Name] = true
		if u, err := url.Parse(is.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname()))) {
			errs = append(errs, fmt.Errorf("%s: issuer %q must be an https:// URL (http:// only on a loopback address)", where, is.Issuer))
		}
		if is.ClientID == "" {
			errs = append(errs, fmt.Errorf("%s: client_id is required", where))
		}
		if !strings.HasPrefix(is.ClientSecret, "env:") && !strings.HasPrefix(is.ClientSecret, "secret:") ||
			len(is.ClientSecret) <= len("env:") {
			errs = append(errs, fmt.Errorf("%s: client_secret must be a reference, env:NAME or secret:PATH, never the secret itself", where))
		}
		if is.SessionTTL < 0 || is.SessionTTL > 0 && is.SessionTTL < 5*time.Minute {
			errs = append(errs, fmt.Errorf("%s: session_ttl %s must be 0 (serve's session_ttl) or at least 5m", where, is.SessionTTL))
		}
		if len(is.Roles) == 0 {
			errs = append(errs, fmt.Errorf("%s: role_rules is empty, so nobody could sign in through it", where))
		}
		for j, r := range is.Roles {
			if r.Claim == "" || r.Value == "" || !slices.Contains(ssoRoles, r.Role) {
				errs = append(errs, fmt.Errorf("%s: role_rules[%d] needs a claim, a value and a role (one of %s)", where, j, strings.Join(ssoRoles, ", ")))
			}
		}
	}
	return errs
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
