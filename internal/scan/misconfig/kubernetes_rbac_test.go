package misconfig

import (
	"slices"
	"testing"
)

// TestRBACReadsThroughYAMLIndirection writes RBAC objects the way someone
// hiding a grant from a reviewer (or from this scanner) would: verbs,
// rules and subjects that come from YAML anchors, aliases and merge keys,
// which the API server resolves all the same, and manifests in flow
// (JSON) style. Each must be reported where the grant is.
func TestRBACReadsThroughYAMLIndirection(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      string
	}{
		{"verbs from an anchor", `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: n}
rules:
  - apiGroups: [""]
    resources: [configmaps]
    verbs: &all ["*"]
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: *all
`, "k8s-rbac-wildcard-all@8"},
		{"rule merged from another", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
rules:
  - &base
    apiGroups: [""]
    resources: [pods]
    verbs: [get, list]
  - <<: *base
    resources: [secrets]
`, "k8s-rbac-cluster-secrets@9"},
		{"resource from an aliased scalar", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: r
  annotations: {note: &np nodes/proxy}
rules:
  - apiGroups: [""]
    resources: [nodes, *np]
    verbs: [get]
`, "k8s-rbac-node-proxy@7"},
		{"whole rules list aliased", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: r
  labels: &rules
    - {apiGroups: [""], resources: [pods/exec], verbs: [create]}
rules: *rules
`, "k8s-rbac-pod-exec@6"},
		{"subject name from an anchor", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: b
  labels: {who: &anon system:anonymous}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
  - {kind: User, name: *anon}
`, "k8s-rbac-anonymous-binding@8"},
		{"flow style manifest", `{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
 "metadata": {"name": "b"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
 "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}]}
`, "k8s-rbac-default-sa-cluster-admin@4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := detect(t, "rbac.yaml", tc.src); !slices.Contains(got, tc.want) {
				t.Errorf("want %s, got %v", tc.want, got)
			}
		})
	}
}
