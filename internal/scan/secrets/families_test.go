package secrets

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// familySample is a generated credential of one provider's documented
// format, with the key it is usually assigned to and the path of the file
// it usually sits in.
type familySample struct {
	rule, key, path, value string
	// syntaxes, if set, restricts the assignment forms (a value with
	// symbols cannot be written bare).
	quotedOnly bool
	// line, if set, is the whole snippet (the format is a URL or a
	// command, not an assigned value).
	line string
}

const (
	digits   = "0123456789"
	upperHex = "0123456789ABCDEF"
	b64url   = alnum + "-_"
)

// familySamples generates one credential per provider family added from
// the provider's documentation (see the rules' source fields). Nothing here
// comes from another scanner's test data.
func familySamples(g fakeGen) []familySample {
	slackCfg := base64.RawStdEncoding.EncodeToString(fmt.Appendf(nil, "2-%s-%s-%s-%s", g.pick(digits, 12), g.pick(digits, 12), g.pick(digits, 13), g.pick(hexa, 64)))
	slackRefresh := base64.RawStdEncoding.EncodeToString(fmt.Appendf(nil, "3-1-%s-%s-%s-%s", g.pick(digits, 12), g.pick(digits, 13), g.pick(digits, 13), g.pick(hexa, 64)))
	ageData := g.pick(bech32Charset, 52)
	age := strings.ToUpper("age-secret-key-1" + ageData + Bech32Checksum("age-secret-key-", ageData))
	return []familySample{
		{rule: "age-secret-key", key: "age_identity", path: "config", value: age},
		{rule: "age-secret-key", path: "keys.txt", line: "# created: 2026-01-01T00:00:00Z\n# public key: age1" + g.pick(bech32Charset, 58) + "\n" + age},
		{rule: "openshift-user-token", key: "oc_token", path: "config", value: "sha256" + "~" + g.pick(b64url, 43)},
		{rule: "openshift-user-token", path: "deploy.sh", line: "oc login --token=sha256" + "~" + g.pick(b64url, 43) + " --server=https://api.ocp.lan:6443"},
		{rule: "trello-api-token", key: "trello_token", path: "config", value: "AT" + "TA" + g.pick(hexa, 64) + g.pick(upperHex, 8)},
		{rule: "trello-token", key: "trello_token", path: "config", value: g.pick(hexa, 64)},
		{rule: "slack-xoxb", key: "slack_bot", path: "config", value: "xox" + "b-" + g.pick(digits, 12) + "-" + g.pick(alnum, 24)},
		{rule: "slack-legacy-token", key: "slack_token", path: "config", value: "xox" + "o-" + g.pick(digits, 11) + "-" + g.pick(digits, 11) + "-" + g.pick(digits, 12) + "-" + g.pick(hexa, 32)},
		{rule: "slack-xoxs", key: "slack_session", path: "config", value: "xox" + "s-" + g.pick(digits, 12) + "-" + g.pick(digits, 10) + "-" + g.pick(digits, 10) + "-" + g.pick(hexa, 10)},
		{rule: "slack-config-token", key: "slack_config", path: "config", value: "xoxe" + ".xoxp-1-" + slackCfg},
		{rule: "slack-config-refresh", key: "slack_refresh", path: "config", value: "xoxe" + "-1-" + slackRefresh},
		{rule: "facebook-access-token", key: "page_access_token", path: "config", value: "EA" + "AM" + g.pick(alnum, 140)},
		{rule: "freemius-secret-key", key: "secret_key", path: "wp-content/plugins/app/init.php", quotedOnly: true, value: "sk" + "_" + g.pick(alnum+"!%&*+-=?@^_~", 29)},
		{rule: "sidekiq-sensitive-url", path: "Gemfile", line: `source "https://` + g.pick(hexa, 8) + ":" + g.pick(hexa, 8) + `@gems.contribsys` + `.com/" do`},
		{rule: "sidekiq-sensitive-url", path: "Gemfile.lock", line: "  remote: https://" + g.pick(hexa, 8) + ":" + g.pick(hexa, 8) + "@enterprise.contribsys" + ".com/"},
		{rule: "mailgun-key", key: "mailgun_api_key", path: "config", value: g.pick(hexa, 32) + "-" + g.pick(hexa, 8) + "-" + g.pick(hexa, 8)},
		{rule: "terraform-password", key: "administrator_login_password", path: "infra/main.tf", quotedOnly: true, value: g.pick(alnum, 18)},
		{rule: "terraform-password", key: "master_password", path: "env/prod.tfvars", quotedOnly: true, value: g.pick(lower, 12)},
	}
}

// familySyntaxes are the assignment forms the family samples are written
// in; the quoted ones also hold values with symbols.
var familySyntaxes = []struct {
	name   string
	quoted bool
}{
	{"ini quoted", true}, {"yaml quoted", true}, {"json", true}, {"go short", true}, {"go backtick", true},
	{"php array", true}, {"make ?=", true}, {"setProperty", true}, {"shell export", true},
	{"ini", false}, {"yaml", false}, {"env in json", false},
}

// familyCases writes every family sample in every syntax it fits.
func familyCases(g fakeGen) []corpusCase {
	var cs []corpusCase
	for _, s := range familySamples(g) {
		if s.line != "" {
			cs = append(cs, corpusCase{name: s.rule + " line", path: s.path, text: s.line, leak: true})
			continue
		}
		for _, syn := range familySyntaxes {
			if s.quotedOnly && !syn.quoted {
				continue
			}
			if strings.HasSuffix(s.path, ".tf") || strings.HasSuffix(s.path, ".tfvars") {
				if syn.name != "ini quoted" {
					continue // HCL has one assignment syntax
				}
			}
			cs = append(cs, corpusCase{name: s.rule + " " + syn.name, path: s.path, text: fill(syntaxes[syn.name], s.key, s.value), leak: true})
		}
	}
	return cs
}

// TestProviderFamilies checks that each provider family's generated
// credentials are reported, once, under that family's rule (not under a
// generic rule), in every syntax; and that the same credential cut short
// is not reported under the family's rule.
func TestProviderFamilies(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	g := fakeGen{rand.New(rand.NewPCG(14, 220))}
	byRule := map[string]int{}
	for _, c := range familyCases(g) {
		want := strings.Fields(c.name)[0]
		byRule[want]++
		got := detect(t, d, c.path, c.text)
		if len(got) != 1 || got[0].RuleID != want {
			t.Errorf("%s: reported %v, want exactly [%s]\n%s", c.name, ruleIDs(got), want, c.text)
		}
	}
	for _, s := range familySamples(g) {
		if s.line != "" || len(s.value) < 24 {
			continue
		}
		short := fill(syntaxes["ini quoted"], s.key, s.value[:len(s.value)*2/3])
		if got := detect(t, d, s.path, short); hasRule(got, s.rule) {
			t.Errorf("%s reported a truncated value: %s", s.rule, short)
		}
	}
	// An age key whose checksum does not verify is not one.
	bad := []byte(familySamples(g)[0].value)
	bad[len(bad)-1] = map[bool]byte{true: 'Q', false: 'P'}[bad[len(bad)-1] != 'Q']
	if got := detect(t, d, "keys.txt", string(bad)); hasRule(got, "age-secret-key") {
		t.Errorf("age key with a broken checksum reported: %s", bad)
	}
	for _, s := range familySamples(g) {
		if byRule[s.rule] == 0 {
			t.Errorf("no case for %s", s.rule)
		}
	}
}

// TestBech32 checks the checksum against BIP 173's own test vectors.
func TestBech32(t *testing.T) {
	for _, s := range []string{
		"A12UEL5L",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
	} {
		if !validBech32(s) {
			t.Errorf("valid BIP 173 string rejected: %s", s)
		}
	}
	for _, s := range []string{"A12UEL5M", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", "1pzry9x8gf", "x1b4n0q5v"} {
		if validBech32(s) {
			t.Errorf("invalid string accepted: %s", s)
		}
	}
	if got := Bech32Checksum("a", ""); got != "2uel5l" {
		t.Errorf("Bech32Checksum(a) = %s, want 2uel5l", got)
	}
}
