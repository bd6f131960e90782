package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// readLine asks a question on stderr and reads one line of answer from
// stdin. It reads byte by byte, not through a buffer, so that what follows
// the line (a one-time code read without echo) stays in stdin.
func (e *env) readLine(prompt string) (string, error) {
	fmt.Fprint(e.stderr, prompt)
	var b strings.Builder
	var one [1]byte
	for b.Len() < 1024 {
		n, err := e.stdin.Read(one[:])
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			b.WriteByte(one[0])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read answer: %w", err)
		}
	}
	return strings.TrimRight(b.String(), "\r"), nil
}
