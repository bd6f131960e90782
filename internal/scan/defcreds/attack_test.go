package defcreds

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAttackPrefilter: YAML that sets a product's default credential in a
// shape the line-based prefilter (worthParsing) does not read is still
// parsed and reported: the prefilter may save time, never a finding.
func TestAttackPrefilter(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		name, path, src string
		want            []string
	}{
		{"compose flow mapping", "docker-compose.yml",
			"services:\n  db:\n    image: postgres:16\n    environment: {POSTGRES_USER: postgres, POSTGRES_PASSWORD: postgres}\n",
			[]string{"default-credential/postgresql@4 postgres / ********"}},
		{"compose quoted list entry", "docker-compose.yml",
			"services:\n  db:\n    image: mysql:8\n    environment:\n      - \"MYSQL_ROOT_PASSWORD=root\"\n",
			[]string{"default-credential/mysql@5 root / ****"}},
		{"compose JSON-style mapping", "compose.yaml",
			"services:\n  mq:\n    environment: {\"RABBITMQ_DEFAULT_USER\": \"guest\", \"RABBITMQ_DEFAULT_PASS\": \"guest\"}\n",
			[]string{"default-credential/rabbitmq@3 guest / *****"}},
		{"secret kind quoted", "minio-secret.yaml",
			"apiVersion: v1\nkind: \"Secret\"\ndata:\n  MINIO_ROOT_PASSWORD: " + b64("minioadmin") + "\n",
			[]string{"default-credential/minio@4 minioadmin / ********"}},
		{"secret beside a config map holding alert templates", "monitoring.yaml",
			"apiVersion: v1\nkind: ConfigMap\ndata:\n  alert.tmpl: 'instance {{ $labels.instance }} down'\n---\napiVersion: v1\nkind: Secret\ndata:\n  MINIO_ROOT_PASSWORD: " + b64("minioadmin") + "\n",
			[]string{"default-credential/minio@9 minioadmin / ********"}},
		{"password in a block scalar", "values-prod.yml",
			"nms:\n  username: apc\n  password: |-\n    apc\n",
			[]string{"default-credential/vendor-list@3 apc / ***"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, detect(t, tt.path, tt.src)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkPrefilterOneLongLine: a 10 MB line of "password: " costs the
// prefilter its length once, not once per setting on it.
func BenchmarkPrefilterOneLongLine(b *testing.B) {
	l, err := Bundled()
	if err != nil {
		b.Fatal(err)
	}
	d := New(l)
	data := []byte(strings.Repeat("password: ", 1_000_000))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d.worthParsing(data)
	}
}
