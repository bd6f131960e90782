package defcreds

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Network device configurations (Cisco IOS and the many CLIs that copy
// it: Arista EOS, Ruckus/Brocade, Huawei-like "local-user") set accounts
// on one line, not as key/value settings:
//
//	username admin privilege 15 password 0 cisco
//	enable password cisco
//	snmp-server community public RO
//
// Type 0 is plaintext; types 5, 7, 8 and 9 are hashes or encodings this
// detector cannot compare, so they are not reported.
var (
	deviceUserRe      = regexp.MustCompile(`(?m)^[ \t]*username[ \t]+(\S+)(?:[ \t]+privilege[ \t]+\d+)?[ \t]+(?:password|secret)[ \t]+(?:0[ \t]+)?(\S+)[ \t]*$`)
	deviceEnableRe    = regexp.MustCompile(`(?m)^[ \t]*enable[ \t]+(?:password|secret)[ \t]+(?:level[ \t]+\d+[ \t]+)?(?:0[ \t]+)?(\S+)[ \t]*$`)
	deviceCommunityRe = regexp.MustCompile(`(?m)^[ \t]*snmp-server[ \t]+community[ \t]+(public|private)\b`)
)

// deviceConfig reports whether data looks like a network device's
// configuration: cheap checks first, as most files are not.
func deviceConfig(data []byte) bool {
	return bytes.Contains(data, []byte("username ")) || bytes.Contains(data, []byte("enable ")) || bytes.Contains(data, []byte("snmp-server community"))
}

// devices reports default or vendor-listed passwords in device configs.
func (d *Detector) devices(f *scan.File, emit func(scan.Finding)) {
	for _, m := range deviceUserRe.FindAllSubmatchIndex(f.Data, -1) {
		user, pass := string(f.Data[m[2]:m[3]]), string(f.Data[m[4]:m[5]])
		if !plainDevicePassword(pass) {
			continue
		}
		if def, ok := d.knownPair(user, pass); ok {
			if def == nil {
				def = &Default{Product: "network device", Source: "well-known default login", ruleID: "default-credential/network-device"}
			}
			d.report(f, m[4], def, user, pass, "username", emit)
		}
	}
	for _, m := range deviceEnableRe.FindAllSubmatchIndex(f.Data, -1) {
		pass := string(f.Data[m[2]:m[3]])
		if !plainDevicePassword(pass) {
			continue
		}
		// The enable secret has no user: it is a default when any vendor
		// ships it as the enable (or privileged) password.
		if products, ok := d.vendors.products("enable", pass); ok || d.vendorPassword(pass) {
			if !ok {
				products = "network devices"
			}
			d.report(f, m[2], &Default{Product: products, Source: vendorSource + products, ruleID: "default-credential/network-device"}, "enable", pass, "enable", emit)
		}
	}
	for _, m := range deviceCommunityRe.FindAllSubmatchIndex(f.Data, -1) {
		community := string(f.Data[m[2]:m[3]])
		fd := f.NewFinding(m[2])
		fd.Kind = scan.KindDefaultCred
		fd.RuleID = "default-credential/snmp-community"
		fd.Severity = scan.SeverityHigh
		fd.Match = "snmp community " + community
		fd.Fingerprint = scan.Fingerprint("snmp\x00" + community)
		fd.Message = "SNMP community " + strings.ToUpper(community[:1]) + community[1:] + " is the factory default: anyone who can reach the device can read (or, with private, change) its configuration (source: RFC 3584 §2.1 and vendors' defaults)"
		fd.Fix = "Remove the default community; use SNMPv3 with authentication and privacy, or a long random community limited by an ACL."
		emit(fd)
	}
}

// plainDevicePassword reports whether p can be a plaintext password (not a
// type 5/7/8/9 hash or encoding).
func plainDevicePassword(p string) bool {
	return !strings.HasPrefix(p, "$") && p != "5" && p != "7" && p != "8" && p != "9"
}

// vendorPassword reports whether some vendor ships p as a password of a
// network device's privileged mode (user "enable" or none).
func (d *Detector) vendorPassword(p string) bool {
	for _, u := range []string{"enable", "admin", "cisco", "root"} {
		if _, ok := d.vendors.products(u, p); ok {
			return true
		}
	}
	return false
}

// Connection strings set the user and password as ;- or &-separated
// settings (ADO.NET and ODBC: "Server=db;User ID=sa;Password=;", JDBC:
// "jdbc:sqlserver://db;user=sa;password=sa", "?user=root&password=root").
var connPasswordRe = regexp.MustCompile(`(?i)(?:^|[;&?"'\s])(password|pwd)\s*=\s*([^;&"'\s]*)`)

var connUserKeys = []string{"user id", "userid", "uid", "user", "username", "user name"}

// connectionStrings reports default accounts in connection strings.
func (d *Detector) connectionStrings(f *scan.File, emit func(scan.Finding)) {
	for _, m := range connPasswordRe.FindAllSubmatchIndex(f.Data, -1) {
		lineStart, lineEnd := lineAround(f.Data, m[2])
		line := f.Data[lineStart:lineEnd]
		if bytes.Count(line, []byte("=")) < 2 || !bytes.ContainsAny(line, ";&") {
			continue // one key=value on a line is a setting, handled by the key/value pass
		}
		user, ok := connUser(line)
		if !ok {
			continue
		}
		pass := string(f.Data[m[4]:m[5]])
		if strings.ContainsAny(pass, "${}%<>") || strings.ContainsAny(user, "${}%<>") {
			continue
		}
		var def *Default
		switch {
		case pass == "" && strings.EqualFold(user, "sa"):
			def = &Default{Product: "Microsoft SQL Server", Source: "https://learn.microsoft.com/sql/relational-databases/security/choose-an-authentication-mode (the sa login must have a strong password)"}
		case pass == "" && strings.EqualFold(user, "root"):
			def = &Default{Product: "MySQL", Source: "https://dev.mysql.com/doc/refman/8.0/en/data-directory-initialization.html"}
		default:
			var known bool
			if def, known = d.knownPair(user, pass); !known || pass == "" {
				continue
			}
		}
		d.report(f, m[4], def, user, pass, "connection string", emit)
	}
}

// connUser finds the user setting of a connection string line.
func connUser(line []byte) (string, bool) {
	for _, part := range bytes.FieldsFunc(line, func(r rune) bool { return r == ';' || r == '&' || r == '?' || r == '"' || r == '\'' }) {
		k, v, ok := bytes.Cut(part, []byte("="))
		if !ok {
			continue
		}
		key := strings.ToLower(strings.TrimSpace(string(k)))
		for _, uk := range connUserKeys {
			if key == uk || strings.HasSuffix(key, " "+uk) {
				return strings.TrimSpace(string(v)), true
			}
		}
	}
	return "", false
}
