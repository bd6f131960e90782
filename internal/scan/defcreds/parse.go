package defcreds

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// lineKVs parses .env, properties, ini/cnf and conf files: "key=value",
// "key: value" (properties), "key value" (redis.conf), with [sections].
func lineKVs(data []byte, properties bool) []kv {
	var out []kv
	section := ""
	off := 0
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i]
			data = data[i+1:]
		} else {
			data = nil
		}
		lineOff := off
		off += len(line) + 1
		t := bytes.TrimSpace(bytes.TrimRight(line, "\r"))
		lead := len(line) - len(bytes.TrimLeft(line, " \t"))
		if len(t) == 0 || t[0] == '#' || t[0] == ';' || t[0] == '!' {
			continue
		}
		if t[0] == '[' && t[len(t)-1] == ']' {
			section = strings.TrimSpace(string(t[1 : len(t)-1]))
			continue
		}
		s := string(t)
		s = strings.TrimPrefix(s, "export ")
		s = strings.TrimPrefix(s, "ENV ")
		s = strings.TrimPrefix(s, "ARG ")
		i := strings.IndexAny(s, "=:")
		sp := strings.IndexAny(s, " \t")
		var key, val string
		switch {
		case i > 0 && (sp < 0 || sp > i || strings.TrimSpace(s[sp:i]) == ""):
			key, val = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
			if !properties && s[i] == ':' && strings.Contains(s[:i], " ") {
				continue
			}
		case sp > 0:
			key, val = s[:sp], strings.TrimSpace(s[sp:])
		default:
			continue
		}
		if strings.ContainsAny(key, " \t\"'") {
			continue
		}
		val = unquote(stripComment(val))
		full := key
		if section != "" {
			full = section + "." + key
		}
		valOff := lineOff + lead + strings.Index(string(t), key) + len(key)
		if vi := bytes.Index(line, []byte(val)); val != "" && vi >= 0 {
			valOff = lineOff + vi
		}
		out = append(out, kv{key: full, value: val, off: valOff, group: section})
	}
	return out
}

func stripComment(v string) string {
	if strings.HasPrefix(v, "\"") || strings.HasPrefix(v, "'") {
		return v
	}
	for _, c := range []string{" #", "\t#", " ;"} {
		if i := strings.Index(v, c); i >= 0 {
			v = v[:i]
		}
	}
	return strings.TrimSpace(v)
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		if u, err := strconv.Unquote(v); err == nil && v[0] == '"' {
			return u
		}
		return v[1 : len(v)-1]
	}
	return v
}

// yamlKVs flattens every YAML document into settings: mapping paths
// ("spring.datasource.password"), compose environment lists
// ("KEY=VALUE"), Kubernetes env entries ({name, value}) and Secret
// data/stringData (data is base64-decoded).
func yamlKVs(data []byte) []kv {
	var out []kv
	lineOffs := lineOffsets(data)
	offOf := func(n *yaml.Node) int {
		if n.Line-1 < len(lineOffs) && n.Line > 0 {
			return lineOffs[n.Line-1] + max(0, n.Column-1)
		}
		return 0
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 0; ; doc++ {
		var root yaml.Node
		if err := dec.Decode(&root); err != nil {
			break
		}
		prefix := strconv.Itoa(doc) + ":"
		isSecret := false
		if len(root.Content) > 0 && root.Content[0].Kind == yaml.MappingNode {
			m := root.Content[0]
			for i := 0; i+1 < len(m.Content); i += 2 {
				if m.Content[i].Value == "kind" && m.Content[i+1].Value == "Secret" {
					isSecret = true
				}
			}
		}
		var walk func(n *yaml.Node, p string)
		walk = func(n *yaml.Node, p string) {
			switch n.Kind {
			case yaml.DocumentNode:
				for _, c := range n.Content {
					walk(c, p)
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					k, v := n.Content[i], n.Content[i+1]
					key := k.Value
					if p != "" {
						key = p + "." + k.Value
					}
					if v.Kind == yaml.ScalarNode {
						val := v.Value
						if isSecret && strings.HasSuffix(p, "data") && !strings.HasSuffix(p, "stringData") {
							if b, err := base64.StdEncoding.DecodeString(val); err == nil {
								val = string(b)
							}
						}
						if v.Tag == "!!null" {
							val = ""
						}
						out = append(out, kv{key: key, value: val, off: offOf(v), group: prefix + p})
						continue
					}
					walk(v, key)
				}
			case yaml.SequenceNode:
				for _, c := range n.Content {
					switch {
					case c.Kind == yaml.ScalarNode && strings.Contains(c.Value, "="):
						k, v, _ := strings.Cut(c.Value, "=")
						out = append(out, kv{key: k, value: v, off: offOf(c), group: prefix + p})
					case c.Kind == yaml.MappingNode && envEntry(c) != nil:
						e := envEntry(c)
						out = append(out, kv{key: e[0].Value, value: e[1].Value, off: offOf(e[1]), group: prefix + p})
					default:
						walk(c, p+"[]")
					}
				}
			}
		}
		walk(&root, "")
	}
	return out
}

// envEntry returns the name and value nodes of a {name: X, value: Y}
// mapping, or nil.
func envEntry(m *yaml.Node) []*yaml.Node {
	var name, value *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case "name":
			name = m.Content[i+1]
		case "value":
			value = m.Content[i+1]
		}
	}
	if name == nil || value == nil || value.Kind != yaml.ScalarNode {
		return nil
	}
	return []*yaml.Node{name, value}
}

func lineOffsets(data []byte) []int {
	offs := []int{0}
	for i, b := range data {
		if b == '\n' {
			offs = append(offs, i+1)
		}
	}
	return offs
}
