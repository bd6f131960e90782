package ops

import (
	"path"
	"regexp"
	"strings"
)

// codeKind is how a code region's text is run.
type codeKind int

const (
	codeShell       codeKind = iota // shell text: sh -c, su -c, flock -c, watch …
	codeInterpreter                 // python -c, perl -e, node --eval …
	codeSSHRemote                   // the command ssh joins for the remote shell
	codeSSHOption                   // an ssh -o option that runs a local command
	codeSplit                       // a string env -S splits into words again
)

// codeRegion is argv[from:to], which runner runs as code.
type codeRegion struct {
	from, to int
	runner   string
	kind     codeKind
}

// codeRegions finds, in an argv run without a shell, the elements that
// are nonetheless code: the script of `sh -c SCRIPT` wherever a shell
// starts in argv (first, behind env, sudo or timeout, or as what xargs,
// find -exec or busybox run), the script of su, runuser, flock or script
// -c and of watch, the program of `python3 -c`, `perl -ne` or
// `node --eval=…`, the remote command of ssh and its -o …Command=
// options, and the string env -S splits into words again.
//
// Hand-written and best effort: no library models how every program
// treats its arguments. Every element is tried as the start of a program,
// so a word like "sh" among data makes what follows it count as code: the
// placeholder check it feeds then refuses more than it must, never less.
func codeRegions(argv []string) []codeRegion {
	var out []codeRegion
	for k := range argv {
		out = append(out, codeAt(argv, k)...)
	}
	return out
}

// codeAt returns the code regions of argv[i:] if argv[i] is a program that
// runs code from its arguments.
func codeAt(argv []string, i int) []codeRegion {
	prog := path.Base(argv[i])
	var out []codeRegion
	add := func(from, to int, runner string, kind codeKind) {
		out = append(out, codeRegion{from: min(from, len(argv)), to: min(to, len(argv)), runner: runner, kind: kind})
	}
	switch {
	case shellNames[prog]:
		// sh [-eux…] -c SCRIPT [name args…]: SCRIPT follows the first
		// option cluster holding c. Later elements are $0, $1 …: data,
		// which is how to pass values.
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			if a == "--" || !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+") {
				break
			}
			if !strings.HasPrefix(a, "--") && strings.ContainsRune(a[1:], 'c') {
				add(j+1, j+2, prog+" -c", codeShell)
				break
			}
		}
	case prog == "su" || prog == "runuser" || prog == "flock" || prog == "script":
		// Their -c/--command is handed to a shell, wherever it stands.
		for j := i + 1; j < len(argv); j++ {
			switch a := argv[j]; {
			case a == "-c" || a == "--command":
				add(j+1, j+2, prog+" -c", codeShell)
				j++
			case strings.HasPrefix(a, "--command="):
				add(j, j+1, prog+" -c", codeShell)
			}
		}
	case prog == "watch":
		// watch joins its command's words and runs them with sh -c, unless
		// -x/--exec.
		for j := i + 1; j < len(argv); j++ {
			switch a := argv[j]; {
			case a == "-x" || a == "--exec":
				return nil
			case a == "-n" || a == "--interval":
				j++
			case strings.HasPrefix(a, "-"):
			default:
				add(j, len(argv), "watch", codeShell)
				return out
			}
		}
	case prog == "env":
		// env -S STRING splits STRING into words (quotes and all) and runs
		// them: a value there can add arguments, options or a program.
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			switch {
			case a == "-S" || a == "--split-string":
				add(j+1, j+2, "env -S", codeSplit)
				j++
			case strings.HasPrefix(a, "--split-string="):
				add(j, j+1, "env -S", codeSplit)
			case strings.HasPrefix(a, "--"):
			case strings.HasPrefix(a, "-") && strings.ContainsRune(a, 'S'):
				if strings.HasSuffix(a, "S") {
					add(j+1, j+2, "env -S", codeSplit)
					j++
				} else {
					add(j, j+1, "env -S", codeSplit)
				}
			case a == "-u" || a == "-C":
				j++
			case strings.HasPrefix(a, "-") || strings.Contains(a, "="):
			default:
				return out
			}
		}
	case interpreterPattern.MatchString(prog):
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			switch {
			case a == "--":
				return out
			case a == "--eval" || a == "--print" || a == "--command":
				add(j+1, j+2, prog+" "+a, codeInterpreter)
				j++
			case strings.HasPrefix(a, "--eval=") || strings.HasPrefix(a, "--print="):
				add(j, j+1, prog+" "+a[:strings.IndexByte(a, '=')], codeInterpreter)
			case strings.HasPrefix(a, "--"):
			case strings.HasPrefix(a, "-") && len(a) > 1:
				// A cluster: -c CODE, -ne CODE, or code attached (-cCODE).
				p := strings.IndexAny(a[1:], interpreterCodeFlags)
				if p < 0 {
					continue
				}
				p++
				runner := prog + " -" + string(a[p])
				if p == len(a)-1 {
					add(j+1, j+2, runner, codeInterpreter)
					j++
				} else {
					add(j, j+1, runner, codeInterpreter)
				}
			default:
				return out // a script file: what follows is data
			}
		}
	case prog == "ssh":
		// ssh [options] destination command…: options taking a value are
		// listed in ssh(1); the first other non-option word is the
		// destination, and what follows it is joined for the remote shell.
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			switch {
			case a == "-o":
				if j+1 < len(argv) && sshCommandOption(argv[j+1]) {
					add(j+1, j+2, "ssh", codeSSHOption)
				}
				j++
			case strings.HasPrefix(a, "-o") && sshCommandOption(a[2:]):
				add(j, j+1, "ssh", codeSSHOption)
			case len(a) == 2 && strings.ContainsRune("BbcDEeFIiJLlmOoPpQRSWw", rune(a[1])) && a[0] == '-':
				j++
			case strings.HasPrefix(a, "-"):
			default:
				add(j+1, len(argv), "ssh", codeSSHRemote)
				return out
			}
		}
	}
	return out
}

// sshCommandOption reports whether an ssh -o option is one whose value
// ssh runs as a local (or remote) command: ProxyCommand, LocalCommand,
// KnownHostsCommand, RemoteCommand, …
func sshCommandOption(opt string) bool {
	key, _, _ := strings.Cut(strings.ToLower(opt), "=")
	key, _, _ = strings.Cut(key, " ")
	return strings.HasSuffix(key, "command")
}

// interpreterCodeFlags are the one-letter options of script interpreters
// whose value is code: -c (python), -e/-E (perl, ruby, node, lua), -r
// (php), -p (node: print the value of code).
const interpreterCodeFlags = "ceErp"

// skipWrappers returns the index of the program that argv's leading
// wrappers (env, sudo, nice, …) finally run.
func skipWrappers(argv []string) int {
	i := 0
	for i < len(argv) {
		switch path.Base(argv[i]) {
		case "env":
			i++
			for i < len(argv) && (strings.HasPrefix(argv[i], "-") || strings.Contains(argv[i], "=")) {
				if argv[i] == "-u" || argv[i] == "-C" || argv[i] == "-S" {
					i++
				}
				i++
			}
		case "sudo", "doas", "nice", "nohup", "setsid", "stdbuf", "ionice":
			i++
			for i < len(argv) && strings.HasPrefix(argv[i], "-") {
				if argv[i] == "-u" || argv[i] == "-g" || argv[i] == "-n" || argv[i] == "-c" || argv[i] == "-p" {
					i++
				}
				i++
			}
		case "timeout":
			i++
			for i < len(argv) && strings.HasPrefix(argv[i], "-") {
				if argv[i] == "-s" || argv[i] == "-k" {
					i++
				}
				i++
			}
			i++ // the duration
		default:
			return i
		}
	}
	return i
}

var (
	shellNames = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true, "ash": true, "fish": true, "csh": true, "tcsh": true}
	// python, python3, python3.12, perl, ruby, node, nodejs, php, lua, Rscript …
	interpreterPattern = regexp.MustCompile(`^(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|php[0-9.]*|lua[0-9.]*|tclsh[0-9.]*|osascript)$`)
)
