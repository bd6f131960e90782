package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/boombuler/barcode/qr"
	"golang.org/x/term"
)

// readSecret reads a password or code: one line from stdin when fromStdin
// is set (for scripts), else from the terminal without echo. It refuses to
// read a secret from a non-terminal stdin unless asked, so a secret never
// ends up in shell history or a pipe by accident.
func (e *env) readSecret(prompt string, fromStdin bool) (string, error) {
	if fromStdin {
		r := bufio.NewReader(e.stdin)
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read from stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	f, ok := e.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", fmt.Errorf("%s: stdin is not a terminal; pass --password-stdin (or the matching flag) to read it from stdin", strings.TrimSuffix(prompt, ": "))
	}
	fmt.Fprint(e.stderr, prompt)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(prompt, ": "), err)
	}
	return string(b), nil
}

// readNewPassword reads a new password, twice on a terminal.
func (e *env) readNewPassword(fromStdin bool) (string, error) {
	pw, err := e.readSecret("New password (at least 12 characters): ", fromStdin)
	if err != nil || fromStdin {
		return pw, err
	}
	again, err := e.readSecret("Repeat it: ", false)
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	return pw, nil
}

// printQR draws s as a QR code with half-block characters, two modules per
// character cell vertically, with a quiet zone, so an authenticator app
// can scan it from the terminal. Hand-written because the barcode library
// renders images, not text.
func printQR(w io.Writer, s string) error {
	code, err := qr.Encode(s, qr.M, qr.Auto)
	if err != nil {
		return fmt.Errorf("encode QR code: %w", err)
	}
	b := code.Bounds()
	dark := func(x, y int) bool {
		if x < b.Min.X || x >= b.Max.X || y < b.Min.Y || y >= b.Max.Y {
			return false
		}
		r, _, _, _ := code.At(x, y).RGBA()
		return r < 0x8000
	}
	const quiet = 2
	var sb strings.Builder
	for y := b.Min.Y - quiet; y < b.Max.Y+quiet; y += 2 {
		for x := b.Min.X - quiet; x < b.Max.X+quiet; x++ {
			top, bottom := dark(x, y), dark(x, y+1)
			// Light modules are drawn as blocks so the code reads on dark terminals.
			switch {
			case !top && !bottom:
				sb.WriteRune('█')
			case !top && bottom:
				sb.WriteRune('▀')
			case top && !bottom:
				sb.WriteRune('▄')
			default:
				sb.WriteRune(' ')
			}
		}
		sb.WriteByte('\n')
	}
	_, err = io.WriteString(w, sb.String())
	return err
}

// isTerminal reports whether stdin is an interactive terminal.
func (e *env) isTerminal() bool {
	f, ok := e.stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
