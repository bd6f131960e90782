package defcreds

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

func detect(t testing.TB, path, src string) []string {
	t.Helper()
	l, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	New(l).Detect(context.Background(), &scan.File{Path: path, Data: []byte(src)}, func(f scan.Finding) {
		got = append(got, fmt.Sprintf("%s@%d %s", f.RuleID, f.Line, f.Match))
	})
	slices.Sort(got)
	return got
}

func TestBundledHasSources(t *testing.T) {
	l, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Defaults) < 40 {
		t.Errorf("only %d defaults", len(l.Defaults))
	}
}

func TestDetect(t *testing.T) {
	for _, tt := range []struct {
		name, path, src string
		want            []string
	}{
		{"env pair", ".env", "RABBITMQ_DEFAULT_USER=guest\nRABBITMQ_DEFAULT_PASS=guest\n", []string{"default-credential/rabbitmq@2 guest / *****"}},
		{"env user differs", ".env", "RABBITMQ_DEFAULT_USER=app\nRABBITMQ_DEFAULT_PASS=guest\n", nil},
		{"env password only implies default user", "prod.env", "GF_SECURITY_ADMIN_PASSWORD='admin'\n", []string{"default-credential/grafana@1 admin / *****"}},
		{"generic pair", ".env", "export DB_USER=admin\nexport DB_PASSWORD=admin\n", []string{"default-credential/generic@2 admin / *****"}},
		{"generic pair different prefix", ".env", "DB_USER=admin\nCACHE_PASSWORD=admin\n", nil},
		{"ini section", "conf/grafana.ini", "[security]\nadmin_user = admin\nadmin_password = admin\n", []string{"default-credential/grafana@3 admin / *****"}},
		{"ini wrong section", "conf/grafana.ini", "[database]\nadmin_password = admin\n", nil},
		{"my.cnf empty root", "my.cnf", "[client]\nuser=root\npassword=\n", []string{"default-credential/mysql@3 root / (empty)"}},
		{"redis.conf commented", "redis.conf", "# requirepass foobared\nrequirepass Xk-92-aa\n", nil},
		{"compose list env", "docker-compose.yml", "services:\n  pg:\n    environment:\n      - POSTGRES_HOST_AUTH_METHOD=trust\n", []string{"default-credential/postgresql@4 postgres / (empty)"}},
		// interlock:allow generic-password base64 of the MinIO default, a fixture
		{"k8s secret data base64", "secret.yaml", "kind: Secret\ndata:\n  MINIO_ROOT_PASSWORD: bWluaW9hZG1pbg==\n", []string{"default-credential/minio@3 minioadmin / ********"}},
		{"tomcat", "tomcat-users.xml", "<tomcat-users>\n<!-- <user username=\"role1\" password=\"role1\"/> -->\n<user username=\"both\" password=\"tomcat\" roles=\"x\"/>\n</tomcat-users>\n", []string{"default-credential/apache-tomcat@3 both / ******"}},
		{"url with scheme default", "notes.md", "use mongodb://admin:admin@db:27017\n", []string{"default-credential/mongodb@1 admin / *****"}},
		{"url root no password", "app.cfg", "dsn = mysql://root@db/app\n", []string{"default-credential/mysql@1 root / (empty)"}},
		{"url placeholder", "app.cfg", "dsn = postgres://postgres:${PW}@db/app\n", nil},
		{"http url is not a DB", "README.md", "see https://root@example.org/x\n", nil},
		{"vagrant insecure key", "home/vagrant/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFake me@host\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0 vagrant insecure public key\n", []string{"default-credential/vagrant-ssh-key@2 Vagrant insecure public key"}},
		{"spring properties", "application.properties", "spring.rabbitmq.username=guest\nspring.rabbitmq.password=guest\n", []string{"default-credential/rabbitmq@2 guest / *****"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, detect(t, tt.path, tt.src)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzConfigParsers(f *testing.F) {
	f.Add(".env", "A=b\nexport C='d'\n[x]\ne: f\n")
	f.Add("docker-compose.yml", "services:\n  a:\n    environment: [A=b, C=d]\n---\nkind: Secret\ndata: {x: eHh4}\n")
	f.Add("tomcat-users.xml", "<user username=\"a\" password=\"b\"/><!--")
	f.Add("x.txt", "redis://:foobared@h amqp://guest:guest@h")
	f.Fuzz(func(t *testing.T, name, data string) {
		l, _ := Bundled()
		New(l).Detect(context.Background(), &scan.File{Path: name, Data: []byte(data)}, func(f scan.Finding) {
			if f.Line < 1 {
				t.Fatalf("finding without a line: %+v", f)
			}
		})
	})
}
