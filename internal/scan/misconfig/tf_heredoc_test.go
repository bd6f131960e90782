package misconfig

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestTerraformHeredocFlattenMatchesHCL checks the heredoc rewrite against
// hclsyntax itself: every attribute of the rewritten file has the value
// and the line hclsyntax gives the original, for heredocs of every form
// (flush and not, CRLF, escapes, blank and space-only lines, wide spaces,
// inside lists, calls and objects, with interpolations left alone).
func TestTerraformHeredocFlattenMatchesHCL(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		rewrite   bool
	}{
		{"plain", "policy = <<EOF\n{\n  \"Action\": \"s3:*\",\n  \"Path\": \"C:\\\\dir\\n\"\n}\nEOF\nafter = 1\n", true},
		{"flush", "x = <<-EOT\n    a\n      b\n  \n\n\t c\n    EOT\ny = \"z\"\n", true},
		{"flush blank lines only", "x = <<-EOT\n   \n\n  EOT\ny = 2\n", true},
		{"escapes", "e = <<EOF\n$${x} %%{y} $$ %% $ { $} \\\" \\n \\u0041 a$${\n%%{\nEOF\nf = 3\n", true},
		{"flush escapes at line start", "e = <<-EOF\n  $${x}\n    %%{y}\n  EOF\nf = 3\n", false},
		{"dollar and percent without brace", "e = <<-EOF\n  $x %y $$ %% {\n    $\n  %\n   \nEOF\nf = 3\n", true},
		{"dollar brace in text", "e = <<EOF\n$$${ and %%%{ and ${\"\"} \nEOF\n", false},
		{"crlf", "c = <<EOF\r\nl1\r\n  l2\r\nEOF\r\nd = 2\r\n", true},
		{"crlf flush", "c = <<-EOF\r\n  l1\r\n    l2\r\n  EOF\r\nd = 2\r\n", true},
		{"list call object", "l = [<<EOF\nx\nEOF\n, \"y\"]\nf = jsonencode(<<EOF\nz\nEOF\n)\no = {\n  k = <<EOF\nv\nEOF\n  m = 1\n}\nafter = true\n", true},
		{"interpolated left alone", "i = <<EOF\n${var.x}\nEOF\nj = <<EOF\ntext\nEOF\nk = 1\n", true},
		{"unicode spaces", "u = <<-EOF\n\u3000\u3000wide\n  \u00e9\u0301x\n   \u0301y\n EOF\nv = 1\n", true},
		{"indented closer", "a = <<EOF\n  x\n  EOF\nb = 1\n", true},
		{"empty", "e = <<EOF\nEOF\nf = 1\n", true},
		{"triple dollar", "e = <<EOF\n$$$${ and %%%%{ x\nEOF\nf = 1\n", true},
		{"templated runs", "t = <<EOF\nline a\nline b\n${var.x} mid\nline c\nline d\n  ${join(\",\", [\"}\", \"{\"])}\nafter $${x}\nEOF\nz = 1\n", true},
		{"multi-line sequence", "t = <<EOF\na\n${jsonencode({\n  k = \"v\"\n  EOF = 1\n})}\nb\nc\nEOF\nz = 2\n", true},
		{"strip markers", "t = <<EOF\n%{ for x in [1, 2] ~}\nitem ${x}\n%{ endfor ~}\ntail   \nmore   \n${~ \"x\"}\nlast  \n%{~ if true }y%{ endif }\nEOF\nz = 3\n", true},
		{"templated flush left alone", "t = <<-EOF\n  a\n  ${x}\n    b\n  EOF\nz = 4\n", false},
		{"quotes backslashes tabs", "q = <<EOF\n\"quoted\"\t\\\\ back \\ slash \\t\nEOF\nr = 1\n", true},
		{"strings and comments around", "a = \"x # y \\\" <<EOF\" // c <<EOF\n/* <<EOF\n*/ b = <<EOF\n/* \" # body\nEOF\nc = \"${\"}\"}\" # <<X\nd = <<-EOF\n  \"\n  EOF\ne = 1\n", true},
		{"nested blocks", "resource \"aws_iam_policy\" \"p\" {\n  name = \"p\"\n  policy = <<-POLICY\n    {\"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\"}]}\n  POLICY\n  tags = { a = <<EOF\nb\nEOF\n  }\n}\nresource \"x\" \"y\" {\n  z = 1\n}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, flattened, ok := parseTFFast([]byte(tc.src), "t.tf", 1)
			if flattened != tc.rewrite || (flattened && !ok) {
				t.Fatalf("flattened = %v (trusted %v), want %v", flattened, ok, tc.rewrite)
			}
			if !ok {
				return
			}
			plain, diags := hclsyntax.ParseConfig([]byte(tc.src), "t.tf", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			want := hclAttrs(plain.Body.(*hclsyntax.Body))
			got := hclAttrs(f.Body.(*hclsyntax.Body))
			if !slices.Equal(got, want) {
				t.Errorf("flattened parse differs\n got  %q\n want %q", got, want)
			}
		})
	}
}

// hclAttrs lists every attribute of a file, depth first, as
// "line:path=value" with the value as hclsyntax evaluates it.
func hclAttrs(body *hclsyntax.Body) []string {
	var out []string
	var walk func(prefix string, b *hclsyntax.Body)
	walk = func(prefix string, b *hclsyntax.Body) {
		for _, a := range b.Attributes {
			v, d := a.Expr.Value(nil)
			val := "<error>"
			if !d.HasErrors() {
				val = v.GoString()
			}
			out = append(out, fmt.Sprintf("%d:%s%s=%s", a.SrcRange.Start.Line, prefix, a.Name, val))
		}
		for _, blk := range b.Blocks {
			out = append(out, fmt.Sprintf("%d:%s%s%v", blk.TypeRange.Start.Line, prefix, blk.Type, blk.Labels))
			walk(prefix+blk.Type+".", blk.Body)
		}
	}
	walk("", body)
	slices.Sort(out)
	return out
}

// TestTerraformLongHeredoc checks a file past the rewrite's threshold end
// to end: a check that reads a long heredoc policy still sees its content,
// and a finding after the heredoc keeps its line number.
func TestTerraformLongHeredoc(t *testing.T) {
	var b strings.Builder
	b.WriteString("resource \"aws_iam_policy\" \"big\" {\n  policy = <<-EOF\n    {\"Statement\": [\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "      {\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::bucket-%d/*\"},\n", i)
	}
	b.WriteString("      {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}\n    ]}\n  EOF\n}\n")
	sgLine := strings.Count(b.String(), "\n") + 2
	b.WriteString("resource \"aws_security_group\" \"sg\" {\n  ingress {\n    from_port   = 22\n    to_port     = 22\n    protocol    = \"tcp\"\n    cidr_blocks = [\"0.0.0.0/0\"]\n  }\n}\n")
	src := b.String()
	if _, _, flattened, ok := parseTFFast([]byte(src), "main.tf", minFlattenLines); !flattened || !ok {
		t.Fatalf("a 5000-line heredoc was not cut out (flattened %v, trusted %v)", flattened, ok)
	}
	got := detect(t, "main.tf", src)
	for _, want := range []string{"aws-iam-policy-wildcard@2", fmt.Sprintf("tf-sg-admin-port-open-to-world@%d", sgLine+4)} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s in %v", want, got)
		}
	}
}

// TestTerraformHeredocFlattenFallsBack checks that the rewrite steps
// aside, and the file is parsed as it is, where it is not sure: markers it
// does not model, heredocs in comments and strings, sources that already
// hold the placeholder, and unparsable files.
func TestTerraformHeredocFlattenFallsBack(t *testing.T) {
	body := strings.Repeat("x\n", 3)
	for _, tc := range []struct {
		name, src string
		flattened bool
	}{
		{"unicode marker", "a = <<ÉOF\n" + body + "ÉOF\nb = <<EOF\n" + body + "EOF\n", false},
		{"in a line comment", "# a = <<EOF\n" + body + "b = 1\n", false},
		{"in a block comment", "/* a = <<EOF\n" + body + "EOF\n */\nb = 1\n", false},
		{"in a string", "a = \"<<EOF\"\nb = 1\n", false},
		{"placeholder in source", "a = \"ilk-heredoc-placeholder0\"\nb = <<EOF\n" + body + "EOF\n", false},
		{"unterminated", "a = <<EOF\n" + body, false},
		{"after a templated heredoc", "a = <<EOF\n${var.x}\n" + body + "EOF\nb = <<EOF\n" + body + "EOF\nc = 1\n", true},
		{"heredoc in interpolation in string", "a = \"${jsonencode(<<EOF\n" + body + "EOF\n)}\"\nb = 1\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, flattened, ok := parseTFFast([]byte(tc.src), "t.tf", 2)
			if flattened != tc.flattened {
				t.Errorf("flattened = %v, want %v", flattened, tc.flattened)
			}
			plain, diags := hclsyntax.ParseConfig([]byte(tc.src), "t.tf", hcl.InitialPos)
			if ok && !diags.HasErrors() && !slices.Equal(hclAttrs(f.Body.(*hclsyntax.Body)), hclAttrs(plain.Body.(*hclsyntax.Body))) {
				t.Errorf("trusted a parse that differs from hclsyntax's")
			}
		})
	}
}

// TestTerraformHeredocCutoutsVerified checks the safety net behind the
// scan: a placeholder that lands inside other text (the scan misread the
// syntax) or does not come back at all makes the rewrite untrusted.
func TestTerraformHeredocCutoutsVerified(t *testing.T) {
	src := []byte("a = <<EOF\nxx HERE yy\nEOF\nb = 1\n# NOTE\n")
	at := func(s string) textHeredoc {
		i := strings.Index(string(src), s)
		return textHeredoc{start: i, end: i + len(s), value: "v"}
	}
	if _, _, ok := parseWithCutouts(src, "t.tf", []textHeredoc{at("1")}); !ok {
		t.Error("a placeholder standing as a whole expression was not trusted")
	}
	if _, _, ok := parseWithCutouts(src, "t.tf", []textHeredoc{at("HERE")}); ok {
		t.Error("a placeholder inside a heredoc's text was trusted")
	}
	if _, _, ok := parseWithCutouts(src, "t.tf", []textHeredoc{at("1"), at("NOTE")}); ok {
		t.Error("a placeholder inside a comment (lost) was trusted")
	}
}

// TestTerraformUnterminatedHeredoc checks that a heredoc no line closes
// is reported as the parse error hclsyntax gives, without hclsyntax
// melding the rest of the file into it (quadratic: hours for 10 MB).
func TestTerraformUnterminatedHeredoc(t *testing.T) {
	for _, src := range []string{
		"token = <<EOT\n" + strings.Repeat("token = <<EOT\n", 50),
		"a = <<EOF\n${var.x}\n" + strings.Repeat("text\n", 50),
		"a = <<EOF\nx\nEOF",
		"a = 1\nb = <<-EOF\n  x\n  EOFX\n",
	} {
		if _, diags := hclsyntax.ParseConfig([]byte(src), "t.tf", hcl.InitialPos); !diags.HasErrors() {
			t.Fatalf("hclsyntax parses %q: the case is wrong", src[:20])
		}
		f, diags, _, ok := parseTFFast([]byte(src), "t.tf", minFlattenLines)
		if !ok || f != nil || !diags.HasErrors() {
			t.Errorf("%q: want the unterminated heredoc reported (got file %v, diags %v, trusted %v)", src[:20], f != nil, diags, ok)
		}
	}
}

// heredocFile generates Terraform of about size bytes: IAM policies, each
// a heredoc of lines lines.
func heredocFile(size, lines int) []byte {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "resource \"aws_iam_policy\" \"p%d\" {\n  name   = \"p%d\"\n  policy = <<-EOF\n    {\"Statement\": [\n", i, i)
		for j := range lines {
			fmt.Fprintf(&b, "      {\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::bucket-%d/*\"},\n", j)
		}
		b.WriteString("      {\"Effect\": \"Deny\", \"Action\": \"*\", \"Resource\": \"*\"}\n    ]}\n  EOF\n}\n")
	}
	return []byte(b.String())
}

// BenchmarkTerraformHeredocs parses heredoc-heavy files with parseTF and,
// for comparison, with hclsyntax alone (what parseTF did before long
// heredocs were flattened):
//
//	go test ./internal/scan/misconfig -run '^$' -bench TerraformHeredocs -benchtime 3x
func BenchmarkTerraformHeredocs(b *testing.B) {
	for _, shape := range []struct {
		name        string
		size, lines int
	}{
		{"10MB-1000-line-heredocs", 10 << 20, 1000},
		{"1MB-one-heredoc", 1 << 20, 12000},
		{"10MB-20-line-heredocs", 10 << 20, 20},
		{"10MB-unterminated", 10 << 20, -1},
		{"10MB-templated-1000-line-heredocs", 10 << 20, -1000},
	} {
		if shape.lines < -1 {
			// Heredocs with an interpolation on their first line.
			data := []byte(strings.ReplaceAll(string(heredocFile(shape.size, -shape.lines)), "<<-EOF\n", "<<EOF\n${var.prefix}\n"))
			b.Run(shape.name+"/parseTF", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, ok := parseTF(data, "main.tf"); !ok {
						b.Fatal("parse failed")
					}
				}
			})
			continue
		}
		if shape.lines < 0 {
			// One heredoc that never closes: hclsyntax alone takes hours.
			data := []byte(strings.Repeat("token = <<EOT\n", shape.size/14))
			b.Run(shape.name+"/parseTF", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, ok := parseTF(data, "main.tf"); ok {
						b.Fatal("parsed an unterminated heredoc")
					}
				}
			})
			continue
		}
		data := heredocFile(shape.size, shape.lines)
		b.Run(shape.name+"/parseTF", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, ok := parseTF(data, "main.tf"); !ok {
					b.Fatal("parse failed")
				}
			}
		})
		b.Run(shape.name+"/hclsyntax", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, diags := hclsyntax.ParseConfig(data, "main.tf", hcl.InitialPos); diags.HasErrors() {
					b.Fatal(diags)
				}
			}
		})
	}
}

// FuzzTerraformHeredocFlatten compares the heredoc rewrite with hclsyntax
// on arbitrary sources: where it is trusted it must parse what hclsyntax
// parses, to the same values and lines, and fail where hclsyntax fails.
func FuzzTerraformHeredocFlatten(f *testing.F) {
	for _, s := range []string{
		"a = <<EOF\nx\nEOF\nb = 1\n",
		"a = <<-EOF\n  x\n    y\n  EOF\n",
		"a = \"${\"}\"}\" # <<X\nb = <<EOF\n/* \"\nEOF\n",
		"a = <<EOF\n${x}\ny\nEOF\nb = <<EOF\nz\nEOF\n",
		"a = [<<EOF\nx\nEOF\n, 1]\n/* <<EOF\n*/\n",
		"token = <<EOT\ntoken = <<EOT\n",
		"t = <<EOF\na\n${x}\nb\n$${c}\nEOF\n",
		"t = <<EOF\n%{ for x in y ~}\n${x}\n%{ endfor ~}\nz  \n${~ \"w\"}\nEOF\n",
		"t = <<EOF\n${f({\n\"}\" = 1\n})}\nq\nEOF\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 2048 {
			return
		}
		plain, diags := hclsyntax.ParseConfig([]byte(src), "t.tf", hcl.InitialPos)
		got, gotDiags, _, ok := parseTFFast([]byte(src), "t.tf", 1)
		if !ok {
			return
		}
		if diags.HasErrors() != gotDiags.HasErrors() {
			t.Fatalf("hclsyntax errors %v, rewrite errors %v", diags, gotDiags)
		}
		if diags.HasErrors() {
			return
		}
		if !slices.Equal(hclAttrs(got.Body.(*hclsyntax.Body)), hclAttrs(plain.Body.(*hclsyntax.Body))) {
			t.Fatalf("rewrite parses differently:\n got  %q\n want %q", hclAttrs(got.Body.(*hclsyntax.Body)), hclAttrs(plain.Body.(*hclsyntax.Body)))
		}
	})
}
