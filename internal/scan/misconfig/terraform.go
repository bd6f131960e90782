package misconfig

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Checks whose logic is more than a condition (port ranges across
// protocols) stay Go code; the rest are data in tf_aws.go, tf_google.go
// and tf_azure.go.
var (
	tfOpenAdminPort   = defRef("tf-sg-admin-port-open-to-world", "CIS AWS 5.2, AVD-AWS-0107", scan.SeverityCritical, "SSH or RDP is reachable from the whole internet (0.0.0.0/0 or ::/0)", "Restrict the source range to a bastion or VPN CIDR, or use a session manager instead of open ports.")
	tfGCPOpenFirewall = defRef("tf-gcp-firewall-admin-port-open", "CIS GCP 3.6/3.7, AVD-GCP-0070, AVD-GCP-0071", scan.SeverityCritical, "a GCP firewall rule opens SSH or RDP to the whole internet", "Restrict source_ranges, or use IAP TCP forwarding.")
	tfAzureOpenNSG    = defRef("tf-azure-nsg-admin-port-open", "CIS Azure 6.1/6.2, AVD-AZU-0048, AVD-AZU-0050", scan.SeverityCritical, "an Azure NSG rule allows SSH or RDP from the internet", "Restrict source_address_prefix to known ranges, or use Azure Bastion.")
	tfGCPPortRange    = defRef("gcp-firewall-large-port-range", "AVD-GCP-0074", scan.SeverityLow, "the firewall rule opens a range of more than 30 ports", "List the ports the service listens on.")
	tfAzureSensitive  = defRef("azure-nsg-sensitive-port", "AVD-AZU-0074", scan.SeverityHigh, "an Azure NSG rule exposes a database, file-sharing or plaintext-protocol port to the internet", "Restrict source_address_prefix, or reach the service through a private endpoint.")
	tfSQLOpenNetwork  = defRef("tf-cloudsql-open-to-world", "CIS GCP 6.5, AVD-GCP-0017", scan.SeverityHigh, "the Cloud SQL instance authorizes 0.0.0.0/0", "Remove the 0.0.0.0/0 authorized network; use private IP or the Cloud SQL proxy.")
)

// attrValue evaluates a literal attribute; ok is false for expressions
// that need variables.
func attrValue(body *hclsyntax.Body, name string) (cty.Value, *hclsyntax.Attribute, bool) {
	a, ok := body.Attributes[name]
	if !ok {
		return cty.NilVal, nil, false
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.IsKnown() || v.IsNull() {
		return cty.NilVal, a, false
	}
	return v, a, true
}

func boolAttr(body *hclsyntax.Body, name string) (val, set bool, line int) {
	v, a, ok := attrValue(body, name)
	if a != nil {
		line = a.SrcRange.Start.Line
	}
	if !ok || v.Type() != cty.Bool {
		return false, a != nil, line
	}
	return v.True(), true, line
}

func stringAttr(body *hclsyntax.Body, name string) (string, int, bool) {
	v, a, ok := attrValue(body, name)
	if !ok || v.Type() != cty.String {
		return "", 0, false
	}
	return v.AsString(), a.SrcRange.Start.Line, true
}

func stringsAttr(body *hclsyntax.Body, name string) ([]string, int) {
	v, a, ok := attrValue(body, name)
	if !ok {
		return nil, 0
	}
	if v.Type() == cty.String {
		return []string{v.AsString()}, a.SrcRange.Start.Line
	}
	if !v.CanIterateElements() {
		return nil, 0
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.IsKnown() && !e.IsNull() && e.Type() == cty.String {
			out = append(out, e.AsString())
		}
	}
	return out, a.SrcRange.Start.Line
}

func numAttr(body *hclsyntax.Body, name string) (int64, bool) {
	v, _, ok := attrValue(body, name)
	if !ok {
		return 0, false
	}
	if v.Type() == cty.String {
		var n int64
		_, err := fmt.Sscan(v.AsString(), &n)
		return n, err == nil
	}
	if v.Type() != cty.Number {
		return 0, false
	}
	n, _ := v.AsBigFloat().Int64()
	return n, true
}

func worldOpen(cidrs []string) bool {
	return slices.ContainsFunc(cidrs, func(c string) bool {
		return c == "0.0.0.0/0" || c == "::/0" || c == "*" || strings.EqualFold(c, "internet") || c == "0.0.0.0"
	})
}

func portsCoverAdmin(from, to int64) bool {
	for _, p := range []int64{22, 3389} {
		if from <= p && p <= to {
			return true
		}
	}
	return false
}

// sensitivePorts are services that must never face the internet: FTP,
// Telnet, SMTP, POP3, RPC/NetBIOS/SMB, and databases and caches.
var sensitivePorts = []int64{21, 23, 25, 110, 135, 137, 138, 139, 445, 1433, 1521, 2375, 3306, 5432, 5984, 6379, 9200, 9300, 11211, 27017}

// portSpecCovers reports the first of ports that the port specs cover; "*"
// covers none of them on purpose (a wildcard is reported as an admin-port
// finding already).
func portSpecCovers(specs []string, ports []int64) (int64, bool) {
	for _, s := range specs {
		lo, hi, found := strings.Cut(s, "-")
		var a, b int64
		if _, err := fmt.Sscan(lo, &a); err != nil {
			continue
		}
		b = a
		if found {
			if _, err := fmt.Sscan(hi, &b); err != nil {
				continue
			}
		}
		for _, p := range ports {
			if a <= p && p <= b {
				return p, true
			}
		}
	}
	return 0, false
}

// portSpecCoversAdmin handles Azure/GCP port strings: "22", "20-30", "*".
func portSpecCoversAdmin(specs []string) bool {
	for _, s := range specs {
		if s == "*" {
			return true
		}
		lo, hi, found := strings.Cut(s, "-")
		var a, b int64
		if _, err := fmt.Sscan(lo, &a); err != nil {
			continue
		}
		b = a
		if found {
			if _, err := fmt.Sscan(hi, &b); err != nil {
				continue
			}
		}
		if portsCoverAdmin(a, b) {
			return true
		}
	}
	return false
}

// terraform parses one .tf file and checks its resources. References
// between resources (a bucket and its encryption configuration) resolve
// within the module: the file's siblings when modules can read them, else
// the file alone.
func terraform(data []byte, name string, modules *tfModules, r *reporter) {
	body, ok := parseTF(data, name)
	if !ok {
		return
	}
	var siblings []*hclsyntax.Body
	if modules != nil {
		siblings = modules.siblings(name)
	}
	tfile := loadTF(body, siblings)
	runTFChecks(tfile, r)
	for _, res := range tfile.own {
		checkResource(res.typ, res.name, res.block.Body, r)
	}
}

func parseTF(data []byte, name string) (*hclsyntax.Body, bool) {
	// Long text heredocs are cut out first, which hclsyntax parses in
	// quadratic time (tf_heredoc.go).
	f, diags, _, ok := parseTFFast(data, name, minFlattenLines)
	if !ok {
		f, diags = hclsyntax.ParseConfig(data, name, hcl.InitialPos)
	}
	if diags.HasErrors() || f == nil {
		return nil, false
	}
	body, ok := f.Body.(*hclsyntax.Body)
	return body, ok
}

// tfModules reads and parses the .tf files of a directory once per scan,
// so each file of a module sees the resources its siblings declare.
type tfModules struct {
	fsys fs.FS
	dirs sync.Map // dir -> map[string]*hclsyntax.Body by file path
}

// maxModuleFiles bounds what one directory may contribute.
const maxModuleFiles = 500

// siblings returns the parsed bodies of the other .tf files in p's directory.
func (m *tfModules) siblings(p string) []*hclsyntax.Body {
	dir := path.Dir(p)
	v, ok := m.dirs.Load(dir)
	if !ok {
		files := map[string]*hclsyntax.Body{}
		entries, _ := fs.ReadDir(m.fsys, dir)
		for _, e := range entries {
			if len(files) >= maxModuleFiles {
				break
			}
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".tf") {
				continue
			}
			fp := path.Join(dir, e.Name())
			if info, err := e.Info(); err != nil || info.Size() > 4<<20 {
				continue
			}
			data, err := fs.ReadFile(m.fsys, fp)
			if err != nil {
				continue
			}
			if body, ok := parseTF(data, fp); ok {
				files[fp] = body
			}
		}
		v, _ = m.dirs.LoadOrStore(dir, files)
	}
	var out []*hclsyntax.Body
	for fp, body := range v.(map[string]*hclsyntax.Body) {
		if fp != p {
			out = append(out, body)
		}
	}
	return out
}

func checkResource(typ, addr string, body *hclsyntax.Body, r *reporter) {
	switch typ {
	case "aws_security_group":
		for _, ib := range body.Blocks {
			if ib.Type != "ingress" {
				continue
			}
			sgRule(ib.Body, addr, r)
		}
	case "aws_security_group_rule":
		if t, _, _ := stringAttr(body, "type"); t == "ingress" {
			sgRule(body, addr, r)
		}
	case "aws_vpc_security_group_ingress_rule":
		sgRule(body, addr, r)
	case "google_compute_firewall":
		if d, _, _ := stringAttr(body, "direction"); strings.EqualFold(d, "EGRESS") {
			return
		}
		for _, ab := range body.Blocks {
			if ab.Type != "allow" {
				continue
			}
			ports, l := stringsAttr(ab.Body, "ports")
			for _, p := range ports {
				var lo, hi int64
				if n, _ := fmt.Sscanf(p, "%d-%d", &lo, &hi); n == 2 && hi-lo+1 > 30 && !(lo <= 1 && hi == 65535) {
					r.add(tfGCPPortRange, l, "ports "+p, addr)
				}
			}
		}
		src, l := stringsAttr(body, "source_ranges")
		if !worldOpen(src) {
			return
		}
		for _, ab := range body.Blocks {
			if ab.Type != "allow" {
				continue
			}
			ports, _ := stringsAttr(ab.Body, "ports")
			proto, _, _ := stringAttr(ab.Body, "protocol")
			if (len(ports) == 0 && (proto == "all" || proto == "tcp")) || portSpecCoversAdmin(ports) {
				r.add(tfGCPOpenFirewall, l, "source_ranges includes 0.0.0.0/0", addr)
				return
			}
		}
	case "google_sql_database_instance":
		for _, s := range body.Blocks {
			for _, ip := range s.Body.Blocks {
				for _, an := range ip.Body.Blocks {
					if an.Type == "authorized_networks" {
						if v, l, ok := stringAttr(an.Body, "value"); ok && worldOpen([]string{v}) {
							r.add(tfSQLOpenNetwork, l, `value = "`+v+`"`, addr)
						}
					}
				}
			}
		}
	case "azurerm_network_security_rule":
		azureRule(body, addr, r)
	case "azurerm_network_security_group":
		for _, sr := range body.Blocks {
			if sr.Type == "security_rule" {
				azureRule(sr.Body, addr, r)
			}
		}
	}
}

func sgRule(body *hclsyntax.Body, addr string, r *reporter) {
	cidrs, l := stringsAttr(body, "cidr_blocks")
	v6, l6 := stringsAttr(body, "ipv6_cidr_blocks")
	v4, l4 := stringsAttr(body, "cidr_ipv4")
	v6b, l6b := stringsAttr(body, "cidr_ipv6")
	all := slices.Concat(cidrs, v6, v4, v6b)
	if !worldOpen(all) {
		return
	}
	line := max(l, l6, l4, l6b)
	from, okF := numAttr(body, "from_port")
	to, okT := numAttr(body, "to_port")
	proto, _, _ := stringAttr(body, "protocol")
	if proto == "" {
		proto, _, _ = stringAttr(body, "ip_protocol")
	}
	if proto == "-1" || proto == "all" || (okF && okT && (from == 0 && to == 0 && proto == "-1")) {
		r.add(tfOpenAdminPort, line, "all ports open to 0.0.0.0/0", addr)
		return
	}
	if okF && okT && portsCoverAdmin(from, to) {
		r.add(tfOpenAdminPort, line, fmt.Sprintf("ports %d-%d open to 0.0.0.0/0", from, to), addr)
	}
}

func azureRule(body *hclsyntax.Body, addr string, r *reporter) {
	if d, _, _ := stringAttr(body, "direction"); !strings.EqualFold(d, "inbound") {
		return
	}
	if a, _, _ := stringAttr(body, "access"); !strings.EqualFold(a, "allow") {
		return
	}
	src, l := stringsAttr(body, "source_address_prefix")
	srcs, l2 := stringsAttr(body, "source_address_prefixes")
	if !worldOpen(append(src, srcs...)) {
		return
	}
	ports, _ := stringsAttr(body, "destination_port_range")
	ps, _ := stringsAttr(body, "destination_port_ranges")
	all := append(ports, ps...)
	if portSpecCoversAdmin(all) {
		r.add(tfAzureOpenNSG, max(l, l2), "inbound allow from the internet to an admin port", addr)
	}
	if p, ok := portSpecCovers(all, sensitivePorts); ok {
		r.add(tfAzureSensitive, max(l, l2), fmt.Sprintf("inbound allow from the internet to port %d", p), addr)
	}
}
