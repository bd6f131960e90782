package secrets

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Fake credentials, built at run time so this file holds none: the random
// parts are spliced so no scanner reads them as live tokens.
var (
	fakeGitHubRandom = "jnXd5dGaWprl" + "LWMCOmvtXrCU3ek2ch"
	fakeGitHub       = "ghp_" + fakeGitHubRandom + GitHubChecksum(fakeGitHubRandom)
	fakeAWSKeyID     = "AKIA" + "B3SKCZTKMBF6JDPY"
	fakeAWSSecret    = "Bs06Uu0U+o72t0+b2R5i" + "ytS43KtgBoZZZ16YgHR2"
	fakePGPassword   = "iaQvOEG8" + "qIwxz4cF"
	fakeDBPassword   = "Xk29aaLq" + "0Zz0010"
)

func TestRedactText(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	badCRC := "ghp_" + fakeGitHubRandom + "AAAAAA"
	if badCRC == fakeGitHub {
		t.Fatal("test setup: the bad checksum happens to be right")
	}
	for _, tt := range []struct {
		name    string
		in      string
		want    string
		wantN   int
		secrets []string // must not survive
	}{{
		name:    "github token (source family)",
		in:      "cloning with " + fakeGitHub + " ok\n",
		want:    "cloning with [redacted:github-pat] ok\n",
		wantN:   1,
		secrets: []string{fakeGitHub},
	}, {
		name:    "aws key id and secret (cloud family)",
		in:      "export AWS_ACCESS_KEY_ID=" + fakeAWSKeyID + "\naws_secret_access_key = " + fakeAWSSecret + "\n",
		want:    "export AWS_ACCESS_KEY_ID=[redacted:aws-access-key-id]\naws_secret_access_key = [redacted:aws-secret-access-key]\n",
		wantN:   2,
		secrets: []string{fakeAWSKeyID, fakeAWSSecret},
	}, {
		name:    "database url (database family)",
		in:      "connecting to postgres://app:" + fakePGPassword + "@db.internal:5432/app\n",
		want:    "connecting to postgres://app:[redacted:postgres-url-password]@db.internal:5432/app\n",
		wantN:   1,
		secrets: []string{fakePGPassword},
	}, {
		name:    "generic assignment",
		in:      `db_password: "` + fakeDBPassword + `"` + "\n",
		want:    `db_password: "[redacted:generic-password]"` + "\n",
		wantN:   1,
		secrets: []string{fakeDBPassword},
	}, {
		name:    "generic assignment overlapping a specific token is one span, named by the specific rule",
		in:      "api_token = " + fakeGitHub + "\n",
		want:    "api_token = [redacted:github-pat]\n",
		wantN:   1,
		secrets: []string{fakeGitHub},
	}, {
		name:  "published example key is left",
		in:    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
		want:  "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
		wantN: 0,
	}, {
		name:  "token whose checksum does not verify is left",
		in:    "token " + badCRC + "\n",
		want:  "token " + badCRC + "\n",
		wantN: 0,
	}, {
		name:  "placeholder is left",
		in:    "password = ${DB_PASSWORD}\n",
		want:  "password = ${DB_PASSWORD}\n",
		wantN: 0,
	}, {
		name:  "empty",
		in:    "",
		want:  "",
		wantN: 0,
	}} {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got, n, err := d.RedactText(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("RedactText (-want +got):\n%s", diff)
			}
			if n != tt.wantN {
				t.Errorf("RedactText replaced %d spans, want %d", n, tt.wantN)
			}
			if string(in) != tt.in {
				t.Error("RedactText modified its input")
			}
			for _, s := range tt.secrets {
				if bytes.Contains(got, []byte(s)) {
					t.Errorf("secret %s… left in the output", s[:4])
				}
			}
			// Redacted text has nothing left to redact.
			if again, n2, _ := d.RedactText(context.Background(), got); n2 != 0 {
				t.Errorf("second pass redacted %d more spans: %q", n2, again)
			}
		})
	}
}

// TestRedactTextUnchanged checks that text without secrets comes back
// byte for byte (the same slice), including keyword-dense code and
// invalid UTF-8.
func TestRedactTextUnchanged(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	var b strings.Builder
	for i := range 200 {
		b.WriteString("func handler(w http.ResponseWriter, r *http.Request) { token := r.Header.Get(\"X-Token\"); _ = token }\n")
		b.WriteString("password_file = /etc/app/password\t\xff\xfe sha256:4f2a9c0b1e7d\n")
		if i%7 == 0 {
			b.WriteString("id 6ba931fe-97ea-8c90-cab1-cd30cf3a857b\n")
		}
	}
	in := []byte(b.String())
	got, n, err := d.RedactText(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || !bytes.Equal(got, in) || &got[0] != &in[0] {
		t.Errorf("RedactText changed clean text: n=%d, equal=%v", n, bytes.Equal(got, in))
	}
}

func TestRedactTextCanceled(t *testing.T) {
	d := NewDetector(bundledSet(t), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Enough keyword hits that the detector checks its context.
	in := bytes.Repeat([]byte("api_token = "+fakeGitHub+"\n"), 200)
	out, _, err := d.RedactText(ctx, in)
	if err == nil || out != nil {
		t.Errorf("RedactText on a done context = (%d bytes, %v), want (nil, error)", len(out), err)
	}
}

func TestMergeSpans(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []spanFinding
		want []spanFinding
	}{{
		name: "disjoint spans are sorted",
		in:   []spanFinding{{rule: 2, start: 10, end: 12}, {rule: 1, start: 0, end: 4}},
		want: []spanFinding{{rule: 1, start: 0, end: 4}, {rule: 2, start: 10, end: 12}},
	}, {
		name: "touching spans stay apart",
		in:   []spanFinding{{rule: 1, start: 0, end: 4}, {rule: 2, start: 4, end: 8}},
		want: []spanFinding{{rule: 1, start: 0, end: 4}, {rule: 2, start: 4, end: 8}},
	}, {
		name: "overlap becomes the union, named by the specific rule",
		in:   []spanFinding{{rule: 9, start: 0, end: 6, generic: true}, {rule: 3, start: 2, end: 10}},
		want: []spanFinding{{rule: 3, start: 0, end: 10}},
	}, {
		name: "nested span is absorbed",
		in:   []spanFinding{{rule: 1, start: 0, end: 20}, {rule: 2, start: 5, end: 9}, {rule: 3, start: 19, end: 25}},
		want: []spanFinding{{rule: 1, start: 0, end: 25}},
	}, {
		name: "all generic keeps the first",
		in:   []spanFinding{{rule: 7, start: 3, end: 9, generic: true}, {rule: 8, start: 1, end: 5, generic: true}},
		want: []spanFinding{{rule: 8, start: 1, end: 9, generic: true}},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeSpans(tt.in)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(spanFinding{})); diff != "" {
				t.Errorf("mergeSpans (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBundledDetectorIsShared(t *testing.T) {
	a, err := BundledDetector()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := BundledDetector()
	if a != b {
		t.Error("BundledDetector built a second detector")
	}
}

// BenchmarkRedactText measures redaction of 64 KiB of command output (the
// agent's default output cap): "plain" is ordinary log output with no
// keyword; "keywords" is the worst case for the prefilter, every line
// assigning to a credential-like name (each a generic-rule candidate that
// context filters drop); "secrets" adds a real-looking secret every tenth
// line.
//
//	go test ./internal/scan/secrets -run '^$' -bench RedactText
func BenchmarkRedactText(b *testing.B) {
	d := NewDetector(bundledSet(b), Options{})
	for _, bc := range []struct {
		name  string
		every int
	}{{"plain", -1}, {"keywords", 0}, {"secrets", 10}} {
		var buf bytes.Buffer
		for l := 0; buf.Len() < 64<<10; l++ {
			switch {
			case bc.every > 0 && l%bc.every == 0 && l%20 == 0:
				buf.WriteString("2026-11-29T03:30:01Z INFO auth ok token=" + fakeGitHub + "\n")
			case bc.every > 0 && l%bc.every == 0:
				buf.WriteString("2026-11-29T03:30:01Z INFO export AWS_ACCESS_KEY_ID=" + fakeAWSKeyID + "\n")
			case bc.every < 0:
				buf.WriteString("2026-11-29T03:30:01Z INFO unpacking nginx-common (1.26.3-3) over (1.26.3-2) status=200 bytes=1532\n")
			default:
				buf.WriteString("2026-11-29T03:30:01Z INFO request done path=/v1/ops status=200 token_age_s=31 password_policy=strict bytes=1532\n")
			}
		}
		data := buf.Bytes()
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, _, err := d.RedactText(context.Background(), data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
