package misconfig

import "bytes"

// topLevel reads the top-level keys of a YAML document line by line, as
// the prefilters need them, without decoding it: the values of its
// top-level "kind" keys, and whether the document is plain enough for
// that reading to be the YAML's own. A document is plain when its first
// line of content is at column 0, and every line at column 0 is blank, a
// comment, a document marker, a block sequence entry or a plain key
// ("name:") outside any flow collection or quoted string that spans
// lines: then the column-0 key lines are exactly the document's top-level
// keys. Anything else (flow style, quoted or aliased keys, "kind :", a
// byte order mark, an indented root, a column-0 line inside a string) is
// not plain, and the document must be decoded: YAML written to slip past a
// line-oriented reading is checked all the same.
func topLevel(doc []byte) (kinds []string, plain bool) {
	var st flowState
	block := -1 // indent of a block scalar's header line, or -1
	content := false
	for len(doc) > 0 {
		line := doc
		if i := bytes.IndexByte(doc, '\n'); i >= 0 {
			line = doc[:i]
			doc = doc[i+1:]
		} else {
			doc = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		indent := 0
		for indent < len(line) && (line[indent] == ' ' || line[indent] == '\t') {
			indent++
		}
		if indent == len(line) {
			continue
		}
		body := line[indent:]
		if block >= 0 && indent > block {
			continue // text of a block scalar: quotes and brackets are text
		}
		block = -1
		if indent == 0 && body[0] != '#' {
			if st.open() {
				return kinds, false
			}
			switch c := line[0]; {
			case isDocStart(line):
				// A node on the marker's line ("--- {kind: Pod}") is not
				// read here.
				if rest := bytes.TrimSpace(line[3:]); len(rest) > 0 && rest[0] != '#' {
					return kinds, false
				}
				continue
			case c == '-' && (len(line) == 1 || line[1] == ' ' || line[1] == '\t'):
			default:
				k := plainKeyLen(line)
				if k < 0 {
					return kinds, false
				}
				if string(line[:k]) == "kind" {
					v := line[k+1:]
					if c := bytes.Index(v, []byte(" #")); c >= 0 {
						v = v[:c]
					}
					kinds = append(kinds, string(bytes.TrimSpace(v)))
				}
			}
			content = true
		} else if !content && body[0] != '#' && !st.open() {
			return kinds, false // an indented root
		}
		flow, header := false, false
		for _, c := range body {
			switch c {
			case '"', '\'', '{', '[', ']', '}':
				flow = true
			case '|', '>':
				header = true
			}
		}
		if flow || st.open() {
			st.scan(line)
		}
		if header && !st.open() && blockHeader(body) {
			block = indent
		}
	}
	return kinds, true
}

// blockHeader reports whether a line ends with a block scalar's header
// ("key: |", "- >-", "key: |2 # comment").
func blockHeader(body []byte) bool {
	if c := bytes.Index(body, []byte(" #")); c >= 0 {
		body = body[:c]
	}
	body = bytes.TrimRight(body, " \t-+0123456789")
	return len(body) > 0 && (body[len(body)-1] == '|' || body[len(body)-1] == '>') &&
		(len(body) == 1 || body[len(body)-2] == ' ' || body[len(body)-2] == '\t')
}

// plainKeyLen returns the length of the plain key a column-0 line starts
// with ("name:" then a space, a tab or the end of the line), or -1.
func plainKeyLen(line []byte) int {
	for i, c := range line {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_':
		case i > 0 && (c == '.' || c == '-' || c == '/'):
		case c == ':' && i > 0 && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t'):
			return i
		default:
			return -1
		}
	}
	return -1
}

// flowState is where a YAML line leaves the flow collections and quoted
// strings that span lines.
type flowState struct {
	depth int
	quote byte // the quote of a string left open, or 0
}

func (s *flowState) open() bool { return s.depth > 0 || s.quote != 0 }

// scan follows one line. A quote opens a string only where a node starts
// (the line's start, after "[", "{", ",", ": ", "- ", "? ", or after a tag
// or an anchor), as in YAML: the apostrophe of "it's" does not.
func (s *flowState) scan(line []byte) {
	atStart := s.quote == 0
	for i := 0; i < len(line); i++ {
		c := line[i]
		if s.quote != 0 {
			switch {
			case s.quote == '"' && c == '\\':
				i++
			case c == s.quote && s.quote == '\'' && i+1 < len(line) && line[i+1] == '\'':
				i++
			case c == s.quote:
				s.quote, atStart = 0, false
			}
			continue
		}
		switch {
		case c == ' ' || c == '\t':
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return
		case atStart && (c == '"' || c == '\''):
			s.quote = c
		case c == '{' || c == '[':
			s.depth++
			atStart = true
		case c == '}' || c == ']':
			if s.depth > 0 {
				s.depth--
			}
			atStart = false
		case c == ',':
			atStart = true
		case c == ':' && s.depth > 0, (c == ':' || c == '-' || c == '?') && (i+1 == len(line) || line[i+1] == ' ' || line[i+1] == '\t'):
			atStart = true
		case atStart && (c == '!' || c == '&'):
			// A tag or an anchor: the node starts after it.
			for i+1 < len(line) && line[i+1] != ' ' && line[i+1] != '\t' {
				i++
			}
		default:
			atStart = false
		}
	}
}

// BlankYAMLComments returns YAML with its whole-line comments blanked
// (newlines kept, so errors keep their line numbers). A chart's
// values.yaml is mostly comments (bitnami's are 85 %), and a YAML decoder
// spends half its time on them. Lines inside block scalars and inside
// quoted strings that span lines are kept: there a "#" is text. Strings
// are followed as YAML writes them (escapes, ” in single quotes, a quote
// that opens a string only where a node starts), so a crafted values file
// cannot make a "#" line inside a string look like a comment.
func BlankYAMLComments(src []byte) []byte {
	out := make([]byte, 0, len(src))
	var st flowState
	block := -1 // lines indented more than this are a block scalar's text
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line = src[:i+1]
		}
		src = src[len(line):]
		indent := 0
		for indent < len(line) && line[indent] == ' ' {
			indent++
		}
		body := bytes.TrimRight(line[indent:], " \t\r\n")
		switch {
		case block >= 0 && (len(body) == 0 || indent > block):
			out = append(out, line...)
			continue
		case st.quote != 0:
			out = append(out, line...)
			st.scan(line)
			continue
		}
		block = -1
		if len(body) > 0 && body[0] == '#' {
			out = append(out, '\n')
			continue
		}
		out = append(out, line...)
		st.scan(line)
		if !st.open() && blockHeader(body) {
			block = indent
			if body[0] == '|' || body[0] == '>' {
				// A header on a line of its own: its text may be as
				// indented as the header itself.
				block = 0
			}
		}
	}
	return out
}
