// Package misconfig flags risky settings in infrastructure files:
// Terraform (parsed with hashicorp/hcl/v2, checks as data in tf_*.go),
// Kubernetes manifests (Pod Security Standards), Helm charts (rendered
// with their values first), Dockerfiles, sshd_config and nginx
// configuration. Every check has an ID,
// a severity, a one-line why and a fix; [Checks] lists them.
package misconfig

import (
	"bytes"
	"context"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Check describes one misconfiguration rule.
type Check struct {
	ID       string
	Severity scan.Severity
	Why      string
	Fix      string
	// Ref names the benchmark or catalogue entry the check implements
	// (a CIS benchmark section, a Pod Security Standards control, an AVD
	// ID), so a team moving from another scanner can map its findings.
	Ref string
}

var checks = map[string]Check{}

func def(id string, sev scan.Severity, why, fix string) string {
	return defRef(id, "", sev, why, fix)
}

func defRef(id, ref string, sev scan.Severity, why, fix string) string {
	if _, dup := checks[id]; dup {
		panic("misconfig: duplicate check " + id)
	}
	checks[id] = Check{ID: id, Severity: sev, Why: why, Fix: fix, Ref: ref}
	return id
}

// Checks returns every check this package runs.
func Checks() []Check {
	out := make([]Check, 0, len(checks))
	for _, c := range checks {
		out = append(out, c)
	}
	return out
}

// Detector is a [scan.Detector] for misconfigurations. A Detector serves
// one scan: it caches what it reads from Root.
type Detector struct {
	// Root, when set, is the directory being scanned. A Terraform file then
	// sees the resources of the other .tf files of its directory (its
	// module), and, with RenderChart set, each Chart.yaml is rendered with
	// its values.yaml and the manifests are checked (helm.go). Nil
	// (archives, git history, stdin) reads each file alone.
	Root        fs.FS
	RenderChart ChartRenderer

	modulesOnce sync.Once
	modules     *tfModules
}

// New returns a Detector.
func New() *Detector { return &Detector{} }

// Name implements [scan.Detector].
func (*Detector) Name() string { return "misconfig" }

// Detect implements [scan.Detector].
func (d *Detector) Detect(ctx context.Context, f *scan.File, emit func(scan.Finding)) error {
	name := f.Path
	if i := strings.LastIndexByte(name, '!'); i >= 0 {
		name = name[i+1:]
	}
	base := strings.ToLower(path.Base(name))
	r := reporter{f: f, emit: emit}
	switch {
	case strings.HasSuffix(base, ".tf"):
		var modules *tfModules
		if d.Root != nil && f.Commit == "" && !strings.Contains(f.Path, "!") {
			d.modulesOnce.Do(func() { d.modules = &tfModules{fsys: d.Root} })
			modules = d.modules
		}
		terraform(f.Data, name, modules, &r)
	case base == "dockerfile" || strings.HasPrefix(base, "dockerfile.") || strings.HasSuffix(base, ".dockerfile") || base == "containerfile":
		dockerfile(f.Data, &r)
	case base == "sshd_config" || strings.HasPrefix(base, "sshd_config") || (strings.HasSuffix(base, ".conf") && strings.Contains(name, "sshd_config.d/")):
		sshd(f.Data, &r)
	case base == "nginx.conf" || (strings.HasSuffix(base, ".conf") && (strings.Contains(name, "nginx") || strings.Contains(name, "sites-") || strings.Contains(name, "conf.d"))):
		nginx(f.Data, &r)
	case base == "chart.yaml" && d.Root != nil && d.RenderChart != nil && f.Commit == "" && (!strings.Contains(f.Path, "!") || isPackedChart(f.Path)):
		if err := helmChart(ctx, d.RenderChart, d.Root, f.Path, &r); err != nil {
			return err
		}
	case strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml"):
		if !isHelmTemplate(name, f.Data) {
			// A manifest has a top-level kind; YAML that is not plain
			// enough to tell without decoding it is decoded (topLevel).
			if data, mayHold := dropUnchecked(f.Data); mayHold {
				kubernetes(data, &r)
			}
		}
	case strings.HasSuffix(base, ".json"):
		// kubectl applies JSON manifests too. A JSON file is decoded only
		// when it names a "kind" (or escapes characters, which could spell
		// one): package locks and the like are passed over.
		if !isHelmTemplate(name, f.Data) && (bytes.Contains(f.Data, []byte(`"kind"`)) || bytes.Contains(f.Data, []byte(`\u`))) {
			kubernetes(f.Data, &r)
		}
	}
	return ctx.Err()
}

// reporter turns check IDs into findings.
type reporter struct {
	f    *scan.File
	emit func(scan.Finding)
}

// add reports check id at line with evidence (shown as the match) and
// subject (what the finding is about, e.g. a resource address).
func (r *reporter) add(id string, line int, evidence, subject string) {
	c, ok := checks[id]
	if !ok {
		panic("misconfig: unknown check " + id)
	}
	fd := r.f.FindingAt(line, 0)
	fd.Kind = scan.KindMisconfig
	fd.RuleID = id
	fd.Severity = c.Severity
	fd.Match = evidence
	fd.Fingerprint = scan.Fingerprint("misconfig\x00" + id + "\x00" + subject + "\x00" + evidence)
	fd.Message = c.Why
	if subject != "" {
		fd.Message = subject + ": " + c.Why
	}
	if c.Ref != "" {
		fd.Message += " (" + c.Ref + ")"
	}
	fd.Fix = c.Fix
	r.emit(fd)
}
