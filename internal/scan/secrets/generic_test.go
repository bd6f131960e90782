package secrets

import "testing"

func TestIsIdentExpr(t *testing.T) {
	for in, want := range map[string]bool{
		"os.Getenv(":      true,
		"cfg.Secret":      true,
		"self->token":     true,
		"Foo::BAR":        true,
		"params[:pw]":     true,
		"x":               true,
		"s3cr3t-value":    false,
		"9abc":            false,
		"a.":              false,
		"hunter2!":        false,
		"https://x":       false,
		"Zq8-nB4w-Lx2-Tt": false,
	} {
		if got := isIdentExpr(in); got != want {
			t.Errorf("isIdentExpr(%q) = %v, want %v", in, got, want)
		}
	}
}
