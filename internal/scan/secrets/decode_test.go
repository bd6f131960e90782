package secrets

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestDecodedFindingsPointAtTheEncodedValue checks that a secret found only
// after decoding is reported at the line and column of its encoded form,
// says it was encoded, and carries neither the encoded nor the decoded
// secret in clear.
func TestDecodedFindingsPointAtTheEncodedValue(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	g := fakeGen{rand.New(rand.NewPCG(7, 7))}
	token := "gh" + "p_" + g.pick(alnum, 36)
	enc := base64.StdEncoding.EncodeToString([]byte(token))
	for _, tc := range []struct {
		name, path, text string
		line, col        int
	}{
		{"basic header holding a token", "client.http", "GET /\nAuthorization: Basic " + enc + "\n", 2, 22},
		{"kubernetes secret data", "secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gh\ndata:\n  token: " + enc + "\n", 6, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := detect(t, d, tc.path, tc.text)
			if len(got) != 1 {
				t.Fatalf("findings = %v, want one", got)
			}
			f := got[0]
			if f.Line != tc.line || f.Column != tc.col {
				t.Errorf("at %d:%d, want %d:%d (the encoded value)", f.Line, f.Column, tc.line, tc.col)
			}
			if !strings.HasSuffix(f.Message, "(base64-encoded)") {
				t.Errorf("message %q does not say the secret was encoded", f.Message)
			}
			if strings.Contains(f.Match, token[4:20]) || strings.Contains(f.Match, enc[4:20]) {
				t.Errorf("match %q is not redacted", f.Match)
			}
		})
	}
}

// TestKubernetesSecretTemplateIsNotDecoded checks that a Secret whose data
// is rendered by a template, and a ConfigMap holding base64, stay quiet:
// only the data: values of kind Secret are decoded.
func TestKubernetesSecretTemplateIsNotDecoded(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	pw := base64.StdEncoding.EncodeToString([]byte("Tq8vLm2XzR4wYp6N"))
	for name, text := range map[string]string{
		"template":  "kind: Secret\ndata:\n  password: {{ .Values.password | b64enc }}\n",
		"configmap": "kind: ConfigMap\ndata:\n  blob: " + pw + "\n",
	} {
		if got := detect(t, d, "chart/templates/x.yaml", text); len(got) != 0 {
			t.Errorf("%s: findings %v, want none", name, got)
		}
	}
	if got := detect(t, d, "chart/templates/x.yaml", "kind: Secret\ndata:\n  blob: "+pw+"\n"); len(got) != 1 {
		t.Errorf("kind Secret with the same data: findings %v, want one", got)
	}
}

// TestEncodingDoesNotHideASecret is written as someone who wants a
// credential past the scanner: each case re-encodes or re-frames a live
// token in a way people do by accident (and a bypasser would on purpose).
func TestEncodingDoesNotHideASecret(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	g := fakeGen{rand.New(rand.NewPCG(9, 9))}
	token := "sk_" + "live_" + g.pick(alnum, 24)
	b64 := base64.StdEncoding.EncodeToString([]byte(token))
	for name, text := range map[string]string{
		"secret with kind after data, quoted, tabs": "apiVersion: v1\ndata:\n\tstripe: \"" + b64 + "\"\nkind: \"secret\"\n",
		"secret value in a folded block":            "kind: Secret\ndata:\n  stripe: |\n    " + b64 + "\n",
		"basic header in a curl line":               "curl -H \"Authorization: Basic " + b64 + "\" https://api.internal",
		"escaped JSON inside a string":              `cfg := "{\"stripe_key\": \"` + token + `\"}"`,
		"Makefile conditional assignment":           "STRIPE_KEY ?= " + token,
		"Go typed var with backticks":               "var stripeKey string = `" + token + "`",
	} {
		if got := detect(t, d, "deploy/app.yaml", text); len(got) == 0 {
			t.Errorf("%s: not found in %q", name, text)
		}
	}
}
