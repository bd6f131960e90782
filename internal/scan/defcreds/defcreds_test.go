package defcreds

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	products := map[string]bool{}
	for _, v := range l.Vendors {
		products[strings.ToLower(v.Product)] = true
	}
	if len(l.Vendors) < 2000 || len(products) < 1000 {
		t.Errorf("the vendor list has %d pairs over %d products, want at least 2,000 over 1,000", len(l.Vendors), len(products))
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
		{"vendor list pair", ".env", "UPS_USER=apc\nUPS_PASSWORD=apc\n", []string{"default-credential/vendor-list@2 apc / ***"}},
		{"vendor list pair, user differs", ".env", "UPS_USER=ops\nUPS_PASSWORD=apc\n", nil},
		{"vendor list pair in yaml", "values-prod.yml", "nms:\n  username: apc\n  password: apc\n", []string{"default-credential/vendor-list@3 apc / ***"}},
		{"helm values: empty means generated", "charts/db/values.yaml", "auth:\n  rootUser: root\n  rootPassword: \"\"\n", nil},
		{"compose: empty root password", "docker-compose.yml", "x:\n  rootUser: root\n  rootPassword: \"\"\n", []string{"default-credential/generic@3 root / (empty)"}},
		{"cisco username type 0", "switch-01.cfg", "hostname sw1\nusername admin privilege 15 password 0 cisco\nusername ops secret 5 $1$abcd$xyz\n", []string{"default-credential/vendor-list@2 admin / *****"}},
		{"cisco enable password", "running-config", "enable password cisco\n", []string{"default-credential/network-device@1 enable / *****"}},
		{"cisco enable secret hashed", "running-config", "enable secret 9 $9$abc\n", nil},
		{"snmp default community", "router.conf", "snmp-server community public RO\nsnmp-server community Zq8-rrt RW\n", []string{"default-credential/snmp-community@1 snmp community public"}},
		{"ado.net sa empty", "Web.config", "<add name=\"db\" connectionString=\"Server=db;Database=app;User ID=sa;Password=;\" />\n", []string{"default-credential/microsoft-sql-server@1 sa / (empty)"}},
		{"jdbc query params", "app.groovy", "def url = \"jdbc:mysql://db/app?user=root&password=root\"\n", []string{"default-credential/generic@1 root / ****"}},
		{"odbc placeholder", "odbc.ini.tmpl", "Driver=x;Uid=sa;Pwd=${DB_PW};\n", nil},
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

// TestEveryPasswordKeyPassesThePrefilter: mayConfigure skips files that
// hold none of its words, so a password key without one would never be
// matched.
func TestEveryPasswordKeyPassesThePrefilter(t *testing.T) {
	l, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l.Defaults {
		for _, k := range d.PasswordKeys {
			if !mayConfigure([]byte(k)) {
				t.Errorf("%s: password key %q has none of the prefilter's words; add one to settingWords", d.Product, k)
			}
		}
	}
}
