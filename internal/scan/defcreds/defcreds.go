// Package defcreds finds vendor default credentials — admin/admin,
// guest/guest, minioadmin, root with an empty password — in the products'
// own configuration files (docker-compose, Kubernetes manifests, .env,
// grafana.ini, tomcat-users.xml, application.properties/yml, my.cnf,
// redis.conf, rabbitmq.conf) and in connection strings anywhere.
//
// Secret scanners miss these by design (entropy filters discard "admin");
// here the bundled list (defaults.yaml, each entry with its source) is
// matched against the keys that configure each product.
package defcreds

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
)

//go:embed defaults.yaml
var bundled []byte

// Default is one vendor default account.
type Default struct {
	Product      string   `yaml:"product"`
	User         string   `yaml:"user"`
	Password     string   `yaml:"password"`
	Source       string   `yaml:"source"`
	UserKeys     []string `yaml:"user_keys"`
	PasswordKeys []string `yaml:"password_keys"`
	Schemes      []string `yaml:"schemes"`
	// ruleID overrides the rule id derived from Product (for findings of
	// the vendor list, whose Product names several products).
	ruleID string
}

// Pair is a user/password pair that is a default for many products.
type Pair struct {
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// SSHKey is a published SSH key pair whose public key must never be
// authorized.
type SSHKey struct {
	Product string `yaml:"product"`
	Comment string `yaml:"comment"`
	Prefix  string `yaml:"prefix"`
	Source  string `yaml:"source"`
}

// List is the decoded defaults file.
type List struct {
	Defaults     []Default `yaml:"defaults"`
	SSHKeys      []SSHKey  `yaml:"ssh_keys"`
	GenericPairs []Pair    `yaml:"generic_pairs"`
	// Vendors is the public vendor list (vendors.csv): user/password
	// pairs matched wherever a user and a password are set together.
	Vendors []VendorPair `yaml:"-"`
}

// Bundled returns the list shipped with interlock.
func Bundled() (*List, error) {
	var l List
	dec := yaml.NewDecoder(bytes.NewReader(bundled))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("decode default credentials: %w", err)
	}
	for i, d := range l.Defaults {
		if d.Product == "" || d.Source == "" {
			return nil, fmt.Errorf("default credential %d: product and source are required", i)
		}
	}
	v, err := Vendors()
	if err != nil {
		return nil, err
	}
	l.Vendors = v
	return &l, nil
}

// Detector is a [scan.Detector] for default credentials.
type Detector struct {
	list    *List
	vendors vendorIndex
	// values are the passwords a finding can hold: a file whose password
	// settings hold none of them needs no parsing.
	values map[string]bool
	// emptyUsers are the accounts whose default password is empty.
	emptyUsers [][]byte
}

// New returns a detector over list.
func New(list *List) *Detector {
	d := &Detector{list: list, vendors: newVendorIndex(list.Vendors), values: map[string]bool{}}
	for _, def := range list.Defaults {
		d.values[def.Password] = true
		if def.Password == "" && def.User != "" {
			d.emptyUsers = append(d.emptyUsers, []byte(def.User))
		}
	}
	for _, p := range list.GenericPairs {
		d.values[p.Password] = true
		if p.Password == "" {
			d.emptyUsers = append(d.emptyUsers, []byte(p.User))
		}
	}
	for _, p := range list.Vendors {
		d.values[p.Password] = true
	}
	return d
}

// Name implements [scan.Detector].
func (d *Detector) Name() string { return "default-credentials" }

// kv is one configuration setting.
type kv struct {
	key, value string
	off        int    // byte offset of the value (or key) in the file
	group      string // settings in one group configure one thing
}

// Detect implements [scan.Detector].
func (d *Detector) Detect(ctx context.Context, f *scan.File, emit func(scan.Finding)) error {
	name := strings.ToLower(path.Base(f.Path))
	if i := strings.LastIndexByte(name, '!'); i >= 0 {
		name = name[i+1:]
	}
	var kvs []kv
	configures := mayConfigure(f.Data)
	switch {
	case name == "authorized_keys" || name == "authorized_keys2":
		d.authorizedKeys(f, emit)
	case !configures:
	case name == "tomcat-users.xml":
		d.tomcat(f, emit)
	case strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml"):
		if d.worthParsing(f.Data) {
			kvs = yamlKVs(f.Data)
		}
	case name == ".env" || strings.HasPrefix(name, ".env.") || strings.HasSuffix(name, ".env") ||
		strings.HasSuffix(name, ".properties") || strings.HasSuffix(name, ".ini") || strings.HasSuffix(name, ".cnf") ||
		strings.HasSuffix(name, ".conf") || strings.HasSuffix(name, ".cfg") || name == "dockerfile" || strings.HasSuffix(name, ".dockerfile"):
		kvs = lineKVs(f.Data, strings.HasSuffix(name, ".properties"))
	}
	if len(kvs) > 0 {
		d.matchKVs(f, kvs, emit)
	}
	if !isTestCode(f.Path) { // connection strings in test code are fixtures
		d.urls(f, emit)
		if configures {
			d.connectionStrings(f, emit)
		}
	}
	if deviceConfig(f.Data) && !isDoc(f.Path) {
		d.devices(f, emit)
	}
	return nil
}

// keyIs reports whether key is want or ends with "."+want. Upper-case
// entries are environment variable names and match case-sensitively;
// others (ini and properties keys) match in any case.
func keyIs(key, want string) bool {
	if len(key) < len(want) {
		return false
	}
	tail := key[len(key)-len(want):]
	eq := strings.EqualFold(tail, want)
	if !hasLowerASCII(want) {
		eq = tail == want
	}
	return eq && (len(key) == len(want) || key[len(key)-len(want)-1] == '.')
}

// hasLowerASCII reports whether s has a lower-case ASCII letter (without
// allocating, unlike comparing with strings.ToUpper: keyIs runs for every
// setting of every file).
func hasLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'a' && s[i] <= 'z' {
			return true
		}
	}
	return false
}

// mayConfigure reports whether data can hold a setting this detector
// matches: every password key it knows names a password, a passphrase, a
// secret or an auth setting. Most files of a tree hold none, and parsing
// them (YAML above all) was most of this detector's cost.
func mayConfigure(data []byte) bool {
	for _, w := range settingWords {
		for _, v := range w {
			if bytes.Contains(data, v) {
				return true
			}
		}
	}
	return false
}

// settingWords are the words of mayConfigure, each as written in
// lower-case keys, upper-case environment variables and camelCase.
var settingWords = func() [][3][]byte {
	var out [][3][]byte
	for _, w := range []string{"pass", "pwd", "secret", "auth"} {
		out = append(out, [3][]byte{[]byte(w), []byte(strings.ToUpper(w)), []byte(strings.ToUpper(w[:1]) + w[1:])})
	}
	return out
}()

func (d *Detector) report(f *scan.File, off int, def *Default, user, pass, key string, emit func(scan.Finding)) {
	fd := f.NewFinding(off)
	fd.Kind = scan.KindDefaultCred
	fd.Severity = scan.SeverityHigh
	product := "generic"
	if def != nil {
		product = def.Product
		fd.RuleID = "default-credential/" + slug(def.Product)
		if def.ruleID != "" {
			fd.RuleID = def.ruleID
		}
	} else {
		fd.RuleID = "default-credential/generic"
	}
	shown := "(empty)"
	if pass != "" {
		shown = scan.Redact(pass)
	}
	fd.Match = fmt.Sprintf("%s / %s", user, shown)
	fd.Fingerprint = scan.Fingerprint("defcred\x00" + user + "\x00" + pass + "\x00" + key)
	if pass == "" {
		fd.Severity = scan.SeverityCritical
		fd.Message = fmt.Sprintf("%s account %q has an empty password", product, user)
	} else {
		fd.Message = fmt.Sprintf("%s account %q uses a well-known default password", product, user)
	}
	if def != nil {
		fd.Message += " (source: " + def.Source + ")"
	}
	fd.Fix = "Set a unique, generated password (from a secret store, not the file) and rotate it where it is already deployed."
	emit(fd)
}

func slug(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// matchKVs checks settings against the product list and generic pairs.
func (d *Detector) matchKVs(f *scan.File, kvs []kv, emit func(scan.Finding)) {
	groups := map[string][]kv{}
	var order []string
	for _, s := range kvs {
		if _, ok := groups[s.group]; !ok {
			order = append(order, s.group)
		}
		groups[s.group] = append(groups[s.group], s)
	}
	// In a Helm chart's values, an empty password asks the chart to
	// generate one: it is not an account without a password.
	generates := isHelmValues(f.Path)
	for _, g := range order {
		set := groups[g]
		reported := map[int]bool{}
		find := func(keys []string) (kv, bool) {
			for _, s := range set {
				for _, k := range keys {
					if keyIs(s.key, k) {
						return s, true
					}
				}
			}
			return kv{}, false
		}
		// Special cases that mean "no password at all".
		for _, s := range set {
			v := strings.ToLower(s.value)
			switch {
			case keyIs(s.key, "MYSQL_ALLOW_EMPTY_PASSWORD") || keyIs(s.key, "MARIADB_ALLOW_EMPTY_ROOT_PASSWORD"):
				if v == "yes" || v == "true" || v == "1" {
					d.report(f, s.off, &Default{Product: "MySQL", Source: "https://hub.docker.com/_/mysql (MYSQL_ALLOW_EMPTY_PASSWORD)"}, "root", "", s.key, emit)
					reported[s.off] = true
				}
			case keyIs(s.key, "POSTGRES_HOST_AUTH_METHOD") && v == "trust":
				d.report(f, s.off, &Default{Product: "PostgreSQL", Source: "https://hub.docker.com/_/postgres (POSTGRES_HOST_AUTH_METHOD=trust disables passwords)"}, "postgres", "", s.key, emit)
				reported[s.off] = true
			case keyIs(s.key, "ALLOW_EMPTY_PASSWORD") && (v == "yes" || v == "true"):
				d.report(f, s.off, &Default{Product: "Bitnami image", Source: "https://github.com/bitnami/containers (ALLOW_EMPTY_PASSWORD)"}, "default", "", s.key, emit)
				reported[s.off] = true
			}
		}
		for i := range d.list.Defaults {
			def := &d.list.Defaults[i]
			if len(def.PasswordKeys) == 0 {
				continue
			}
			pw, ok := find(def.PasswordKeys)
			if !ok || reported[pw.off] || pw.value != def.Password || pw.value == "" && generates {
				continue
			}
			if def.Password == "" && !keyIs(pw.key, "password") && !strings.Contains(strings.ToLower(pw.key), "password") {
				continue
			}
			user := def.User
			if u, ok := find(def.UserKeys); ok {
				if !strings.EqualFold(u.value, def.User) {
					continue
				}
				user = u.value
			} else if def.Password == "" {
				continue // an empty password alone is not enough: whose?
			}
			reported[pw.off] = true
			d.report(f, pw.off, def, user, pw.value, pw.key, emit)
		}
		// Generic pairs: XX_USER next to XX_PASSWORD (not in documentation).
		for _, pw := range set {
			if isDoc(f.Path) {
				break
			}
			if reported[pw.off] || pw.value == "" && generates {
				continue
			}
			pfx, ok := cutLastWord(pw.key, passwordWords)
			if !ok {
				continue
			}
			for _, u := range set {
				upfx, ok := cutLastWord(u.key, userWords)
				if !ok || !strings.EqualFold(upfx, pfx) {
					continue
				}
				if def, ok := d.knownPair(u.value, pw.value); ok {
					reported[pw.off] = true
					d.report(f, pw.off, def, u.value, pw.value, pw.key, emit)
				}
				break
			}
		}
	}
}

// knownPair reports whether user/password is a generic weak default
// (def nil) or a pair the vendor list names (def says whose).
func (d *Detector) knownPair(user, password string) (*Default, bool) {
	if slices.ContainsFunc(d.list.GenericPairs, func(p Pair) bool { return strings.EqualFold(p.User, user) && p.Password == password }) {
		return nil, true
	}
	if password == "" {
		return nil, false
	}
	if products, ok := d.vendors.products(user, password); ok {
		return &Default{Product: products, Source: vendorSource + products, ruleID: "default-credential/vendor-list"}, true
	}
	return nil, false
}

var (
	passwordWords = []string{"password", "pass", "passwd", "pwd"}
	userWords     = []string{"user", "username", "login", "user_name", "usr"}
)

// cutLastWord splits key before its last word if that word is in words.
func cutLastWord(key string, words []string) (string, bool) {
	i := strings.LastIndexAny(key, "._-")
	last := key[i+1:]
	for _, w := range words {
		if strings.EqualFold(last, w) {
			if i < 0 {
				return "", true
			}
			return key[:i], true
		}
	}
	// camelCase: dbPassword, adminUser
	for _, w := range words {
		if len(key) > len(w) && strings.EqualFold(key[len(key)-len(w):], w) {
			c := key[len(key)-len(w)]
			if c >= 'A' && c <= 'Z' {
				return key[:len(key)-len(w)], true
			}
		}
	}
	return "", false
}

var tomcatUserRe = regexp.MustCompile(`<user\b[^>]*>`)
var xmlAttrRe = regexp.MustCompile(`\b(username|name|password)\s*=\s*"([^"]*)"`)

// tomcat checks <user username=… password=…> entries of tomcat-users.xml,
// outside XML comments.
func (d *Detector) tomcat(f *scan.File, emit func(scan.Finding)) {
	data := f.Data
	comments := commentSpans(data)
	for _, m := range tomcatUserRe.FindAllIndex(data, -1) {
		if inSpans(comments, m[0]) {
			continue
		}
		var user, pass string
		passOff := m[0]
		for _, a := range xmlAttrRe.FindAllSubmatchIndex(data[m[0]:m[1]], -1) {
			k, v := string(data[m[0]+a[2]:m[0]+a[3]]), string(data[m[0]+a[4]:m[0]+a[5]])
			if k == "password" {
				pass, passOff = v, m[0]+a[4]
			} else {
				user = v
			}
		}
		for i := range d.list.Defaults {
			def := &d.list.Defaults[i]
			if def.Product == "Apache Tomcat" && def.User == user && def.Password == pass {
				d.report(f, passOff, def, user, pass, "tomcat-users.xml", emit)
				break
			}
		}
	}
}

func commentSpans(data []byte) [][2]int {
	var spans [][2]int
	off := 0
	for {
		i := bytes.Index(data[off:], []byte("<!--"))
		if i < 0 {
			return spans
		}
		s := off + i
		j := bytes.Index(data[s:], []byte("-->"))
		if j < 0 {
			return append(spans, [2]int{s, len(data)})
		}
		spans = append(spans, [2]int{s, s + j + 3})
		off = s + j + 3
	}
}

func inSpans(spans [][2]int, off int) bool {
	for _, s := range spans {
		if off >= s[0] && off < s[1] {
			return true
		}
	}
	return false
}

var urlCredRe = regexp.MustCompile(`\b([a-zA-Z][a-zA-Z0-9+.:]{1,30})://([^:@/\s"'<>]{0,64})(?::([^@/\s"'<>]{0,64}))?@[A-Za-z0-9.\-\[\]]+`)

// urls checks user:password@ in URLs against defaults for the scheme and
// generic pairs.
func (d *Detector) urls(f *scan.File, emit func(scan.Finding)) {
	data := f.Data
	sep := []byte("://")
	for off := 0; ; {
		i := bytes.Index(data[off:], sep)
		if i < 0 {
			return
		}
		i += off
		off = i + len(sep)
		// Only URLs with userinfo matter: look for '@' before the path.
		end := min(len(data), off+140)
		if j := bytes.IndexAny(data[off:end], "@/ \t\n\"'<>"); j < 0 || data[off+j] != '@' {
			continue
		}
		ws := max(0, i-32)
		if k := bytes.LastIndexAny(data[ws:i], " \t\n\"'=(,<>`"); k >= 0 {
			ws += k + 1
		}
		d.url(f, data, ws, min(len(data), off+200), emit)
	}
}

// url checks the first URL with credentials in data[ws:we].
func (d *Detector) url(f *scan.File, data []byte, ws, we int, emit func(scan.Finding)) {
	for _, m := range urlCredRe.FindAllSubmatchIndex(data[ws:we], 1) {
		for i := range m {
			if m[i] >= 0 {
				m[i] += ws
			}
		}
		scheme := strings.ToLower(string(data[m[2]:m[3]]))
		user := string(data[m[4]:m[5]])
		hasPass := m[6] >= 0
		pass := ""
		off := m[4]
		if hasPass {
			pass = string(data[m[6]:m[7]])
			off = m[6]
		}
		if strings.ContainsAny(user, "${}%") || strings.ContainsAny(pass, "${}%<>") {
			continue
		}
		if user == "" && !hasPass {
			continue
		}
		var hit *Default
		for i := range d.list.Defaults {
			def := &d.list.Defaults[i]
			if !slices.Contains(def.Schemes, scheme) {
				continue
			}
			// redis://:pass@host authenticates the default user.
			if (strings.EqualFold(def.User, user) || user == "" && def.User == "default") && def.Password == pass && (hasPass || def.Password == "") {
				hit = def
				break
			}
		}
		isDB := slices.ContainsFunc(d.list.Defaults, func(def Default) bool { return def.Password == "" && slices.Contains(def.Schemes, scheme) })
		if hit != nil {
			if !hasPass && !isDB {
				continue
			}
			d.report(f, off, hit, user, pass, scheme, emit)
			continue
		}
		if !hasPass {
			continue
		}
		if pass == "" && !isDB {
			continue
		}
		// user:password@ in documentation is the textbook placeholder;
		// only product defaults count there.
		if isDoc(f.Path) {
			continue
		}
		if def, ok := d.knownPair(user, pass); ok {
			d.report(f, off, def, user, pass, scheme, emit)
		}
	}
}

// isHelmValues reports whether p is a Helm chart's values file.
func isHelmValues(p string) bool {
	b := strings.ToLower(path.Base(p))
	return b == "values.yaml" || b == "values.yml" || strings.HasPrefix(b, "values-") && (strings.HasSuffix(b, ".yaml") || strings.HasSuffix(b, ".yml"))
}

// isDoc reports whether a path is documentation.
func isDoc(p string) bool {
	lp := strings.ToLower(p)
	for _, s := range []string{".md", ".rst", ".adoc", "/docs/", "readme"} {
		if strings.Contains(lp, s) || strings.HasPrefix(lp, "docs/") {
			return true
		}
	}
	return false
}

// authorizedKeys flags published insecure keys in authorized_keys files.
func (d *Detector) authorizedKeys(f *scan.File, emit func(scan.Finding)) {
	off := 0
	for _, line := range bytes.SplitAfter(f.Data, []byte("\n")) {
		t := string(bytes.TrimSpace(line))
		for _, k := range d.list.SSHKeys {
			if t == "" || strings.HasPrefix(t, "#") {
				break
			}
			if (k.Comment != "" && strings.HasSuffix(t, k.Comment)) || (k.Prefix != "" && strings.Contains(t, k.Prefix)) {
				fd := f.NewFinding(off)
				fd.Kind = scan.KindDefaultCred
				fd.RuleID = "default-credential/" + slug(k.Product) + "-ssh-key"
				fd.Severity = scan.SeverityCritical
				fd.Match = k.Product + " insecure public key"
				fd.Fingerprint = scan.Fingerprint("sshkey\x00" + t)
				fd.Message = fmt.Sprintf("the %s insecure SSH key is authorized; its private key is public (source: %s)", k.Product, k.Source)
				fd.Fix = "Remove this line from authorized_keys and authorize a key generated for this host."
				emit(fd)
				break
			}
		}
		off += len(line)
	}
}

// isTestCode reports whether p is test source code.
func isTestCode(p string) bool {
	lp := strings.ToLower(p)
	for _, s := range []string{"_test.go", ".test.js", ".test.ts", ".spec.js", ".spec.ts", "_test.py", "test_", "_spec.rb"} {
		if strings.Contains(path.Base(lp), s) {
			return true
		}
	}
	return false
}
