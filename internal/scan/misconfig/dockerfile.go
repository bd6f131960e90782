package misconfig

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/interlock-dev/interlock/internal/scan"
)

var (
	dfRootUser   = def("dockerfile-runs-as-root", scan.SeverityMedium, "the image runs as root (no USER, or USER root)", "Add a non-root user and switch to it with USER before the final CMD/ENTRYPOINT.")
	dfCurlPipeSh = def("dockerfile-curl-pipe-shell", scan.SeverityHigh, "a script is downloaded and executed unverified (curl | sh)", "Download to a file, verify a pinned checksum or signature, then run it.")
	dfAddURL     = def("dockerfile-add-from-url", scan.SeverityMedium, "ADD fetches a remote URL without verification", "Use RUN curl with a checksum check, or ADD --checksum=sha256:….")
	dfSecretEnv  = def("dockerfile-secret-in-env", scan.SeverityHigh, "a secret is baked into the image through ENV or ARG (visible in image history)", "Use build secrets (RUN --mount=type=secret) and runtime environment, not ENV/ARG.")
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
)

func dockerfile(data []byte, r *reporter) {
	ins := ParseDockerfile(data)
	lastUser, lastFrom := "", 0
	sawFrom := false
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			sawFrom = true
			lastUser, lastFrom = "", in.Line
		case "USER":
			lastUser = strings.TrimSpace(in.Args)
		case "RUN":
			if pipeShRe.MatchString(in.Args) {
				r.add(dfCurlPipeSh, in.Line, truncate(in.Args, 80), "")
			}
		case "ADD":
			for _, a := range strings.Fields(in.Args) {
				if strings.HasPrefix(a, "--checksum") {
					break
				}
				if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
					r.add(dfAddURL, in.Line, "ADD "+a, "")
					break
				}
			}
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
