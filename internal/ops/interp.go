package ops

import (
	"path"
	"regexp"
	"strings"
)

// codeArg finds, in an argv run without a shell, the element that is
// nonetheless code for an interpreter: the script of `sh -c SCRIPT`
// (also behind env, sudo, nice, nohup, setsid, timeout, stdbuf, ionice or
// busybox), the program of `python3 -c` or `perl -e`, or the remote
// command of ssh, which ssh joins into text for the remote host's shell.
// It returns the elements that are code, argv[from:to] (from == to when
// none is), and what runs them.
//
// Hand-written and best effort: no library models how every program
// treats its arguments. It covers how runbooks start shells and script
// interpreters; the placeholder check it feeds refuses anything it finds,
// so a miss leaves the old behaviour (one argv element), never a looser one.
func codeArg(argv []string) (from, to int, runner string) {
	i := skipWrappers(argv)
	if i >= len(argv) {
		return 0, 0, ""
	}
	prog := path.Base(argv[i])
	if prog == "busybox" && i+1 < len(argv) {
		i++
		prog = path.Base(argv[i])
	}
	switch {
	case shellNames[prog]:
		// sh [-eux…] -c SCRIPT [name args…]: SCRIPT follows the first
		// option cluster holding c.
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			if a == "--" || !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+") {
				return 0, 0, ""
			}
			if !strings.HasPrefix(a, "--") && strings.ContainsRune(a[1:], 'c') {
				// Later elements are $0, $1 …: data, which is how to pass values.
				return min(j+1, len(argv)), min(j+2, len(argv)), prog + " -c"
			}
		}
	case interpreterPattern.MatchString(prog):
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			if a == "-c" || a == "-e" || a == "-E" || a == "-r" || a == "--eval" || a == "-p" || a == "--print" {
				return min(j+1, len(argv)), min(j+2, len(argv)), prog + " " + a
			}
			if !strings.HasPrefix(a, "-") {
				return 0, 0, ""
			}
		}
	case prog == "ssh":
		// ssh [options] destination command…: options taking a value are
		// listed in ssh(1); the first other non-option word is the
		// destination.
		for j := i + 1; j < len(argv); j++ {
			a := argv[j]
			switch {
			case len(a) == 2 && strings.ContainsRune("BbcDEeFIiJLlmOoPpQRSWw", rune(a[1])) && a[0] == '-':
				j++
			case strings.HasPrefix(a, "-"):
			default:
				return j + 1, len(argv), "ssh"
			}
		}
	}
	return 0, 0, ""
}

var (
	shellNames = map[string]bool{"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true, "ash": true, "fish": true, "csh": true, "tcsh": true}
	// python, python3, python3.12, perl, ruby, node, nodejs, php, lua, Rscript …
	interpreterPattern = regexp.MustCompile(`^(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|php[0-9.]*|lua[0-9.]*|tclsh[0-9.]*|osascript)$`)
)

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
