package misconfig

import (
	"bytes"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

var (
	sshRootLogin     = def("sshd-permit-root-login", scan.SeverityHigh, "root can log in over SSH, so one stolen password or key owns the host", "Set PermitRootLogin no (or prohibit-password at most) and use named accounts with sudo.")
	sshPasswordAuth  = def("sshd-password-authentication", scan.SeverityMedium, "SSH accepts passwords, which can be guessed or phished", "Set PasswordAuthentication no and use keys or certificates.")
	sshEmptyPassword = def("sshd-permit-empty-passwords", scan.SeverityCritical, "SSH accepts accounts with empty passwords", "Set PermitEmptyPasswords no.")
	ngxOldTLS        = def("nginx-weak-tls-protocol", scan.SeverityHigh, "TLS 1.0/1.1 or SSL is enabled; these protocols are broken and deprecated (RFC 8996)", "Use ssl_protocols TLSv1.2 TLSv1.3;")
	ngxWeakCiphers   = def("nginx-weak-ciphers", scan.SeverityHigh, "weak ciphers (RC4, DES/3DES, MD5, NULL, EXPORT or anonymous) are enabled", "Use a modern cipher list (e.g. Mozilla 'intermediate') and exclude !aNULL:!eNULL:!EXPORT:!RC4:!DES:!3DES:!MD5.")
	ngxServerTokens  = def("nginx-server-tokens-on", scan.SeverityLow, "nginx advertises its exact version in headers and error pages", "Set server_tokens off;")
)

// Directive is one "keyword args…" line of sshd_config or nginx.conf.
type Directive struct {
	Name string
	Args []string
	Line int
	// Block is the enclosing sshd Match (or nginx block path), "" at top level.
	Block string
}

// ParseSSHD parses sshd_config. Keywords are case-insensitive and
// lower-cased; directives after a Match line carry that Match as Block.
func ParseSSHD(data []byte) []Directive {
	var out []Directive
	block := ""
	for i, raw := range bytes.Split(data, []byte("\n")) {
		t := strings.TrimSpace(string(raw))
		if t == "" || t[0] == '#' {
			continue
		}
		f := strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
		if len(f) == 0 {
			continue
		}
		name := strings.ToLower(f[0])
		if name == "match" {
			block = strings.Join(f[1:], " ")
			continue
		}
		out = append(out, Directive{Name: name, Args: f[1:], Line: i + 1, Block: block})
	}
	return out
}

// sshd applies sshd's first-value-wins rule to global directives.
func sshd(data []byte, r *reporter) {
	seen := map[string]bool{}
	for _, d := range ParseSSHD(data) {
		if len(d.Args) == 0 {
			continue
		}
		global := d.Block == ""
		if global && seen[d.Name] {
			continue // sshd uses the first value it reads
		}
		if global {
			seen[d.Name] = true
		}
		v := strings.ToLower(d.Args[0])
		subject := ""
		if !global {
			subject = "Match " + d.Block
		}
		switch {
		case d.Name == "permitrootlogin" && v == "yes":
			r.add(sshRootLogin, d.Line, "PermitRootLogin yes", subject)
		case d.Name == "passwordauthentication" && v == "yes":
			r.add(sshPasswordAuth, d.Line, "PasswordAuthentication yes", subject)
		case d.Name == "permitemptypasswords" && v == "yes":
			r.add(sshEmptyPassword, d.Line, "PermitEmptyPasswords yes", subject)
		}
	}
}

// ParseNginx tokenizes nginx configuration into directives (statements
// ending in ';'), with the enclosing block names as Block. Quotes and
// comments are honoured.
func ParseNginx(data []byte) []Directive {
	var out []Directive
	var stack []string
	var words []string
	line, startLine := 1, 0
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '\n':
			flush()
			line++
		case c == '#':
			flush()
			for i < len(data) && data[i] != '\n' {
				i++
			}
			i--
		case c == '"' || c == '\'':
			q := c
			if !inWord && len(words) == 0 {
				startLine = line
			}
			inWord = true
			for i++; i < len(data) && data[i] != q; i++ {
				if data[i] == '\\' && i+1 < len(data) {
					i++
				}
				if data[i] == '\n' {
					line++
				}
				cur.WriteByte(data[i])
			}
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == ';':
			flush()
			if len(words) > 0 && words[0] != "" {
				out = append(out, Directive{Name: words[0], Args: words[1:], Line: startLine, Block: strings.Join(stack, "/")})
			}
			words = nil
		case c == '{':
			flush()
			if len(words) > 0 {
				stack = append(stack, words[0])
			} else {
				stack = append(stack, "")
			}
			words = nil
		case c == '}':
			flush()
			words = nil
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		default:
			if !inWord && len(words) == 0 {
				startLine = line
			}
			inWord = true
			cur.WriteByte(c)
		}
	}
	return out
}

func nginx(data []byte, r *reporter) {
	for _, d := range ParseNginx(data) {
		switch d.Name {
		case "ssl_protocols":
			for _, a := range d.Args {
				if a == "TLSv1" || a == "TLSv1.1" || a == "SSLv3" || a == "SSLv2" {
					r.add(ngxOldTLS, d.Line, "ssl_protocols "+strings.Join(d.Args, " "), d.Block)
					break
				}
			}
		case "ssl_ciphers":
			if len(d.Args) > 0 && weakCipherList(d.Args[0]) {
				r.add(ngxWeakCiphers, d.Line, "ssl_ciphers "+truncate(d.Args[0], 60), d.Block)
			}
		case "server_tokens":
			if len(d.Args) > 0 && d.Args[0] == "on" {
				r.add(ngxServerTokens, d.Line, "server_tokens on", d.Block)
			}
		}
	}
}

// weakCipherList reports whether an OpenSSL cipher string enables a weak
// cipher family without excluding it.
func weakCipherList(s string) bool {
	excluded := map[string]bool{}
	for _, p := range strings.Split(s, ":") {
		if strings.HasPrefix(p, "!") || strings.HasPrefix(p, "-") {
			excluded[strings.ToUpper(p[1:])] = true
		}
	}
	for _, p := range strings.Split(s, ":") {
		if strings.HasPrefix(p, "!") || strings.HasPrefix(p, "-") {
			continue
		}
		u := strings.ToUpper(strings.TrimPrefix(p, "+"))
		for _, weak := range []string{"RC4", "DES", "3DES", "MD5", "NULL", "EXPORT", "ANULL", "ENULL", "EXP"} {
			if (u == weak || strings.Contains(u, weak+"-") || strings.Contains(u, "-"+weak) || strings.HasPrefix(u, weak)) && !excluded[weak] {
				if weak == "DES" && strings.Contains(u, "3DES") && excluded["3DES"] {
					continue
				}
				return true
			}
		}
		if u == "ALL" && !(excluded["RC4"] && excluded["ANULL"] && excluded["ENULL"]) {
			return true
		}
	}
	return false
}
