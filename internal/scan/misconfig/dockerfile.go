package misconfig

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Dockerfile checks: the CIS Docker Benchmark's image section (4.x) and
// the DS set of trivy-checks / hadolint, each with its reference.
var (
	dfRootUser     = defRef("dockerfile-runs-as-root", "CIS Docker 4.1, AVD-DS-0002", scan.SeverityMedium, "the image runs as root (no USER, or USER root)", "Add a non-root user and switch to it with USER before the final CMD/ENTRYPOINT.")
	dfCurlPipeSh   = defRef("dockerfile-curl-pipe-shell", "CIS Docker 4.x, hadolint DL4006", scan.SeverityHigh, "a script is downloaded and executed unverified (curl | sh)", "Download to a file, verify a pinned checksum or signature, then run it.")
	dfAddURL       = defRef("dockerfile-add-from-url", "CIS Docker 4.9", scan.SeverityMedium, "ADD fetches a remote URL without verification", "Use RUN curl with a checksum check, or ADD --checksum=sha256:….")
	dfSecretEnv    = defRef("dockerfile-secret-in-env", "CIS Docker 4.10", scan.SeverityHigh, "a secret is baked into the image through ENV or ARG (visible in image history)", "Use build secrets (RUN --mount=type=secret) and runtime environment, not ENV/ARG.")
	dfLatest       = defRef("dockerfile-latest-tag", "AVD-DS-0001", scan.SeverityMedium, "the base image is not pinned (no tag, or :latest), so builds change under you", "Pin the base image by tag and digest (FROM image:1.2.3@sha256:…).")
	dfPort22       = defRef("dockerfile-expose-ssh", "AVD-DS-0004", scan.SeverityMedium, "the image exposes SSH; containers should not run an SSH server", "Remove EXPOSE 22; use kubectl exec or docker exec.")
	dfAddLocal     = defRef("dockerfile-add-instead-of-copy", "CIS Docker 4.9, AVD-DS-0005", scan.SeverityLow, "ADD copies a local file (and would silently unpack archives); COPY says what is meant", "Use COPY for local files.")
	dfCopyFrom     = defRef("dockerfile-copy-from-own-stage", "AVD-DS-0006", scan.SeverityCritical, "COPY --from names the stage it is in", "Copy from an earlier stage.")
	dfMultiEntry   = defRef("dockerfile-multiple-entrypoint", "AVD-DS-0007", scan.SeverityCritical, "a stage has several ENTRYPOINTs; only the last one takes effect", "Keep one ENTRYPOINT per stage.")
	dfPortRange    = defRef("dockerfile-port-out-of-range", "AVD-DS-0008", scan.SeverityCritical, "EXPOSE names a port outside 0–65535", "Fix the port number.")
	dfWorkdirRel   = defRef("dockerfile-workdir-relative", "AVD-DS-0009", scan.SeverityHigh, "WORKDIR is relative, so it depends on every earlier WORKDIR", "Use an absolute WORKDIR path.")
	dfSudo         = defRef("dockerfile-sudo", "AVD-DS-0010", scan.SeverityCritical, "RUN uses sudo, which is unpredictable in a build and leaves sudo in the image", "Switch USER for the steps that need root instead of sudo.")
	dfCopyArgs     = defRef("dockerfile-copy-dest-not-dir", "AVD-DS-0011", scan.SeverityCritical, "COPY of several sources needs a destination ending in /", "End the destination with /.")
	dfDupAlias     = defRef("dockerfile-duplicate-stage-alias", "AVD-DS-0012", scan.SeverityCritical, "two stages share an alias, so COPY --from is ambiguous", "Give every stage its own name.")
	dfRunCd        = defRef("dockerfile-run-cd", "AVD-DS-0013", scan.SeverityMedium, "RUN cd changes directory for one step only; WORKDIR says it for all", "Use WORKDIR.")
	dfWgetCurl     = defRef("dockerfile-wget-and-curl", "AVD-DS-0014", scan.SeverityLow, "the image uses both wget and curl; one is enough", "Pick one download tool.")
	dfYumClean     = defRef("dockerfile-yum-clean", "AVD-DS-0015", scan.SeverityHigh, "yum install without yum clean all leaves the cache in the layer", "Add && yum clean all to the same RUN.")
	dfMultiCmd     = defRef("dockerfile-multiple-cmd", "AVD-DS-0016", scan.SeverityHigh, "a stage has several CMDs; only the last one takes effect", "Keep one CMD per stage.")
	dfUpdateOnly   = defRef("dockerfile-update-alone", "AVD-DS-0017", scan.SeverityHigh, "a package index update runs in its own RUN, so a cached layer installs stale packages", "Update and install in the same RUN: apt-get update && apt-get install ….")
	dfDnfClean     = defRef("dockerfile-dnf-clean", "AVD-DS-0019", scan.SeverityHigh, "dnf install without dnf clean all leaves the cache in the layer", "Add && dnf clean all to the same RUN.")
	dfZypperCln    = defRef("dockerfile-zypper-clean", "AVD-DS-0020", scan.SeverityHigh, "zypper install without zypper clean leaves the cache in the layer", "Add && zypper clean to the same RUN.")
	dfAptYes       = defRef("dockerfile-apt-missing-yes", "AVD-DS-0021", scan.SeverityHigh, "apt-get install without -y waits for input and fails the build", "Use apt-get install -y.")
	dfMaintainer   = defRef("dockerfile-maintainer", "AVD-DS-0022", scan.SeverityHigh, "MAINTAINER is deprecated", "Use LABEL org.opencontainers.image.authors=….")
	dfMultiHC      = defRef("dockerfile-multiple-healthcheck", "AVD-DS-0023", scan.SeverityHigh, "a stage has several HEALTHCHECKs; only the last one takes effect", "Keep one HEALTHCHECK.")
	dfDistUpg      = defRef("dockerfile-dist-upgrade", "AVD-DS-0024", scan.SeverityHigh, "apt-get dist-upgrade changes the base image's release in an unreviewed way", "Pin a newer base image instead.")
	dfApkCache     = defRef("dockerfile-apk-no-cache", "AVD-DS-0025", scan.SeverityHigh, "apk add without --no-cache leaves the index in the layer", "Use apk add --no-cache.")
	dfNoHealth     = defRef("dockerfile-no-healthcheck", "CIS Docker 4.6, AVD-DS-0026", scan.SeverityLow, "the image declares no HEALTHCHECK, so a hung process looks healthy", "Add HEALTHCHECK CMD … (or HEALTHCHECK NONE to say it is deliberate).")
	dfNoRecommends = defRef("dockerfile-apt-install-recommends", "AVD-DS-0029", scan.SeverityHigh, "apt-get install pulls recommended packages, growing the attack surface", "Add --no-install-recommends.")
	dfAptUnpinned  = defRef("dockerfile-apt-unpinned", "hadolint DL3008", scan.SeverityLow, "apt-get install does not pin package versions, so rebuilds install different software", "Pin versions: apt-get install -y --no-install-recommends pkg=1.2.3-1.")
)

// Instruction is one Dockerfile instruction.
type Instruction struct {
	Cmd  string // upper-cased
	Args string
	Line int
}

// ParseDockerfile splits a Dockerfile into instructions, joining
// continuation lines and dropping comments.
func ParseDockerfile(data []byte) []Instruction {
	var out []Instruction
	var cur strings.Builder
	start := 0
	escape := byte('\\')
	lines := bytes.Split(data, []byte("\n"))
	for i, raw := range lines {
		line := strings.TrimRight(string(raw), "\r")
		t := strings.TrimSpace(line)
		if cur.Len() == 0 {
			if strings.HasPrefix(strings.ToLower(t), "# escape=`") {
				escape = '`'
			}
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			start = i + 1
		} else if strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) > 0 && t[len(t)-1] == escape {
			cur.WriteString(t[:len(t)-1])
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(t)
		s := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(s, " ")
		out = append(out, Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
	}
	if cur.Len() > 0 {
		s := cur.String()
		cmd, args, _ := strings.Cut(s, " ")
		out = append(out, Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start})
	}
	return out
}

var (
	pipeShRe   = regexp.MustCompile(`\b(?:curl|wget)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b`)
	secretName = regexp.MustCompile(`(?i)(password|passwd|secret|token|api_?key|private_?key|access_?key|credentials?)`)
	sudoRe     = regexp.MustCompile(`(?:^|[;&|(]\s*|\s)sudo\s`)
	cdRe       = regexp.MustCompile(`(?:^|[;&|]\s*)cd\s+\S`)
	wordRe     = func(w string) *regexp.Regexp { return regexp.MustCompile(`(?:^|[\s;&|(/])` + w + `(?:\s|$)`) }
	curlRe     = wordRe("curl")
	shellSep   = regexp.MustCompile(`&&|\|\||;|\|`)
	yumClean   = regexp.MustCompile(`yum\s+clean\s+all`)
	dnfClean   = regexp.MustCompile(`dnf\s+clean\s+all`)
	zypClean   = regexp.MustCompile(`zypper\s+(clean|cc)`)
	installRe  = regexp.MustCompile(`\b(install|add|upgrade|in)\b`)
	wgetRe     = wordRe("wget")
)

// shellCommands splits a RUN line into its simple commands (on && || ; |).
func shellCommands(run string) []string {
	return shellSep.Split(run, -1)
}

// runLine is the text of a RUN with its flags (--mount=…) removed and an
// exec-form array joined into words.
func runLine(args string) string {
	for strings.HasPrefix(args, "--") {
		_, rest, _ := strings.Cut(args, " ")
		args = strings.TrimSpace(rest)
	}
	if strings.HasPrefix(args, "[") {
		var parts []string
		if err := json.Unmarshal([]byte(args), &parts); err == nil {
			return strings.Join(parts, " ")
		}
	}
	return args
}

type stage struct {
	alias                 string
	cmds, entries, health int
	from                  int
}

func dockerfile(data []byte, r *reporter) {
	ins := ParseDockerfile(data)
	lastUser, lastFrom := "", 0
	sawFrom, sawHealth, usesCurl, usesWget := false, false, 0, 0
	aliases := map[string]int{}
	var cur *stage
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			sawFrom = true
			lastUser, lastFrom = "", in.Line
			f := strings.Fields(in.Args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			cur = &stage{from: in.Line}
			if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
				cur.alias = strings.ToLower(f[2])
				if l, dup := aliases[cur.alias]; dup {
					r.add(dfDupAlias, in.Line, "FROM … AS "+f[2]+" (also at line "+strconv.Itoa(l)+")", "")
				} else {
					aliases[cur.alias] = in.Line
				}
			}
			if len(f) > 0 {
				img := f[0]
				_, isStage := aliases[strings.ToLower(img)]
				if !isStage && img != "scratch" && !strings.Contains(img, "$") && !strings.Contains(img, "@sha256:") {
					last := img[strings.LastIndexByte(img, '/')+1:]
					if _, tag, tagged := strings.Cut(last, ":"); !tagged || tag == "latest" {
						r.add(dfLatest, in.Line, "FROM "+img, "")
					}
				}
			}
		case "USER":
			lastUser = strings.TrimSpace(in.Args)
		case "MAINTAINER":
			r.add(dfMaintainer, in.Line, "MAINTAINER", "")
		case "HEALTHCHECK":
			sawHealth = true
			if cur != nil {
				if cur.health++; cur.health == 2 {
					r.add(dfMultiHC, in.Line, "second HEALTHCHECK", "")
				}
			}
		case "CMD":
			if cur != nil {
				if cur.cmds++; cur.cmds == 2 {
					r.add(dfMultiCmd, in.Line, "second CMD", "")
				}
			}
		case "ENTRYPOINT":
			if cur != nil {
				if cur.entries++; cur.entries == 2 {
					r.add(dfMultiEntry, in.Line, "second ENTRYPOINT", "")
				}
			}
		case "EXPOSE":
			for _, p := range strings.Fields(in.Args) {
				port, _, _ := strings.Cut(p, "/")
				n, err := strconv.Atoi(port)
				switch {
				case err != nil:
				case n > 65535:
					r.add(dfPortRange, in.Line, "EXPOSE "+p, "")
				case n == 22:
					r.add(dfPort22, in.Line, "EXPOSE "+p, "")
				}
			}
		case "WORKDIR":
			w := strings.Trim(strings.TrimSpace(in.Args), `"'`)
			if w != "" && !strings.HasPrefix(w, "/") && !strings.HasPrefix(w, "$") && !(len(w) > 1 && w[1] == ':') {
				r.add(dfWorkdirRel, in.Line, "WORKDIR "+w, "")
			}
		case "COPY":
			args := copyArgs(in.Args)
			for _, f := range flagArgs(in.Args) {
				if from, ok := strings.CutPrefix(f, "--from="); ok && cur != nil && cur.alias != "" && strings.EqualFold(from, cur.alias) {
					r.add(dfCopyFrom, in.Line, "COPY "+f, "")
				}
			}
			if len(args) > 2 && !strings.HasSuffix(args[len(args)-1], "/") && !strings.HasSuffix(args[len(args)-1], "\\") {
				r.add(dfCopyArgs, in.Line, "COPY … "+args[len(args)-1], "")
			}
		case "RUN":
			run := runLine(in.Args)
			if pipeShRe.MatchString(run) {
				r.add(dfCurlPipeSh, in.Line, truncate(run, 80), "")
			}
			if sudoRe.MatchString(" " + run) {
				r.add(dfSudo, in.Line, truncate(run, 80), "")
			}
			if cdRe.MatchString(strings.TrimSpace(run)) && !strings.Contains(run, "&& cd -") {
				r.add(dfRunCd, in.Line, truncate(run, 80), "")
			}
			if curlRe.MatchString(run) {
				usesCurl = in.Line
			}
			if wgetRe.MatchString(run) {
				usesWget = in.Line
			}
			checkPackageManagers(run, in.Line, r)
		case "ADD":
			checkAdd(in, r)
		case "ENV", "ARG":
			for _, kv := range envPairs(in.Args) {
				if kv[1] == "" || !secretName.MatchString(kv[0]) || strings.HasPrefix(kv[1], "$") {
					continue
				}
				if strings.HasSuffix(strings.ToUpper(kv[0]), "_FILE") || strings.HasSuffix(strings.ToUpper(kv[0]), "_PATH") {
					continue
				}
				r.add(dfSecretEnv, in.Line, in.Cmd+" "+kv[0]+"="+scan.Redact(kv[1]), kv[0])
			}
		}
	}
	if usesCurl > 0 && usesWget > 0 {
		r.add(dfWgetCurl, max(usesCurl, usesWget), "both curl and wget", "")
	}
	if sawFrom && !sawHealth {
		r.add(dfNoHealth, lastFrom, "no HEALTHCHECK", "")
	}
	if sawFrom && (lastUser == "" || lastUser == "root" || lastUser == "0" || strings.HasPrefix(lastUser, "root:") || strings.HasPrefix(lastUser, "0:")) {
		line := lastFrom
		ev := "no USER instruction in the final stage"
		if lastUser != "" {
			ev = "USER " + lastUser
			for _, in := range ins {
				if in.Cmd == "USER" && in.Line > lastFrom {
					line = in.Line
				}
			}
		}
		r.add(dfRootUser, line, ev, "")
	}
}

// checkPackageManagers applies the package-manager hygiene checks to one
// RUN: each install cleans up in the same layer, never prompts, and
// installs only what it names.
func checkPackageManagers(run string, line int, r *reporter) {
	cmds := shellCommands(run)
	updateOnly := false
	for _, c := range cmds {
		f := strings.Fields(c)
		if len(f) < 2 {
			continue
		}
		tool, sub := f[0], f[1]
		if tool == "sudo" && len(f) > 2 {
			tool, sub, f = f[1], f[2], f[1:]
		}
		switch {
		case (tool == "apt-get" || tool == "apt") && slices.Contains(f, "install"):
			if !slices.ContainsFunc(f, func(a string) bool {
				return a == "-y" || a == "--yes" || a == "-qy" || a == "-yq" || a == "--assume-yes" || (strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "y")) || a == "-qq"
			}) {
				r.add(dfAptYes, line, truncate(strings.TrimSpace(c), 80), "")
			}
			if !slices.Contains(f, "--no-install-recommends") && !strings.Contains(run, "APT::Install-Recommends") {
				r.add(dfNoRecommends, line, truncate(strings.TrimSpace(c), 80), "")
			}
			for _, a := range f[2:] {
				if !strings.HasPrefix(a, "-") && a != "install" && !strings.ContainsAny(a, "=$/*") && !strings.HasSuffix(a, ".deb") {
					r.add(dfAptUnpinned, line, "apt-get install "+a, a)
					break
				}
			}
		case (tool == "apt-get" || tool == "apt") && (sub == "dist-upgrade" || slices.Contains(f, "dist-upgrade")):
			r.add(dfDistUpg, line, truncate(strings.TrimSpace(c), 80), "")
		case tool == "apk" && sub == "add" && !slices.Contains(f, "--no-cache"):
			r.add(dfApkCache, line, truncate(strings.TrimSpace(c), 80), "")
		case tool == "yum" && slices.Contains(f, "install") && !yumClean.MatchString(run):
			r.add(dfYumClean, line, truncate(strings.TrimSpace(c), 80), "")
		case (tool == "dnf" || tool == "microdnf") && slices.Contains(f, "install") && !dnfClean.MatchString(run):
			r.add(dfDnfClean, line, truncate(strings.TrimSpace(c), 80), "")
		case tool == "zypper" && (slices.Contains(f, "install") || slices.Contains(f, "in")) && !zypClean.MatchString(run):
			r.add(dfZypperCln, line, truncate(strings.TrimSpace(c), 80), "")
		}
		if slices.Contains([]string{"apt-get", "apt", "yum", "dnf", "apk", "zypper", "microdnf"}, tool) && (sub == "update" || sub == "makecache" || sub == "refresh") {
			updateOnly = true
		}
	}
	if updateOnly && !installRe.MatchString(run) {
		r.add(dfUpdateOnly, line, truncate(run, 80), "")
	}
}

func checkAdd(in Instruction, r *reporter) {
	for _, f := range flagArgs(in.Args) {
		if strings.HasPrefix(f, "--checksum") {
			return
		}
	}
	args := copyArgs(in.Args)
	if len(args) < 2 {
		return
	}
	for _, src := range args[:len(args)-1] {
		switch {
		case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
			r.add(dfAddURL, in.Line, "ADD "+src, "")
			return
		case strings.HasPrefix(src, "git@") || strings.Contains(src, "$"):
		case !isArchive(src):
			r.add(dfAddLocal, in.Line, "ADD "+src, "")
			return
		}
	}
}

func isArchive(p string) bool {
	p = strings.ToLower(p)
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".gz", ".bz2", ".xz", ".zst"} {
		if strings.HasSuffix(p, ext) {
			return true
		}
	}
	return false
}

// flagArgs and copyArgs split COPY/ADD arguments into --flags and paths
// (shell form or JSON exec form).
func flagArgs(args string) []string {
	var out []string
	for _, f := range strings.Fields(args) {
		if !strings.HasPrefix(f, "--") {
			break
		}
		out = append(out, f)
	}
	return out
}

func copyArgs(args string) []string {
	for strings.HasPrefix(args, "--") {
		_, rest, _ := strings.Cut(args, " ")
		args = strings.TrimSpace(rest)
	}
	if strings.HasPrefix(args, "[") {
		var parts []string
		if err := json.Unmarshal([]byte(args), &parts); err == nil {
			return parts
		}
	}
	var out []string
	for _, f := range splitQuoted(args) {
		out = append(out, strings.Trim(f, `"'`))
	}
	return out
}

// envPairs parses ENV/ARG arguments: "K=V K2=V2", "K V" (legacy ENV), "K".
func envPairs(args string) [][2]string {
	if !strings.Contains(args, "=") {
		k, v, _ := strings.Cut(args, " ")
		return [][2]string{{k, strings.Trim(strings.TrimSpace(v), `"'`)}}
	}
	var out [][2]string
	for _, f := range splitQuoted(args) {
		k, v, _ := strings.Cut(f, "=")
		out = append(out, [2]string{k, strings.Trim(v, `"'`)})
	}
	return out
}

func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	var q rune
	for _, c := range s {
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
			cur.WriteRune(c)
		case c == '"' || c == '\'':
			q = c
			cur.WriteRune(c)
		case c == ' ' || c == '\t':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
