package secrets

import (
	"bytes"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/interlock-dev/interlock/internal/scan"
)

// secretWords are the words of an identifier that make it a credential
// name; "key" counts only after one of keyQualifiers.
var secretWords = map[string]bool{
	"password": true, "passwd": true, "pwd": true, "pass": true, "passphrase": true, "secret": true,
	"token": true, "apikey": true, "credential": true, "credentials": true, "pw": true, "auth": true,
}

var keyQualifiers = map[string]bool{
	"api": true, "access": true, "secret": true, "private": true, "auth": true, "signing": true,
	"encryption": true, "master": true, "client": true, "app": true, "license": true, "service": true,
}

// nonSecretSuffixes end identifiers that name something about a secret
// rather than the secret itself.
var nonSecretSuffixes = map[string]bool{
	"file": true, "path": true, "dir": true, "env": true, "name": true, "length": true, "len": true, "min": true,
	"max": true, "policy": true, "field": true, "url": true, "uri": true, "endpoint": true, "id": true, "type": true,
	"hint": true, "regex": true, "pattern": true, "label": true, "prompt": true, "header": true, "param": true,
	"enabled": true, "required": true, "expiry": true, "expires": true, "expiration": true, "ttl": true, "timeout": true,
	"count": true, "size": true, "format": true, "mode": true, "hash": true, "digest": true, "salt": true,
	"version": true, "ref": true, "key": false, "arn": true, "location": true, "source": true, "provider": true,
	"method": true, "validator": true, "strength": true, "reset": true, "changed": true, "at": true, "index": true,
	"kind": true, "placeholder": true, "help": true, "description": true, "error": true, "message": true, "msg": true,
	"var": true, "variable": true, "secret_name": true, "store": true, "manager": true, "class": true, "bytes": true,
}

// valueSuffixes may follow the credential word in a key that still names
// the credential itself: api_token_prod, db_password_b64.
var valueSuffixes = map[string]bool{
	"key": true, "value": true, "val": true, "str": true, "string": true, "b64": true, "base64": true, "hex": true,
	"raw": true, "plain": true, "plaintext": true, "prod": true, "production": true, "dev": true, "staging": true,
	"live": true, "secret": true, "token": true, "pass": true, "pwd": true, "password": true, "1": true, "2": true,
	"v1": true, "v2": true, "old": true, "new": true, "current": true, "primary": true, "secondary": true, "data": true,
}

// nonValues are literal values that are never secrets.
var nonValues = map[string]bool{
	"string": true, "str": true, "bool": true, "boolean": true, "true": true, "false": true, "null": true,
	"none": true, "nil": true, "undefined": true, "required": true, "optional": true, "int": true, "integer": true,
	"text": true, "password": true, "secret": true, "token": true, "empty": true, "hidden": true, "masked": true,
	"omitted": true, "notset": true, "not_set": true, "unset": true, "default": true, "value": true, "env": true,
	"your_password": true, "mypassword": true, "pass": true, "pwd": true, "passwd": true, "user": true, "username": true, "secretkey": true, "apikey": true, "api_key": true, "yes": true, "no": true,
}

// codeExts are file types in which an unquoted value is code, not a literal.
var codeExts = map[string]bool{
	".go": true, ".py": true, ".js": true, ".mjs": true, ".cjs": true, ".ts": true, ".tsx": true, ".jsx": true,
	".java": true, ".kt": true, ".scala": true, ".rb": true, ".cs": true, ".php": true, ".rs": true, ".c": true,
	".h": true, ".cc": true, ".cpp": true, ".hpp": true, ".swift": true, ".m": true, ".lua": true, ".pl": true,
	".dart": true, ".groovy": true, ".s": true, ".asm": true, ".vue": true, ".svelte": true, ".ex": true, ".exs": true, ".r": true,
}

var (
	testishKey  = regexp.MustCompile(`(?i)(fake|dummy|mock|test|example|sample|stub)`)
	weakWords   = []string{"password", "passwd", "secret", "admin", "changeme", "qwerty", "letmein", "welcome", "default", "test", "example", "sample", "12345"}
	hexRe       = regexp.MustCompile(`^[0-9a-fA-F]{32,}$`)
	uuidRe      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	cryptHashRe = regexp.MustCompile(`^\$(?:2[abxy]?|5|6|argon2(?:id|i|d)|pbkdf2[-\w]*|scrypt|y)\$`)
)

// splitIdent splits an identifier into lower-case words at _ - . and
// camelCase boundaries.
func splitIdent(s string) []string {
	var words []string
	var cur []rune
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '_' || r == '-' || r == '.' || r == ' ' || r == '[' || r == ']' || r == '"' || r == '\'':
			if len(cur) > 0 {
				words = append(words, strings.ToLower(string(cur)))
				cur = cur[:0]
			}
		case unicode.IsUpper(r) && len(cur) > 0 && (unicode.IsLower(cur[len(cur)-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])):
			words = append(words, strings.ToLower(string(cur)))
			cur = append(cur[:0], r)
		default:
			cur = append(cur, r)
		}
	}
	if len(cur) > 0 {
		words = append(words, strings.ToLower(string(cur)))
	}
	return words
}

// isSecretName reports whether an identifier names a credential.
func isSecretName(key string) (bool, string) {
	words := splitIdent(key)
	if len(words) == 0 {
		return false, "no key name"
	}
	found := -1
	for i, w := range words {
		if t := strings.TrimRight(w, "0123456789"); t != "" {
			w = t // bot_token2, password1
		}
		if secretWords[w] || (w == "key" && i > 0 && keyQualifiers[words[i-1]]) || w == "apikey" {
			found = i
		}
	}
	if found < 0 {
		return false, "key name " + key + " does not name a credential"
	}
	last := words[len(words)-1]
	for _, w := range words[found+1:] {
		if !valueSuffixes[w] && strings.Trim(w, "0123456789") != "" {
			return false, "key name " + key + " names something about a credential (" + last + "), not the credential"
		}
	}
	return true, ""
}

// genericContext decides whether a generic assignment candidate is a leak;
// it returns the reason to drop it, or "".
func genericContext(f *scan.File, r *Rule, a assignment, value string, vs, me int) string {
	key := a.key
	lk := strings.ToLower(key)
	if !slices.ContainsFunc(r.Keywords, func(k string) bool { return strings.Contains(lk, k) }) {
		return "key name " + key + " has none of the rule's keywords"
	}
	v := strings.TrimSpace(value)
	quoted := a.quote != 0
	switch {
	case a.op == ",":
		if strings.TrimPrefix(a.keyCloser, `\`) != `"` && a.keyCloser != "'" || !quoted {
			return "a list or call whose key and value are not both string literals"
		}
	case strings.HasSuffix(a.op, "\n"):
		// <apiToken>\n  value\n</apiToken>: the value must close the element.
		rest := strings.TrimLeft(string(f.Data[me:min(len(f.Data), me+64)]), " \t\r\n")
		if a.keyCloser != ">" || !strings.HasPrefix(rest, "</") || vs < 2 {
			return "a name on one line and a value on the next outside an XML element"
		}
	case a.op == "||":
		if !quoted {
			return "a fallback expression, not a literal"
		}
	}
	if a.quote == '`' && isDocPath(f.Path) {
		return "inline code in prose (documentation), not an assignment"
	}
	if quoted && strings.Contains(v, "{") && fStringPrefix(f.Data, vs) {
		return "an f-string or template literal interpolates its value ({…}), computed at run time"
	}
	if !quoted && isIdentExpr(v) && codeExts[fileExt(f.Path)] {
		return "value is a code expression, not a literal"
	}
	if r.valueRe != nil {
		if !slices.ContainsFunc(r.Keywords, func(k string) bool { return keywordAtWordStart(key, k) }) {
			return "the provider name in key " + key + " is part of another word"
		}
		if !r.valueRe.MatchString(v) {
			return "value does not have the shape of a " + r.Name
		}
	} else if ok, why := isSecretName(key); !ok {
		return why
	}
	if insideString(f.Data, vs, key) {
		return "the assignment is itself inside a quoted string (text, not code)"
	}
	if insideTemplateAction(f.Data, vs) {
		return "an assignment inside a template action ({{ $x := … }}), computed when the template renders"
	}
	if a.op == "," && !looksGenerated(v) {
		return "a list or call argument that does not look generated"
	}
	if r.valueRe == nil && !isPasswordKey(key) && isPhrase(v) {
		return "value is a name made of words (" + v + "), not a generated secret"
	}
	if t := decodeB64([]byte(v)); len(v) >= 12 && t != nil && len(t) >= 6 && placeholder(string(t), true) != "" {
		return "value is base64 of a placeholder (" + string(t) + ")"
	}
	if i := slices.IndexFunc(splitIdent(key), func(w string) bool { return negatedWords[w] }); i >= 0 {
		return "key name " + key + " marks the value as not a real credential (" + splitIdent(key)[i] + ")"
	}
	if why := reference(v); why != "" {
		return why
	}
	if strings.HasPrefix(v, "AIza") {
		if why := firebaseClientKey(f, vs); why != "" {
			return why
		}
	}
	low := strings.ToLower(v)
	if lineLen(f.Data, vs) > 1000 || strings.Contains(path.Base(f.Path), ".min.") {
		return "minified or generated code"
	}
	// What follows the separator: a comparison is not an assignment.
	if strings.HasPrefix(v, "+") || strings.HasSuffix(v, "+") {
		return "string concatenation, not a literal"
	}
	if isDocPath(f.Path) && hexRe.MatchString(v) {
		return "hex test vector in a test or documentation file"
	}
	if strings.HasPrefix(v, "`") {
		return "inline code in prose (documentation), not an assignment"
	}
	if strings.HasPrefix(v, "=") || strings.HasPrefix(v, "~") {
		return "comparison, not an assignment"
	}
	if a.op == ":" && vs > 0 && vs <= len(f.Data) && f.Data[vs-1] == ':' && !quoted {
		return "key:value without a space is a reference or URI, not an assignment"
	}
	if len(v) < 6 {
		return "value shorter than 6 characters"
	}
	if len(v) > 300 {
		return "value longer than 300 characters (data, not a credential)"
	}
	if nonValues[low] || nonValues[strings.Trim(low, "<>[]{}()")] {
		return "value " + v + " is a type name or keyword"
	}
	lastSeg := key[strings.LastIndexAny(key, ".-")+1:]
	if strings.EqualFold(strings.ReplaceAll(v, "_", ""), strings.ReplaceAll(key, "_", "")) || strings.EqualFold(v, lastSeg) {
		return "value repeats the key name"
	}
	if strings.ContainsAny(v, " \t") && !looksGenerated(v) {
		return "prose, not a credential (a value with spaces that does not look generated)"
	}
	if strings.ContainsAny(v, "()") && isIdentExpr(v) {
		return "value is a function call"
	}
	for _, p := range []string{"process.env", "os.environ", "os.getenv", "getenv(", "env[", "env.", "vault:", "secret:", "ssm:", "arn:aws", "secretsmanager", "keyvault", "valuefrom", "secretkeyref", "!ref", "!sub", "!getatt", "lookup("} {
		if strings.Contains(low, p) {
			return "value is a reference to a secret store or the environment"
		}
	}
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "~/") || strings.HasPrefix(v, "../") ||
		strings.HasSuffix(low, ".pem") || strings.HasSuffix(low, ".key") || strings.HasSuffix(low, ".txt") || strings.HasSuffix(low, ".json") ||
		strings.HasSuffix(low, ".yaml") || strings.HasSuffix(low, ".yml") || strings.HasSuffix(low, ".crt") || strings.HasSuffix(low, ".conf") ||
		strings.HasSuffix(low, ".p12") || strings.HasSuffix(low, ".jks") || strings.HasSuffix(low, ".properties") {
		return "value is a file path"
	}
	if (strings.HasPrefix(low, "http://") || strings.HasPrefix(low, "https://")) && !strings.Contains(v, "@") {
		return "value is a URL"
	}
	if cryptHashRe.MatchString(v) {
		return "value is a password hash, not a password"
	}
	if r.valueRe == nil && uuidRe.MatchString(v) && !strings.Contains(strings.ToLower(key), "token") && !strings.Contains(strings.ToLower(key), "secret") {
		return "value is a UUID identifier"
	}
	if hexRe.MatchString(v) && (strings.Contains(strings.ToLower(key), "hash") || strings.Contains(strings.ToLower(key), "sum")) {
		return "value is a checksum"
	}
	if e := entropy(v); e < 2.0 {
		return "value entropy " + ftoa(e) + " too low for a credential"
	}
	if !strings.ContainsFunc(v, unicode.IsLetter) && len(v) < 10 {
		return "value has no letters and is short (a number, not a secret)"
	}
	if (!looksGenerated(v) || !strings.ContainsFunc(v, unicode.IsDigit)) && (strings.Contains(low, "passw") || strings.Contains(low, "secret") ||
		strings.Contains(low, "token") || strings.Contains(low, "pwd") || slices.Contains(splitIdent(v), "pass")) {
		return "value names what it stands for (" + v + "), a stand-in rather than a credential"
	}
	if isDocPath(f.Path) && weakValue(low) {
		return "weak sample value in documentation or test file"
	}
	if isDocPath(f.Path) && !looksGenerated(v) {
		return "value in a test or documentation file does not look machine-generated (a fixture, not a leak)"
	}
	if testishKey.MatchString(key) && !looksGenerated(v) {
		return "key names a test or sample value (" + key + ") and the value is not machine-generated"
	}
	if isDocPath(f.Path) && testishKey.MatchString(key) {
		return "key names a test or sample value (" + key + ") in a test or documentation file"
	}
	return ""
}

// negatedWords, as a word of a key name, say its value is not a live
// credential: nonMatchingToken, invalid_secret, wrongPassword, publicToken,
// existingSecret (the name of a Kubernetes Secret), csrf_token.
var negatedWords = map[string]bool{
	"non": true, "invalid": true, "wrong": true, "bad": true, "fake": true, "mock": true, "dummy": true,
	"public": true, "publishable": true, "csrf": true, "xsrf": true, "existing": true,
}

// insideTemplateAction reports whether off lies inside a {{ … }} action
// opened earlier on its line.
func insideTemplateAction(data []byte, off int) bool {
	ls := bytes.LastIndexByte(data[:off], '\n') + 1
	open := bytes.LastIndex(data[ls:off], []byte("{{"))
	return open >= 0 && !bytes.Contains(data[ls+open:off], []byte("}}"))
}

// isPasswordKey reports whether a key names a password (people choose
// passwords from words; tokens and secrets are generated).
func isPasswordKey(key string) bool {
	lk := strings.ToLower(key)
	return strings.Contains(lk, "passw") || strings.Contains(lk, "pwd") || strings.Contains(lk, "passphrase")
}

// isPhrase reports whether v is two or more alphabetic words joined by
// - . or _ (grafana.local-tls, custom-CA), a name rather than a secret.
func isPhrase(v string) bool {
	segs := strings.FieldsFunc(v, func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	if len(segs) < 2 {
		return false
	}
	for _, sg := range segs {
		if len(sg) > 12 || strings.ContainsFunc(sg, func(r rune) bool { return !unicode.IsLetter(r) }) ||
			len(sg) > 3 && !strings.ContainsAny(strings.ToLower(sg), "aeiouy") {
			return false // not a word: too long, digits, or no vowel
		}
	}
	return true
}

// keywordAtWordStart reports whether kw occurs in key where a word of the
// key starts: sumo_access_id and SumoAccessId but not sumObj; etsy_token
// but not SetSysctl.
func keywordAtWordStart(key, kw string) bool {
	low := strings.ToLower(key)
	for off := 0; ; {
		i := strings.Index(low[off:], kw)
		if i < 0 {
			return false
		}
		i += off
		if i == 0 || !isLetter(key[i-1]) || key[i] >= 'A' && key[i] <= 'Z' && key[i-1] >= 'a' && key[i-1] <= 'z' {
			return true
		}
		off = i + 1
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// insideString reports whether the key before the value at vs is itself
// inside a quoted value: x = "token = \"…\"" quotes an assignment.
func insideString(data []byte, vs int, key string) bool {
	ls := bytes.LastIndexByte(data[:vs], '\n') + 1
	ks := bytes.LastIndex(data[ls:vs], []byte(key))
	if ks < 0 {
		return false
	}
	before := bytes.TrimRight(data[ls:ls+ks], " \t")
	if len(before) == 0 || before[len(before)-1] != '"' && before[len(before)-1] != '\'' {
		return false
	}
	before = bytes.TrimRight(before[:len(before)-1], " \t")
	return len(before) > 0 && before[len(before)-1] == '='
}

// Template and reference syntaxes: the value names where the secret comes
// from, not the secret.
var (
	// Helm and Go templates: {{ .Values.auth.password }}, {{- $p := … }}.
	goTemplateRe = regexp.MustCompile(`\{\{-?\s*[.$A-Za-z(]`)
	// Go/Helm template fields outside braces, as in {{- $p := .Values.x }}
	// once the tokenizer has split the action: .Values.auth.rootPassword.
	templateFieldRe = regexp.MustCompile(`^\$?\.(?:Values|Release|Chart|Capabilities|Files|Template|[A-Z]\w*)(?:\.[\w-]+)*\s*(?:\}\})?$`)
	// Terraform references: var.db_password, local.x, module.m.out,
	// data.aws_ssm_parameter.p.value.
	terraformRefRe = regexp.MustCompile(`^(?:var|local|module|data|each|count|path|terraform|self)\.[A-Za-z_][\w.\[\]"*-]*$`)
	// Placeholders in braces or shell/CI expressions: {SumoAccessKey},
	// ${DB_PASSWORD}, $(cat file), %(password)s, <password>, @Password@.
	bracePlaceholderRe = regexp.MustCompile(`^(?:\{[A-Za-z_][\w.:-]*\}?|\$\{\{?[^}]*\}\}?|\$\([^)]*\)|%\(?[A-Za-z_]\w*\)?s?%?|<[^<>]+>|@[A-Za-z_]\w*@|#\{[^}]*\})$`)
)

// reference reports why a value is a template expression, a reference or
// an encrypted value rather than a literal secret, or "".
func reference(v string) string {
	switch {
	case goTemplateRe.MatchString(v):
		return "value is a template expression ({{ … }}), rendered from elsewhere"
	case templateFieldRe.MatchString(v):
		return "value is a template field reference (" + v + ")"
	case terraformRefRe.MatchString(v):
		return "value is a Terraform reference (" + v + ")"
	case bracePlaceholderRe.MatchString(v):
		return "value is a placeholder or variable reference (" + v + ")"
	case strings.HasPrefix(v, "ENC[") || strings.HasPrefix(v, "AQICAHh") || strings.HasPrefix(v, "vault:v1:") || strings.HasPrefix(v, "$ANSIBLE_VAULT"):
		return "value is encrypted (SOPS, KMS, Vault transit or Ansible Vault), not plaintext"
	}
	return ""
}

// isDocPath reports whether a path is documentation, an example or a test.
func isDocPath(p string) bool {
	lp := strings.ToLower(p)
	for _, s := range []string{".md", ".rst", ".adoc", ".txt", "readme", "/docs/", "docs/", "example", "sample", "_test.", ".test.", "/test/", "/tests/", "testdata/", "fixtures/"} {
		if strings.Contains(lp, s) {
			return true
		}
	}
	return false
}

// weakValue reports whether a value reads like a sample (few character
// classes, dictionary-like).
func weakValue(low string) bool {
	for _, w := range weakWords {
		if strings.Contains(low, w) {
			return true
		}
	}
	var lower, digit, other bool
	for _, r := range low {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, digit, other} {
		if b {
			classes++
		}
	}
	return classes < 2 || entropy(low) < 3.0
}

// lineLen returns the length of the line containing off.
func lineLen(data []byte, off int) int {
	s, e := off, off
	for s > 0 && data[s-1] != '\n' {
		s--
	}
	for e < len(data) && data[e] != '\n' {
		e++
	}
	return e - s
}

func fileExt(p string) string {
	if i := strings.LastIndexByte(p, '!'); i >= 0 {
		p = p[i+1:]
	}
	return strings.ToLower(path.Ext(p))
}

// isIdentExpr reports whether v reads as code: an identifier path
// (a.b, a->b, a::b) optionally followed by a call or index.
func isIdentExpr(v string) bool {
	v = strings.TrimLeft(v, "*&!(")
	if v == "" {
		return false
	}
	start := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start = false
		case c >= '0' && c <= '9':
			if start {
				return false
			}
		case c == '.' || c == ':' || c == '-' && i+1 < len(v) && v[i+1] == '>':
			if start {
				return false
			}
			if c == '-' || c == ':' && i+1 < len(v) && v[i+1] == ':' {
				i++
			} else if c == ':' {
				return false
			}
			start = true
		case c == '(' || c == '[' || c == '{':
			return !start
		default:
			return false
		}
	}
	return !start
}

// looksGenerated reports whether v reads like a generated credential rather
// than a human-made fixture: high entropy, mixed character classes, not a
// phrase of words.
func looksGenerated(v string) bool {
	if entropy(v) < 3.5 || len(v) < 12 {
		return false
	}
	segs := strings.FieldsFunc(v, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' || r == ':' })
	words := 0
	for _, sg := range segs {
		if !strings.ContainsFunc(sg, func(r rune) bool { return !unicode.IsLetter(r) }) || !strings.ContainsFunc(sg, func(r rune) bool { return !unicode.IsDigit(r) }) {
			words++
		}
	}
	if len(segs) >= 2 && words == len(segs) {
		return false // a phrase such as correct-horse-battery-42
	}
	var upper, lower, digit bool
	for _, r := range v {
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
		digit = digit || unicode.IsDigit(r)
	}
	return digit && (upper || lower) || upper && lower
}

// fStringPrefix reports whether the quoted value at vs has a string prefix
// with f (Python's f"…", rf'…'), whose braces are interpolated.
func fStringPrefix(data []byte, vs int) bool {
	for i := vs - 2; i >= 0 && i >= vs-4; i-- {
		switch data[i] {
		case 'f', 'F':
			return true
		case 'r', 'R', 'b', 'B', 'u', 'U':
		default:
			return false
		}
	}
	return false
}
