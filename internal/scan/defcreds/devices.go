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
	deviceUserRe      = regexp.MustCompile(`^[ \t]*username[ \t]+(\S+)(?:[ \t]+privilege[ \t]+\d+)?[ \t]+(?:password|secret)[ \t]+(?:0[ \t]+)?(\S+)[ \t\r]*$`)
	deviceEnableRe    = regexp.MustCompile(`^[ \t]*enable[ \t]+(?:password|secret)[ \t]+(?:level[ \t]+\d+[ \t]+)?(?:0[ \t]+)?(\S+)[ \t\r]*$`)
	deviceCommunityRe = regexp.MustCompile(`^[ \t]*snmp-server[ \t]+community[ \t]+(public|private)\b`)
)

// deviceConfig reports whether data looks like a network device's
// configuration: cheap checks first, as most files are not.
func deviceConfig(data []byte) bool {
	return bytes.Contains(data, []byte("username ")) || bytes.Contains(data, []byte("enable ")) || bytes.Contains(data, []byte("snmp-server community"))
}

// devices reports default or vendor-listed passwords in device configs.
// The patterns run only on lines that start with their command: run over
// whole files, they cost more than the rest of this detector.
func (d *Detector) devices(f *scan.File, emit func(scan.Finding)) {
	for _, cmd := range []string{"username ", "enable ", "snmp-server community "} {
		for _, start := range commandLines(f.Data, cmd) {
			_, end := lineAround(f.Data, start)
			line := f.Data[start:end]
			switch cmd {
			case "username ":
				if m := deviceUserRe.FindSubmatchIndex(line); m != nil {
					d.deviceUser(f, start, line, m, emit)
				}
			case "enable ":
				if m := deviceEnableRe.FindSubmatchIndex(line); m != nil {
					d.deviceEnable(f, start, line, m, emit)
				}
			default:
				if m := deviceCommunityRe.FindSubmatchIndex(line); m != nil {
					d.deviceCommunity(f, start+m[2], string(line[m[2]:m[3]]), emit)
				}
			}
		}
	}
}

// commandLines returns the offsets of the lines of data that start (after
// indentation) with cmd.
func commandLines(data []byte, cmd string) []int {
	var out []int
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte(cmd))
		if i < 0 {
			return out
		}
		i += off
		off = i + len(cmd)
		start, _ := lineAround(data, i)
		if len(bytes.TrimLeft(data[start:i], " \t")) == 0 {
			out = append(out, start)
		}
	}
}

func (d *Detector) deviceUser(f *scan.File, start int, line []byte, m []int, emit func(scan.Finding)) {
	user, pass := string(line[m[2]:m[3]]), string(line[m[4]:m[5]])
	if !plainDevicePassword(pass) {
		return
	}
	if def, ok := d.knownPair(user, pass); ok {
		if def == nil {
			def = &Default{Product: "network device", Source: "well-known default login", ruleID: "default-credential/network-device"}
		}
		d.report(f, start+m[4], def, user, pass, "username", emit)
	}
}

func (d *Detector) deviceEnable(f *scan.File, start int, line []byte, m []int, emit func(scan.Finding)) {
	pass := string(line[m[2]:m[3]])
	if !plainDevicePassword(pass) {
		return
	}
	// The enable secret has no user: it is a default when any vendor
	// ships it as the enable (or privileged) password.
	products, ok := d.vendors.products("enable", pass)
	if !ok && !d.vendorPassword(pass) {
		return
	}
	if !ok {
		products = "network devices"
	}
	d.report(f, start+m[2], &Default{Product: products, Source: vendorSource + products, ruleID: "default-credential/network-device"}, "enable", pass, "enable", emit)
}

func (d *Detector) deviceCommunity(f *scan.File, off int, community string, emit func(scan.Finding)) {
	fd := f.NewFinding(off)
	fd.Kind = scan.KindDefaultCred
	fd.RuleID = "default-credential/snmp-community"
	fd.Severity = scan.SeverityHigh
	fd.Match = "snmp community " + community
	fd.Fingerprint = scan.Fingerprint("snmp\x00" + community)
	fd.Message = "SNMP community " + strings.ToUpper(community[:1]) + community[1:] + " is the factory default: anyone who can reach the device can read (or, with private, change) its configuration (source: RFC 3584 §2.1 and vendors' defaults)"
	fd.Fix = "Remove the default community; use SNMPv3 with authentication and privacy, or a long random community limited by an ACL."
	emit(fd)
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
// They are found by literal search for the password setting: a
// case-insensitive regular expression over every file cost more than the
// rest of this detector.
var connPasswordKeys = [][]byte{[]byte("password="), []byte("Password="), []byte("PASSWORD="), []byte("pwd="), []byte("Pwd="), []byte("PWD=")}

var connUserKeys = []string{"user id", "userid", "uid", "user", "username", "user name"}

// connectionStrings reports default accounts in connection strings.
func (d *Detector) connectionStrings(f *scan.File, emit func(scan.Finding)) {
	data := f.Data
	for _, key := range connPasswordKeys {
		for off := 0; ; {
			i := bytes.Index(data[off:], key)
			if i < 0 {
				break
			}
			i += off
			off = i + len(key)
			if i > 0 && !bytes.ContainsAny(data[i-1:i], ";&?\"' \t") {
				continue // part of a longer key (DB_PASSWORD=)
			}
			valStart := i + len(key)
			valEnd := valStart
			for valEnd < len(data) && !bytes.ContainsAny(data[valEnd:valEnd+1], ";&\"' \t\r\n") {
				valEnd++
			}
			d.connectionString(f, valStart, valEnd, emit)
		}
	}
}

// connectionString checks the password data[valStart:valEnd] of a
// connection string against the user set on the same line.
func (d *Detector) connectionString(f *scan.File, valStart, valEnd int, emit func(scan.Finding)) {
	lineStart, lineEnd := lineAround(f.Data, valStart)
	line := f.Data[lineStart:lineEnd]
	if bytes.Count(line, []byte("=")) < 2 || !bytes.ContainsAny(line, ";&") {
		return // one key=value on a line is a setting, handled by the key/value pass
	}
	user, ok := connUser(line)
	if !ok {
		return
	}
	pass := string(f.Data[valStart:valEnd])
	if strings.ContainsAny(pass, "${}%<>") || strings.ContainsAny(user, "${}%<>") {
		return
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
			return
		}
	}
	d.report(f, valStart, def, user, pass, "connection string", emit)
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
