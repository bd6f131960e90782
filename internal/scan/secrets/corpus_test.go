package secrets

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// This corpus is the project's own: every secret is generated at test time
// from a seeded generator (so the repository holds no string that looks
// like a live credential), embedded in each assignment and string syntax
// the tokenizer reads and each encoding the decoders undo; negatives are
// the template, reference and key-name forms that must stay quiet.

// corpusCase is one labelled snippet.
type corpusCase struct {
	name, path, text string
	leak             bool
}

type fakeGen struct{ r *rand.Rand }

func (g fakeGen) pick(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	lower = "abcdefghijklmnopqrstuvwxyz0123456789"
	hexa  = "0123456789abcdef"
)

// syntaxes place a key and a value in the assignment forms of many
// languages and formats; {k} is the key, {K} its upper-case form.
var syntaxes = map[string]string{
	"ini":           "{k}={v}",
	"ini quoted":    `{k} = "{v}"`,
	"yaml":          "{k}: {v}",
	"yaml quoted":   "{k}: '{v}'",
	"json":          "{\n  \"{k}\": \"{v}\"\n}",
	"go short":      `{k} := "{v}"`,
	"go var typed":  `var {k} string = "{v}"`,
	"go backtick":   "{k} := `{v}`",
	"csharp":        `string {k} = "{v}";`,
	"java":          `String {k} = "{v}";`,
	"php append":    `${k} .= "{v}";`,
	"php array":     `  "{k}" => "{v}",`,
	"make ?=":       `{K} ?= "{v}"`,
	"make ::=":      `{K} ::= "{v}"`,
	"make :::=":     `{K} :::= "{v}"`,
	"setProperty":   `System.setProperty("{K}", "{v}")`,
	"xml element":   "<{k}>\n    {v}\n</{k}>",
	"shell export":  `export {K}="{v}"`,
	"env in json":   `{"config.ini": "{K}={v}\nDEBUG=true"}`,
	"js fallback":   `const {k} = process.env.{K} || "{v}"`,
	"python kwargs": `client({k}="{v}")`,
	"escaped json":  `body := "{\"{k}\": \"{v}\"}"`,
	"hcl heredoc":   "{k} = <<-EOT\n  {v}\nEOT",
	"ruby heredoc":  "{k} = <<~'KEY'\n  {v}\nKEY",
}

func fill(tmpl, key, value string) string {
	r := strings.NewReplacer("{k}", key, "{K}", strings.ToUpper(key), "{v}", value)
	return r.Replace(tmpl)
}

func buildCorpus() []corpusCase {
	g := fakeGen{rand.New(rand.NewPCG(14, 2026))}
	var cs []corpusCase
	add := func(name, path, text string, leak bool) {
		cs = append(cs, corpusCase{name: name, path: path, text: text, leak: leak})
	}
	// Every syntax, with provider tokens and generic credentials.
	for name, tmpl := range syntaxes {
		add(name+" generic", "config", fill(tmpl, "api_token", g.pick(alnum, 32)), true)
		add(name+" password", "config", fill(tmpl, "db_password", g.pick(alnum, 20)), true)
		add(name+" github", "config", fill(tmpl, "gh_token", "gh"+"p_"+g.pick(alnum, 36)), true)
		add(name+" slack", "config", fill(tmpl, "slack_token", "xox"+"b-"+g.pick("0123456789", 12)+"-"+g.pick("0123456789", 13)+"-"+g.pick(alnum, 24)), true)
		add(name+" stripe", "config", fill(tmpl, "stripe_key", "sk_"+"live_"+g.pick(alnum, 24)), true)
		add(name+" gitlab", "config", fill(tmpl, "gitlab_token", "glp"+"at-"+g.pick(alnum, 20)), true)
		add(name+" npm", "config", fill(tmpl, "npm_token", "np"+"m_"+g.pick(alnum, 36)), true)
		// The same syntaxes holding references must stay quiet.
		add(name+" helm ref", "config", fill(tmpl, "db_password", "{{ .Values.auth.password }}"), false)
		add(name+" terraform ref", "config", fill(tmpl, "db_password", "var.db_password"), false)
		add(name+" env ref", "config", fill(tmpl, "db_password", "${DB_PASSWORD}"), false)
		add(name+" brace ref", "config", fill(tmpl, "access_key", "{SumoAccessKey}"), false)
		add(name+" key name", "config", fill(tmpl, "existingSecretPasswordKey", "solr-password"), false)
		add(name+" go template", "config", fill(tmpl, "rootPassword", ".Values.auth.rootPassword"), false)
		add(name+" sops", "config", fill(tmpl, "api_secret", "ENC[AES256_GCM,data:"+g.pick(alnum, 12)+"]"), false)
	}
	// Encodings.
	jwt := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
		p := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"%s","iat":1700000000}`, g.pick(lower, 10)))
		return h + "." + p + "." + g.pick(alnum, 43)
	}
	for i := range 5 {
		add(fmt.Sprintf("jwt plain %d", i), "config", "Authorization: Bearer "+jwt(), true)
		add(fmt.Sprintf("jwt base64 %d", i), "config", "session: "+base64.StdEncoding.EncodeToString([]byte(jwt())), true)
		tok := "gh" + "p_" + g.pick(alnum, 36)
		add(fmt.Sprintf("basic token %d", i), "config", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(tok)), true)
		up := g.pick(lower, 8) + ":" + g.pick(alnum, 18)
		add(fmt.Sprintf("basic userpass %d", i), "config", "curl -H 'Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(up))+"' https://api.internal", true)
		pw := g.pick(alnum, 24)
		add(fmt.Sprintf("k8s secret %d", i), "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: "+
			base64.StdEncoding.EncodeToString([]byte(pw))+"\n", true)
		add(fmt.Sprintf("url credentials %d", i), "config", "remote = https://deploy:"+g.pick(alnum, 16)+"@git.internal.lan/repo.git", true)
		add(fmt.Sprintf("url low-entropy %d", i), "config", "source https://"+g.pick(hexa, 8)+":"+g.pick(hexa, 8)+"@gems.vendor.lan/", true)
		add(fmt.Sprintf("curl -u %d", i), "deploy.sh", "curl -sf -u admin:"+g.pick(alnum, 14)+" https://registry.internal/v2/", true)
		add(fmt.Sprintf("curl header %d", i), "deploy.sh", "curl -X GET https://deploy.internal/ \\\n  -H \"X-Api-Key: "+g.pick(alnum, 32)+"\"", true)
		add(fmt.Sprintf("curl -u continued %d", i), "deploy.sh", "curl -k https://cache.internal/rest \\\n  -d 'x' \\\n  --user ops:"+g.pick(alnum, 16), true)
		add(fmt.Sprintf("nuget %d", i), "nuget.config", `<add key="ClearTextPassword" value="`+g.pick(alnum, 16)+`" />`, true)
	}
	// Negatives: templates, references, public client keys, key names.
	for i := range 5 {
		add(fmt.Sprintf("helm action %d", i), "templates/secret.yaml", "{{- $rootPassword := .Values.auth.rootPassword }}", false)
		add(fmt.Sprintf("helm value %d", i), "templates/secret.yaml", "  password: {{ .Values.auth.password | b64enc | quote }}", false)
		add(fmt.Sprintf("terraform local %d", i), "main.tf", "  administrator_login_password = local.db_password", false)
		add(fmt.Sprintf("existing secret key %d", i), "values.yaml", `  existingSecretPasswordKey: "solr-password"`, false)
		add(fmt.Sprintf("firebase %d", i), "src/firebase.js", "const firebaseConfig = {\n  apiKey: \"AI"+"za"+g.pick(alnum, 35)+"\",\n  authDomain: \"app.firebaseapp.com\",\n};", false)
		add(fmt.Sprintf("sops %d", i), "secrets.enc.yaml", "password: ENC[AES256_GCM,data:"+g.pick(alnum, 20)+",iv:"+g.pick(alnum, 16)+",type:str]", false)
		add(fmt.Sprintf("k8s secret template %d", i), "secret.yaml", "apiVersion: v1\nkind: Secret\ndata:\n  password: {{ .Values.password | b64enc }}\n", false)
		add(fmt.Sprintf("curl env %d", i), "deploy.sh", `curl -u "$USER:$PASSWORD" https://registry.internal/v2/`, false)
		add(fmt.Sprintf("negated key %d", i), "config", `invalidToken := "`+g.pick(lower, 16)+`"`, false)
		add(fmt.Sprintf("negation-like word %d", i), "config", `badge_token := "`+g.pick(alnum, 24)+`"`, true)
		add(fmt.Sprintf("quoted assignment %d", i), "config", `msg = "token = \"`+g.pick(lower, 20)+`\""`, false)
		add(fmt.Sprintf("helm include %d", i), "templates/secrets.yaml", `{{- $rootPassword := include "common.secrets.passwords.manage" (dict "secret" "db" "key" "root-password") }}`, false)
		add(fmt.Sprintf("enum list %d", i), "crds.yaml", `description: Kind of the values referent, valid values are ('Secret', 'ConfigMap').`, false)
		add(fmt.Sprintf("file name value %d", i), "values.yaml", `  secretKey: thanos.yaml`, false)
		add(fmt.Sprintf("word phrase %d", i), "values.yaml", `  tlsSecret: grafana.local-tls`, false)
		add(fmt.Sprintf("dollar reference %d", i), "values.yaml", `  clientSecret: $oidc.azuread.clientSecret`, false)
		add(fmt.Sprintf("self-naming password %d", i), "values.yaml", `  password: some_pass`, false)
		add(fmt.Sprintf("variable name in URL %d", i), "README.md", `connection-string: mongodb://DB_USER:DB_PASSWORD@mongodb:27017`, false)
		add(fmt.Sprintf("base64 placeholder %d", i), "secret.yaml", `  secret: `+base64.StdEncoding.EncodeToString([]byte("example-app-secret")), false)
	}
	// Provider families added from their documented formats.
	cs = append(cs, familyCases(g)...)
	return cs
}

// TestOwnCorpusRecallPrecision asserts recall and precision of at least 95 %
// on the corpus above, and lists every miss and false alarm.
func TestOwnCorpusRecallPrecision(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	var tp, fn, fp, tn int
	for _, c := range buildCorpus() {
		found := len(detect(t, d, c.path, c.text)) > 0
		switch {
		case c.leak && found:
			tp++
		case c.leak:
			fn++
			t.Logf("missed %s: %q", c.name, c.text)
		case found:
			fp++
			t.Logf("false alarm %s: %q", c.name, c.text)
		default:
			tn++
		}
	}
	recall := float64(tp) / float64(tp+fn)
	precision := float64(tp) / float64(tp+fp)
	t.Logf("corpus: %d leaks, %d clean; recall %.1f%%, precision %.1f%%", tp+fn, fp+tn, 100*recall, 100*precision)
	if recall < 0.95 || precision < 0.95 {
		t.Errorf("recall %.3f, precision %.3f; want both >= 0.95", recall, precision)
	}
	if tp+fn < 150 || fp+tn < 100 {
		t.Errorf("corpus too small: %d leaks, %d clean", tp+fn, fp+tn)
	}
}
