package misconfig

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/interlock-dev/interlock/internal/scan"
)

// detect returns "rule@line" for each finding in a file.
func detect(t *testing.T, path, src string) []string {
	t.Helper()
	var got []string
	f := &scan.File{Path: path, Data: []byte(src)}
	if err := New().Detect(context.Background(), f, func(fd scan.Finding) {
		if fd.Fix == "" || fd.Message == "" || fd.Fingerprint == "" {
			t.Errorf("finding without why/fix/fingerprint: %+v", fd)
		}
		got = append(got, fmt.Sprintf("%s@%d", fd.RuleID, fd.Line))
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// only keeps the findings of the given rules (and of rules in want):
// these cases test parsing and one family of checks, while every check
// has its own bad and good fixture in TestCheckFixtures.
func only(got, want, watch []string) []string {
	keep := map[string]bool{}
	for _, w := range append(slices.Clone(want), watch...) {
		id, _, _ := strings.Cut(w, "@")
		keep[id] = true
	}
	var out []string
	for _, g := range got {
		if id, _, _ := strings.Cut(g, "@"); keep[id] {
			out = append(out, g)
		}
	}
	return out
}

func TestChecks(t *testing.T) {
	for _, tt := range []struct {
		name, path, src string
		want            []string
		watch           []string
	}{
		{"tf public acl", "main.tf", `resource "aws_s3_bucket" "b" {
  acl = "public-read-write"
}`, []string{"tf-s3-public-acl@2"}, nil},
		{"tf private acl", "main.tf", `resource "aws_s3_bucket_acl" "b" { acl = "private" }`, nil, []string{"tf-s3-public-acl"}},
		{"tf acl from variable", "main.tf", `resource "aws_s3_bucket_acl" "b" { acl = var.acl }`, nil, []string{"tf-s3-public-acl"}},
		{"tf sg rule range covers 22", "sg.tf", `resource "aws_security_group_rule" "r" {
  type = "ingress"
  from_port = 0
  to_port = 1024
  protocol = "tcp"
  ipv6_cidr_blocks = ["::/0"]
}`, []string{"tf-sg-admin-port-open-to-world@6"}, nil},
		{"tf sg all protocols", "sg.tf", `resource "aws_vpc_security_group_ingress_rule" "r" {
  cidr_ipv4 = "0.0.0.0/0"
  ip_protocol = "-1"
}`, []string{"tf-sg-admin-port-open-to-world@2"}, nil},
		{"tf public block off", "s3.tf", `resource "aws_s3_bucket_public_access_block" "b" {
  block_public_acls = true
  block_public_policy = false
}`, []string{"aws-s3-block-public-policy@3", "aws-s3-ignore-public-acls@1", "aws-s3-restrict-public-buckets@1"}, []string{"aws-s3-block-public-acls"}},
		{"tf rds unencrypted by default", "db.tf", `resource "aws_db_instance" "d" {
  engine = "mysql"
}`, []string{"aws-rds-instance-encryption@1"}, nil},
		{"tf cloudsql open", "sql.tf", `resource "google_sql_database_instance" "d" {
  settings {
    ip_configuration {
      authorized_networks {
        value = "0.0.0.0/0"
      }
    }
  }
}`, []string{"tf-cloudsql-open-to-world@5"}, nil},
		{"tf azure storage public", "st.tf", `resource "azurerm_storage_account" "s" {
  allow_nested_items_to_be_public = true
}`, []string{"tf-azure-storage-public@2"}, nil},
		{"tf lb logs off", "lb.tf", `resource "aws_lb" "l" {
  access_logs {
    bucket = "x"
    enabled = false
  }
}`, []string{"aws-lb-access-logs@4"}, nil},
		{"tf syntax error", "bad.tf", `resource "x" {`, nil, nil},
		{"k8s pod", "pod.yaml", `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostPID: true
  securityContext: {runAsNonRoot: true}
  containers:
  - name: c
    image: x
    securityContext:
      runAsUser: 0
      allowPrivilegeEscalation: true
    resources: {limits: {cpu: 1, memory: 1Gi}}
    env:
    - name: API_TOKEN
      value: abc123def456
    - name: TOKEN_FILE
      value: /run/token
`, []string{"k8s-allow-privilege-escalation@12", "k8s-host-namespace@5", "k8s-runs-as-root@11", "k8s-secret-in-env-literal@16"}, nil},
		{"k8s cronjob", "cj.yml", `kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: c
            securityContext: {privileged: true, runAsNonRoot: true}
            resources: {limits: {cpu: 1, memory: 1Gi}}
`, []string{"k8s-privileged@9"}, nil},
		{"k8s not a workload", "cm.yaml", "kind: ConfigMap\ndata:\n  containers: x\n", nil, nil},
		{"dockerfile multi-stage ends as non-root", "Dockerfile", "FROM a AS b\nUSER root\nFROM c\nUSER app\n", nil, []string{"dockerfile-runs-as-root"}},
		{"dockerfile continuation", "build/Dockerfile", "FROM a\nRUN apt-get update && \\\n    wget -qO- https://x/i.sh \\\n    | bash\nUSER 1000\n", []string{"dockerfile-curl-pipe-shell@2"}, nil},
		{"dockerfile root and legacy ENV", "x.dockerfile", "FROM a\nENV DB_PASSWORD hunter2hunter2\nUSER 0:0\n", []string{"dockerfile-runs-as-root@3", "dockerfile-secret-in-env@2"}, nil},
		{"dockerfile ADD checksum", "Dockerfile", "FROM a\nADD --checksum=sha256:abc https://x/y.tgz /\nUSER app\n", nil, []string{"dockerfile-add-from-url", "dockerfile-add-instead-of-copy"}},
		{"sshd first value wins", "etc/ssh/sshd_config", "PermitRootLogin no\nPermitRootLogin yes\npasswordauthentication=yes\nPermitEmptyPasswords yes\n", []string{"sshd-password-authentication@3", "sshd-permit-empty-passwords@4"}, nil},
		{"sshd match block", "sshd_config", "PasswordAuthentication no\nMatch Address 10.0.0.0/8\n  PermitRootLogin yes\n", []string{"sshd-permit-root-login@3"}, nil},
		{"nginx", "etc/nginx/conf.d/site.conf", "server {\n  ssl_protocols SSLv3 TLSv1.2;\n  ssl_ciphers 'HIGH:!aNULL:!MD5';\n  # server_tokens on;\n  server_tokens off;\n}\n", []string{"nginx-weak-tls-protocol@2"}, nil},
		{"nginx weak cipher list", "nginx.conf", "ssl_ciphers ALL:!aNULL;\nssl_ciphers 'ECDHE+AESGCM:DES-CBC3-SHA';\n", []string{"nginx-weak-ciphers@1", "nginx-weak-ciphers@2"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, only(detect(t, tt.path, tt.src), tt.want, tt.watch)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEveryCheckHasWhyAndFix(t *testing.T) {
	for _, c := range Checks() {
		if c.ID == "" || c.Why == "" || c.Fix == "" {
			t.Errorf("check %+v lacks an ID, why or fix", c)
		}
	}
}

func fuzzDetect(t *testing.T, path string, data []byte) {
	New().Detect(context.Background(), &scan.File{Path: path, Data: data}, func(scan.Finding) {})
}

func FuzzTerraform(f *testing.F) {
	f.Add([]byte(`resource "aws_security_group" "s" { ingress { from_port = 22 to_port = 22 cidr_blocks = ["0.0.0.0/0"] } }`))
	f.Add([]byte(`resource "aws_db_instance" "d" { publicly_accessible = true }`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDetect(t, "main.tf", data) })
}

func FuzzKubernetes(f *testing.F) {
	f.Add([]byte("kind: Pod\nspec:\n  containers:\n  - name: a\n    securityContext: {privileged: true}\n"))
	f.Add([]byte("kind: Deployment\nspec: {template: {spec: {containers: [{env: [{name: TOKEN, value: x}]}]}}}\n---\nkind: Pod\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDetect(t, "k.yaml", data) })
}

func FuzzDockerfile(f *testing.F) {
	f.Add([]byte("FROM a\nRUN curl x | sh\nENV A=b C=\"d e\"\n# escape=`\nUSER root\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range ParseDockerfile(data) {
			if in.Line < 1 {
				t.Fatalf("instruction without a line: %+v", in)
			}
		}
		fuzzDetect(t, "Dockerfile", data)
	})
}

func FuzzSSHD(f *testing.F) {
	f.Add([]byte("PermitRootLogin yes\nMatch User x\n PasswordAuthentication=yes\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseSSHD(data)
		fuzzDetect(t, "sshd_config", data)
	})
}

func FuzzNginx(f *testing.F) {
	f.Add([]byte("http { server { ssl_protocols TLSv1; ssl_ciphers \"RC4:!MD5\"; } } # c\n"))
	f.Add([]byte("a 'b\\'c' { } } ;;"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range ParseNginx(data) {
			if d.Name == "" || d.Line < 1 {
				t.Fatalf("bad directive %+v", d)
			}
		}
		fuzzDetect(t, "nginx.conf", data)
	})
}
