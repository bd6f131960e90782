package policy

import (
	"github.com/interlock-dev/interlock/internal/usererr"
)

// Bounds on policy text, checked before any text reaches cedar-go.
//
// cedar-go parses, folds and converts expressions recursively, one Go
// call (usually several) per level of the expression tree, and a goroutine
// whose stack passes the runtime's limit kills the whole process: it is a
// fatal error, not a panic that recover could catch. Measured with
// cedar-go v1.9.2, `(`×400,000 overflows in the parser and a chain of
// about 500,000 unary minus signs, `.a` member accesses or `+` operators
// overflows in its constant folding — all within the 1 MiB body limit.
// Depths up to 100,000 of each survived, so the bounds below leave a wide
// margin while no policy a person writes comes near them.
const (
	// maxPolicyBytes bounds a policy text.
	maxPolicyBytes = 1 << 20
	// MaxPolicyNesting bounds how deeply brackets ( [ { may nest.
	MaxPolicyNesting = 64
	// MaxPolicyOperators bounds the operators (and the keywords that build
	// expressions: if, has, like, is, in) in one statement. Operators
	// without brackets also nest — `!!!!x`, `a.b.c.d`, `1+1+1` — so the
	// depth of a statement's expression tree is at most its bracket
	// depth plus its operator count.
	MaxPolicyOperators = 10_000
)

// checkBounds refuses policy text that could exhaust the stack or the CPU
// of the cedar-go compiler. It is a small hand-written scanner because
// the only parser that could tell us the depth is cedar-go's, and running
// it is exactly what must not happen first. It knows just enough Cedar
// lexing to be exact about what it counts: string literals (with
// backslash escapes) and // comments are skipped, and statements end at a
// ';' outside brackets. It may over-count (a subtraction and a negation
// look alike), never under-count.
func checkBounds(text string) error {
	if len(text) > maxPolicyBytes {
		return usererr.New(usererr.TooLarge, "policy_too_large", "the policy is %d bytes; the limit is %d", len(text), maxPolicyBytes)
	}
	line, statement := 1, 1
	depth, operators := 0, 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '\n':
			line++
		case c == '"':
			for i++; i < len(text) && text[i] != '"'; i++ {
				switch text[i] {
				case '\\':
					i++ // the escaped character, whatever it is
				case '\n':
					line++
				}
			}
		case c == '/' && i+1 < len(text) && text[i+1] == '/':
			for i < len(text) && text[i] != '\n' {
				i++
			}
			i-- // let the loop see the newline
		case c == '(' || c == '[' || c == '{':
			depth++
			if depth > MaxPolicyNesting {
				return usererr.New(usererr.Invalid, "policy_too_deep",
					"the policy nests brackets more than %d deep at line %d (statement %d); split the condition into simpler ones", MaxPolicyNesting, line, statement)
			}
		case c == ')' || c == ']' || c == '}':
			if depth > 0 {
				depth-- // an unbalanced bracket is cedar-go's to report, with its position
			}
		case c == ';' && depth == 0:
			statement++
			operators = 0
		case isOperatorByte(c):
			// "&&", "<=", "==" and the like count once: skip the second byte.
			if i+1 < len(text) && (text[i+1] == '&' || text[i+1] == '|' || text[i+1] == '=') {
				i++
			}
			operators++
		case isIdentStart(c):
			j := i
			for j < len(text) && isIdentByte(text[j]) {
				j++
			}
			switch text[i:j] {
			case "if", "has", "like", "is", "in":
				operators++
			}
			i = j - 1
		default:
			continue
		}
		if operators > MaxPolicyOperators {
			return usererr.New(usererr.Invalid, "policy_too_complex",
				"statement %d of the policy (around line %d) has more than %d operators; split it into several simpler statements", statement, line, MaxPolicyOperators)
		}
	}
	return nil
}

func isOperatorByte(c byte) bool {
	switch c {
	case '!', '-', '+', '*', '&', '|', '=', '<', '>', '.':
		return true
	}
	return false
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }
