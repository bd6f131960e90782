package misconfig

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apparentlymart/go-textseg/v15/textseg"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Long heredocs and hclsyntax.
//
// hclsyntax's lexer emits a heredoc as one string token per line (more
// where a line holds "$" or "%"), and its parser then melds consecutive
// literals pairwise: each meld copies the string built so far and shifts
// the rest of the token slice (meldConsecutiveStringLiterals in
// hclsyntax/parser_template.go, hcl v2.25.0, the newest release). A
// heredoc of n lines thus costs O(n²): a 1 MB IAM policy in one heredoc
// took ~5 s to parse. Its lexer also measures every byte in grapheme
// clusters, which makes even a linear pass over 10 MB cost a second.
//
// So before parsing, each long heredoc made only of text (no ${…} or
// %{…}: what big policies, scripts and certificates are) is cut
// out of the source and replaced by a short quoted placeholder, followed
// by as many newlines as the heredoc spanned so that every later line
// keeps its number. After parsing, the placeholder's literal in the syntax
// tree is given the heredoc's value, computed with hclsyntax's own rules:
// text heredocs hold no escapes, and <<- removes the fewest leading spaces
// (counted in grapheme clusters) of the non-blank lines. In a heredoc
// (<<, not <<-) with template sequences, each long run of whole text lines
// is cut out the same way, as an interpolation of a placeholder ("$${"
// unescaped). A heredoc that no line closes is reported as the parse error
// it is without parsing. Where the scan
// below is not sure of the syntax around a heredoc it stops rewriting, and
// where a placeholder does not come back as a whole expression the file is
// parsed as it is. TestTerraformHeredocFlattenMatchesHCL checks the result
// against hclsyntax itself.

// minFlattenLines is the heredoc length from which a heredoc is cut out:
// below it neither the quadratic term nor the lexing cost matters.
const minFlattenLines = 16

// placeholderMark is in every placeholder's value; a source that already
// holds it is parsed as it is.
const placeholderMark = "ilk-heredoc-placeholder"

// textHeredoc is a heredoc cut out of the source: data[start:end] is its
// opener, body and closing marker (not the closing newline).
type textHeredoc struct {
	start, end int
	value      string
	// inTemplate marks a run of text lines inside a heredoc with template
	// sequences: data[start:end] is the run, whole lines but the last
	// newline, and its placeholder is an interpolation.
	inTemplate bool
}

// parseTFFast parses Terraform source with its long text heredocs cut out
// (see above). flattened reports whether any was; ok is false when the
// result cannot be trusted, and the caller then parses data as it is.
func parseTFFast(data []byte, name string, minLines int) (f *hcl.File, diags hcl.Diagnostics, flattened, ok bool) {
	if !bytes.Contains(data, []byte("<<")) || bytes.Contains(data, []byte(placeholderMark)) {
		return nil, nil, false, false
	}
	docs, unterminated := findTextHeredocs(data, name, minLines)
	if unterminated >= 0 {
		// hclsyntax would fail too, after melding every line of the rest
		// of the file into the heredoc, pairwise.
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unterminated template string",
			Detail: "A heredoc is not closed before the end of the file."}}, false, true
	}
	if len(docs) == 0 {
		return nil, nil, false, false
	}
	f, diags, ok = parseWithCutouts(data, name, docs)
	return f, diags, true, ok
}

// parseWithCutouts parses data with each of docs replaced by a placeholder
// and gives each placeholder's literal its heredoc's value. ok is false
// unless every placeholder came back exactly once as a whole expression.
func parseWithCutouts(data []byte, name string, docs []textHeredoc) (f *hcl.File, diags hcl.Diagnostics, ok bool) {
	src := make([]byte, 0, len(data))
	copied := 0
	for k, d := range docs {
		src = append(src, data[copied:d.start]...)
		if d.inTemplate {
			src = append(src, "${"...) // newlines inside ${…} are not text
		}
		src = fmt.Appendf(src, `"\u0000%s%d"`, placeholderMark, k)
		for range bytes.Count(data[d.start:d.end], []byte("\n")) {
			src = append(src, '\n')
		}
		if d.inTemplate {
			src = append(src, '}')
		}
		copied = d.end
	}
	src = append(src, data[copied:]...)
	f, diags = hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() || f == nil {
		return nil, nil, false
	}
	body, isBody := f.Body.(*hclsyntax.Body)
	if !isBody {
		return nil, nil, false
	}
	// Each placeholder is inserted once: one that does not come back as a
	// whole expression landed inside other text or was lost.
	seen := make([]int, len(docs))
	hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		e, isTmpl := n.(*hclsyntax.TemplateExpr)
		if !isTmpl || len(e.Parts) != 1 {
			return nil
		}
		lit, isLit := e.Parts[0].(*hclsyntax.LiteralValueExpr)
		if !isLit || lit.Val.Type() != cty.String {
			return nil
		}
		num, isPlaceholder := strings.CutPrefix(lit.Val.AsString(), "\x00"+placeholderMark)
		k, err := strconv.Atoi(num)
		if !isPlaceholder || err != nil || k < 0 || k >= len(docs) || strconv.Itoa(k) != num {
			return nil
		}
		seen[k]++
		lit.Val = cty.StringVal(docs[k].value)
		return nil
	})
	for _, n := range seen {
		if n != 1 {
			return nil, nil, false
		}
	}
	return f, diags, true
}

// findTextHeredocs returns the heredocs of at least minLines lines that
// hold only text, in source order. It follows the lexical structure
// hclsyntax's scanner does (comments, quoted strings and their ${…}
// sequences, heredocs), and at anything it does not model exactly (a
// non-ASCII heredoc marker, an unterminated heredoc, invalid UTF-8 in a
// heredoc, a heredoc with template sequences whose end hclsyntax cannot
// confirm cheaply) it stops and returns what it found before.
// unterminated is the offset of a heredoc that no line of the rest of the
// file closes (hclsyntax cannot parse such a file), else -1.
func findTextHeredocs(data []byte, name string, minLines int) (docs []textHeredoc, unterminated int) {
	// frames holds, for each open ${…} or %{…} inside a quoted string,
	// the brace depth within it; the innermost is last. In a string when
	// inString is set.
	var frames []int
	inString := false
	for i := 0; i < len(data); {
		c := data[i]
		if inString {
			switch {
			case c == '\\':
				i += 2
			case c == '"':
				inString = false
				i++
			case (c == '$' || c == '%') && i+2 < len(data) && data[i+1] == c && data[i+2] == '{':
				i += 3 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < len(data) && data[i+1] == '{':
				frames = append(frames, 0)
				inString = false
				i += 2
			default:
				i++
			}
			continue
		}
		switch {
		case c == '#' || (c == '/' && i+1 < len(data) && data[i+1] == '/'):
			nl := bytes.IndexByte(data[i:], '\n')
			if nl < 0 {
				return docs, -1
			}
			i += nl + 1
		case c == '/' && i+1 < len(data) && data[i+1] == '*':
			end := bytes.Index(data[i+2:], []byte("*/"))
			if end < 0 {
				return docs, -1
			}
			i += 2 + end + 2
		case c == '"':
			inString = true
			i++
		case c == '{' && len(frames) > 0:
			frames[len(frames)-1]++
			i++
		case c == '}' && len(frames) > 0:
			if frames[len(frames)-1] == 0 {
				frames = frames[:len(frames)-1]
				inString = true
			} else {
				frames[len(frames)-1]--
			}
			i++
		case c == '<' && i+1 < len(data) && data[i+1] == '<':
			found, next, sure := readHeredoc(data, i, name, minLines)
			if next < 0 {
				return nil, i
			}
			if !sure {
				return docs, -1
			}
			docs = append(docs, found...)
			i = next
		default:
			i++
		}
	}
	return docs, -1
}

// readHeredoc reads the heredoc whose "<<" is at data[i] and returns what
// to cut out of it: the whole heredoc if it is text of at least minLines
// lines, else, in a heredoc with template sequences, its runs of at least
// minLines text lines. "<<" that opens no heredoc (two less-than signs) is
// stepped over. next is where scanning resumes, or -1 for a heredoc that
// no later line closes. sure is false where the syntax is not modelled
// exactly.
func readHeredoc(data []byte, i int, name string, minLines int) (docs []textHeredoc, next int, sure bool) {
	p := i + 2
	flush := p < len(data) && data[p] == '-'
	if flush {
		p++
	}
	idStart := p
	for p < len(data) {
		b := data[p]
		if b >= utf8.RuneSelf {
			return nil, 0, false // a Unicode marker: not modelled
		}
		if b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || p > idStart && (b == '-' || b >= '0' && b <= '9') {
			p++
			continue
		}
		break
	}
	marker := data[idStart:p]
	if p < len(data) && data[p] == '\r' {
		p++
	}
	if len(marker) == 0 || p >= len(data) || data[p] != '\n' {
		return nil, i + 2, true
	}
	bodyStart := p + 1
	templated := false
	for ls := bodyStart; ls < len(data); {
		nl := bytes.IndexByte(data[ls:], '\n')
		if nl < 0 {
			return nil, -1, true // the last line, without a newline, cannot close it
		}
		line := data[ls : ls+nl+1]
		if bytes.Contains(line, []byte("${")) || bytes.Contains(line, []byte("%{")) {
			templated = true
		}
		// hclsyntax's closing rule: a line that is one token (no template
		// sequence), ends in a newline, and is the marker once trimmed.
		if !templated && bytes.Equal(bytes.TrimSpace(line), marker) {
			end := ls + nl
			if end > ls && data[end-1] == '\r' {
				end--
			}
			body := data[bodyStart:ls]
			if !utf8.Valid(body) {
				return nil, 0, false
			}
			if bytes.Count(data[i:end], []byte("\n")) < minLines {
				return nil, end, true
			}
			return []textHeredoc{{start: i, end: end, value: heredocValue(body, flush)}}, end, true
		}
		if templated {
			if !flush {
				if runs, end, ok := templatedRuns(data, bodyStart, marker, minLines); ok {
					return runs, end, true
				}
			}
			next, sure := readTemplatedHeredoc(data, i, name, marker)
			return nil, next, sure
		}
		ls += nl + 1
	}
	return nil, -1, true
}

// readTemplatedHeredoc finds the end of a heredoc with template sequences
// by lexing it with hclsyntax, up to each line that may close it (a
// sequence may span lines). It gives up after a few tries: the rest of
// the file is then parsed as it is. Without any such line the heredoc is
// unterminated (next -1).
func readTemplatedHeredoc(data []byte, i int, name string, marker []byte) (next int, sure bool) {
	tries := 0
	for ls := i; ls < len(data) && tries < 4; {
		nl := bytes.IndexByte(data[ls:], '\n')
		if nl < 0 {
			break
		}
		line := data[ls : ls+nl+1]
		ls += nl + 1
		if !bytes.Equal(bytes.TrimSpace(line), marker) {
			continue
		}
		tries++
		toks, _ := hclsyntax.LexConfig(data[i:ls], name, hcl.InitialPos)
		depth := 0
		for _, t := range toks {
			switch t.Type {
			case hclsyntax.TokenOHeredoc:
				depth++
			case hclsyntax.TokenCHeredoc:
				depth--
				if depth == 0 {
					return i + t.Range.End.Byte, true
				}
			}
		}
	}
	if tries == 0 {
		return -1, true
	}
	return 0, false
}

// templatedRuns reads the body of a heredoc (<<, not <<-) with template
// sequences from bodyStart, following the sequences (their strings and
// braces), and returns its runs of at least minLines whole lines of text
// and the end of its closing marker. Without a flush, a run's value is its
// text with $${ and %%{ unescaped, so it can be cut out whole. ok is false
// at anything not modelled (a comment or heredoc inside a sequence, the end
// of the file): the caller then steps over the heredoc without cutting.
func templatedRuns(data []byte, bodyStart int, marker []byte, minLines int) (runs []textHeredoc, end int, ok bool) {
	// frames: for each open sequence, its brace depth (>= 0), or -1 for a
	// quoted string inside it; empty in the heredoc's text.
	var frames []int
	runStart, runLines, prevLs := -1, 0, -1
	// A run ends before its last newline, which stays text: the line after
	// it must still begin a line (a closing marker is only seen there).
	endRun := func(at int) {
		if runStart >= 0 && runLines >= minLines {
			runs = append(runs, textHeredoc{start: runStart, end: at - 1, value: unescapeTemplateText(data[runStart : at-1]), inTemplate: true})
		}
		runStart, runLines = -1, 0
	}
	for ls := bodyStart; ls < len(data); {
		nl := bytes.IndexByte(data[ls:], '\n')
		if nl < 0 {
			return nil, 0, false
		}
		line := data[ls : ls+nl+1]
		atStart := len(frames) == 0
		if atStart && (bytes.HasPrefix(line, []byte("${~")) || bytes.HasPrefix(line, []byte("%{~"))) && runStart >= 0 {
			// "~" trims the text before it, the run's last line: that line
			// stays text.
			if runStart == prevLs {
				runStart, runLines = -1, 0
			} else {
				runLines--
				endRun(prevLs)
			}
		}
		prevLs = ls
		if atStart && bytes.Equal(bytes.TrimSpace(line), marker) {
			endRun(ls)
			end := ls + nl
			if data[end-1] == '\r' {
				end--
			}
			return runs, end, true
		}
		text := atStart
		for j := 0; j < len(line); j++ {
			c := line[j]
			if len(frames) == 0 {
				if (c == '$' || c == '%') && j+2 < len(line) && line[j+1] == c && line[j+2] == '{' {
					j += 2
				} else if (c == '$' || c == '%') && j+1 < len(line) && line[j+1] == '{' {
					frames = append(frames, 0)
					text = false
					j++
				}
				continue
			}
			top := &frames[len(frames)-1]
			switch {
			case *top < 0: // in a quoted string
				switch {
				case c == '\\':
					j++
				case c == '"':
					frames = frames[:len(frames)-1]
				case (c == '$' || c == '%') && j+2 < len(line) && line[j+1] == c && line[j+2] == '{':
					j += 2
				case (c == '$' || c == '%') && j+1 < len(line) && line[j+1] == '{':
					frames = append(frames, 0)
					j++
				}
			case c == '"':
				frames = append(frames, -1)
			case c == '{':
				*top++
			case c == '}':
				if *top == 0 {
					frames = frames[:len(frames)-1]
				} else {
					*top--
				}
			case c == '#' || c == '/' && j+1 < len(line) && (line[j+1] == '/' || line[j+1] == '*') || c == '<' && j+1 < len(line) && line[j+1] == '<':
				return nil, 0, false
			}
		}
		if text && utf8.Valid(line) {
			if runStart < 0 {
				runStart = ls
			}
			runLines++
		} else {
			endRun(ls)
		}
		ls += nl + 1
	}
	return nil, 0, false
}

// unescapeTemplateText is the value of template text: $${ and %%{ stand
// for ${ and %{, read left to right as hclsyntax's scanner does.
func unescapeTemplateText(b []byte) string {
	if !bytes.Contains(b, []byte("${")) && !bytes.Contains(b, []byte("%{")) {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for j := 0; j < len(b); j++ {
		if (b[j] == '$' || b[j] == '%') && j+2 < len(b) && b[j+1] == b[j] && b[j+2] == '{' {
			out = append(out, b[j], '{')
			j += 2
			continue
		}
		out = append(out, b[j])
	}
	return string(out)
}

// heredocValue is the string hclsyntax makes of a text heredoc's body:
// the body itself, and for a flush heredoc (<<-) each non-blank line
// without the fewest leading spaces of those lines, counted in grapheme
// clusters (flushHeredocTemplateParts in hclsyntax).
func heredocValue(body []byte, flush bool) string {
	if !flush {
		return string(body)
	}
	lines := strings.SplitAfter(string(body), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	minSpaces := -1
	var adjust []int
	for k, v := range lines {
		trimmed := strings.TrimLeftFunc(v, unicode.IsSpace)
		// A line of only spaces is blank: it neither counts nor is trimmed.
		if len(trimmed) == 0 && strings.HasSuffix(v, "\n") {
			continue
		}
		n := leadingGraphemes(v[:len(v)-len(trimmed)])
		if minSpaces < 0 || n < minSpaces {
			minSpaces = n
		}
		adjust = append(adjust, k)
	}
	for _, k := range adjust {
		lines[k] = lines[k][cutGraphemes(lines[k], minSpaces):]
	}
	return strings.Join(lines, "")
}

// leadingGraphemes counts the grapheme clusters of a run of spaces; a run
// of ASCII blanks (the usual case) is one cluster per byte.
func leadingGraphemes(s string) int {
	if isASCIIBlanks(s) {
		return len(s)
	}
	n, _ := textseg.TokenCount([]byte(s), textseg.ScanGraphemeClusters)
	return n
}

// cutGraphemes returns the byte length of the first n grapheme clusters
// of s.
func cutGraphemes(s string, n int) int {
	if n <= len(s) && isASCIIBlanks(s[:n]) && (n == len(s) || s[n] < utf8.RuneSelf) {
		return n
	}
	b := []byte(s)
	cut := 0
	for range n {
		adv, _, _ := textseg.ScanGraphemeClusters(b[cut:], true)
		cut += adv
	}
	return cut
}

func isASCIIBlanks(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}
