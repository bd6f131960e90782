package misconfig

import (
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Kubernetes RBAC checks: what a Role or ClusterRole grants and whom a
// RoleBinding or ClusterRoleBinding grants it to. Each check names the CIS
// Kubernetes Benchmark section (5.1.x) and the trivy-checks KSV ID it
// corresponds to, so findings map onto what a team already tracks. The
// checks are data (rbacRuleChecks, rbacBindingChecks); the matcher below
// follows the API server's own rule matching: a rule grants a verb on a
// resource when it lists the verb (or "*"), the resource (or "*/sub" for a
// subresource) and the resource's API group (or "*").
var (
	k8sRBACWildcardAll      = defRef("k8s-rbac-wildcard-all", "CIS Kubernetes 5.1.3, AVD-KSV-0044", scan.SeverityCritical, "the role grants every verb on every resource, which is cluster-admin in its scope", "List the resources and verbs the subject needs instead of \"*\".")
	k8sRBACWildcardVerb     = defRef("k8s-rbac-wildcard-verb", "CIS Kubernetes 5.1.3, AVD-KSV-0045", scan.SeverityHigh, "the role grants every verb (\"*\") on a sensitive resource, including ones added by future Kubernetes versions", "List the verbs the subject needs (for example get, list, watch).")
	k8sRBACClusterAllRes    = defRef("k8s-rbac-cluster-all-resources", "CIS Kubernetes 5.1.3, AVD-KSV-0046", scan.SeverityCritical, "the ClusterRole grants access to every resource (\"*\") of core API groups in every namespace, Secrets included", "List the resources the subject needs instead of \"*\".")
	k8sRBACNamespaceAllRes  = defRef("k8s-rbac-namespace-all-resources", "CIS Kubernetes 5.1.3, AVD-KSV-0112", scan.SeverityHigh, "the Role grants access to every resource (\"*\") of core API groups in its namespace, Secrets included", "List the resources the subject needs instead of \"*\".")
	k8sRBACClusterSecrets   = defRef("k8s-rbac-cluster-secrets", "CIS Kubernetes 5.1.2, AVD-KSV-0041", scan.SeverityCritical, "the ClusterRole can read or write Secrets in every namespace, including service account tokens", "Remove secrets from the ClusterRole, or restrict it with resourceNames in a namespaced Role.")
	k8sRBACNamespaceSecrets = defRef("k8s-rbac-namespace-secrets", "CIS Kubernetes 5.1.2, AVD-KSV-0113", scan.SeverityMedium, "the Role can read or write the Secrets of its namespace, including service account tokens", "Restrict the rule with resourceNames to the Secrets the subject needs.")
	k8sRBACWorkloads        = defRef("k8s-rbac-manage-workloads", "CIS Kubernetes 5.1.4, AVD-KSV-0048", scan.SeverityHigh, "the role can create or change pods or the controllers that make them, so it can run any image with any service account of the namespace", "Grant create/update/patch on workloads only to deployment tooling, and enforce Pod Security admission.")
	k8sRBACPodExec          = defRef("k8s-rbac-pod-exec", "CIS Kubernetes 5.1.4, AVD-KSV-0053", scan.SeverityHigh, "the role can exec into pods, which gives a shell with the pod's secrets and service account", "Remove pods/exec (get and create) from the role.")
	k8sRBACPodAttach        = defRef("k8s-rbac-pod-attach", "CIS Kubernetes 5.1.4, AVD-KSV-0054", scan.SeverityHigh, "the role can attach to running containers' terminals", "Remove pods/attach from the role.")
	k8sRBACPodPortForward   = defRef("k8s-rbac-pod-portforward", "CIS Kubernetes 5.1.4, Kubernetes RBAC good practices", scan.SeverityMedium, "the role can port-forward into pods, reaching ports no Service or NetworkPolicy exposes", "Remove pods/portforward from the role.")
	k8sRBACEscalate         = defRef("k8s-rbac-escalate-bind", "CIS Kubernetes 5.1.8, AVD-KSV-0050", scan.SeverityCritical, "the role can escalate or bind roles (or do anything to RBAC objects), which lifts RBAC's own escalation guard", "Remove the escalate, bind and \"*\" verbs on roles, clusterroles, rolebindings and clusterrolebindings.")
	k8sRBACImpersonate      = defRef("k8s-rbac-impersonate", "CIS Kubernetes 5.1.8, AVD-KSV-0043", scan.SeverityCritical, "the role can impersonate users, groups or service accounts, and so act with their permissions (system:masters included)", "Remove the impersonate verb, or restrict it with resourceNames to named, unprivileged identities.")
	k8sRBACBindAnyRole      = defRef("k8s-rbac-bind-any-role", "CIS Kubernetes 5.1.8, AVD-KSV-0051", scan.SeverityCritical, "the role can create RoleBindings and bind any role, so its holder can grant itself any permission in the namespace", "Remove bind on roles/clusterroles, or restrict it with resourceNames to named, unprivileged roles.")
	k8sRBACBindAnyCluster   = defRef("k8s-rbac-bind-any-clusterrole", "CIS Kubernetes 5.1.8, AVD-KSV-0052", scan.SeverityCritical, "the role can create ClusterRoleBindings and bind any ClusterRole, so its holder can make itself cluster-admin", "Remove bind on clusterroles, or restrict it with resourceNames to named, unprivileged ClusterRoles.")
	k8sRBACEditBindings     = defRef("k8s-rbac-edit-bindings", "CIS Kubernetes 5.1.8, AVD-KSV-0055", scan.SeverityMedium, "the role can change existing RoleBindings, adding other users to the roles they grant", "Remove update and patch on rolebindings.")
	k8sRBACWebhooks         = defRef("k8s-rbac-manage-webhooks", "CIS Kubernetes 5.1.12, AVD-KSV-0114", scan.SeverityCritical, "the role can change admission webhooks and policies, which see and may rewrite every object sent to the API server", "Remove write verbs on mutating/validating webhook configurations and admission policies.")
	k8sRBACNodeProxy        = defRef("k8s-rbac-node-proxy", "CIS Kubernetes 5.1.10, AVD-KSV-0047", scan.SeverityHigh, "the role can use nodes/proxy, which reaches the kubelet API (exec in any pod of the node) past audit logging and admission", "Remove nodes/proxy from the role.")
	k8sRBACTokenCreate      = defRef("k8s-rbac-serviceaccount-token", "CIS Kubernetes 5.1.13", scan.SeverityHigh, "the role can mint tokens for service accounts (serviceaccounts/token), and so act as any of them", "Remove create on serviceaccounts/token, or restrict it with resourceNames.")
	k8sRBACCSRApprove       = defRef("k8s-rbac-csr-approval", "CIS Kubernetes 5.1.11", scan.SeverityHigh, "the role can approve certificate signing requests, so it can issue client certificates for any user or group", "Remove update/patch on certificatesigningrequests/approval.")
	k8sRBACCreatePV         = defRef("k8s-rbac-create-persistentvolumes", "CIS Kubernetes 5.1.9", scan.SeverityMedium, "the role can create PersistentVolumes, and a hostPath volume gives access to the node's file system", "Let a StorageClass provision volumes; remove create on persistentvolumes.")
	k8sRBACDeleteLogs       = defRef("k8s-rbac-delete-pod-logs", "AVD-KSV-0042", scan.SeverityMedium, "the role can delete pod logs, which hides what an intruder did", "Remove delete/deletecollection on pods/log.")
	k8sRBACConfigMaps       = defRef("k8s-rbac-manage-configmaps", "AVD-KSV-0049", scan.SeverityLow, "the role can change ConfigMaps, which pods trust as their configuration", "Grant write verbs on configmaps only with resourceNames, to the tooling that owns them.")
	k8sRBACAWSAuth          = defRef("k8s-rbac-manage-aws-auth", "AVD-KSV-0115", scan.SeverityCritical, "the role can change EKS's aws-auth ConfigMap, which maps IAM identities to Kubernetes groups (system:masters included)", "Remove write verbs on the aws-auth ConfigMap; use EKS access entries.")
	k8sRBACNetworking       = defRef("k8s-rbac-manage-networking", "AVD-KSV-0056", scan.SeverityLow, "the role can change Services, Endpoints, Ingresses or NetworkPolicies, and so redirect or open traffic", "Grant write verbs on networking objects only to the tooling that owns them.")
	k8sRBACAnonymousBinding = defRef("k8s-rbac-anonymous-binding", "CIS Kubernetes 5.1.1, AVD-KSV-0122", scan.SeverityCritical, "the binding grants a role to system:anonymous or system:unauthenticated, that is to anyone who can reach the API server", "Remove these subjects from the binding.")
	k8sRBACAuthenticated    = defRef("k8s-rbac-authenticated-binding", "CIS Kubernetes 5.1.1, AVD-KSV-01011", scan.SeverityHigh, "the binding grants a role to system:authenticated, every identity the cluster accepts (on GKE, every Google account)", "Bind the role to named users, groups or service accounts.")
	k8sRBACMastersBinding   = defRef("k8s-rbac-masters-binding", "CIS Kubernetes 5.1.7, AVD-KSV-0123", scan.SeverityCritical, "the binding names system:masters, a group that bypasses RBAC and cannot be revoked", "Remove system:masters from the binding; grant cluster-admin through a ClusterRoleBinding to a named group.")
	k8sRBACClusterAdmin     = defRef("k8s-rbac-cluster-admin-binding", "CIS Kubernetes 5.1.1, AVD-KSV-0111", scan.SeverityHigh, "the binding grants cluster-admin (or admin/edit cluster-wide), which should be used only where required", "Bind a role with the permissions the subject needs.")
	k8sRBACDefaultSAAdmin   = defRef("k8s-rbac-default-sa-cluster-admin", "CIS Kubernetes 5.1.5, 5.1.1", scan.SeverityCritical, "the binding makes a namespace's default service account cluster-admin, so every pod of the namespace that sets no service account is cluster-admin", "Create a dedicated service account with the permissions the workload needs.")
	k8sRBACDefaultSABound   = defRef("k8s-rbac-default-sa-bound", "CIS Kubernetes 5.1.5", scan.SeverityLow, "the binding grants a role to a namespace's default service account, which every pod that names no service account uses", "Create a dedicated service account for the workload and bind the role to it.")
)

// rbacGrant describes permissions: any of verbs on any of resources of
// any of groups (nil groups: any group).
type rbacGrant struct {
	groups    []string
	resources []string
	verbs     []string
	// names, when set, requires the rule to name one of these objects in
	// resourceNames.
	names []string
	// anyName requires the rule to be unrestricted by resourceNames (or
	// to list "*").
	anyName bool
}

// rbacRuleCheck flags a rule of a Role (kind "Role"), a ClusterRole
// ("ClusterRole") or either ("") that grants grant; with also set, only
// when another rule of the same role grants also.
type rbacRuleCheck struct {
	id    string
	kind  string
	grant rbacGrant
	also  *rbacGrant
}

var (
	verbsWrite   = []string{"create", "update", "patch", "delete", "deletecollection", "impersonate"}
	verbsSecrets = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "impersonate"}
	groupCore    = []string{""}
	groupRBAC    = []string{"rbac.authorization.k8s.io"}
	// sensitiveResources are those on which "*" verbs are flagged.
	sensitiveResources = []string{"secrets", "pods", "pods/exec", "pods/attach", "serviceaccounts", "serviceaccounts/token", "nodes", "nodes/proxy", "persistentvolumes", "configmaps",
		"deployments", "daemonsets", "statefulsets", "replicationcontrollers", "replicasets", "cronjobs", "jobs",
		"roles", "clusterroles", "rolebindings", "clusterrolebindings", "users", "groups",
		"mutatingwebhookconfigurations", "validatingwebhookconfigurations", "certificatesigningrequests", "certificatesigningrequests/approval"}
	// workloadResources are the pods and the controllers that make them.
	workloadResources = []string{"pods", "deployments", "jobs", "cronjobs", "statefulsets", "daemonsets", "replicasets", "replicationcontrollers"}
	workloadGroups    = []string{"", "apps", "batch", "extensions"}
	// coreGroups hold Secrets, workloads and RBAC objects: "*" resources
	// in them is flagged, while "*" in a custom resource's group (an
	// operator managing its own CRDs) is not.
	coreGroups = []string{"", "apps", "batch", "extensions", "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "certificates.k8s.io", "authentication.k8s.io"}
)

var rbacRuleChecks = []rbacRuleCheck{
	{id: k8sRBACWildcardVerb, grant: rbacGrant{groups: coreGroups, resources: sensitiveResources, verbs: []string{"*"}}},
	{id: k8sRBACClusterSecrets, kind: "ClusterRole", grant: rbacGrant{groups: groupCore, resources: []string{"secrets"}, verbs: verbsSecrets}},
	{id: k8sRBACNamespaceSecrets, kind: "Role", grant: rbacGrant{groups: groupCore, resources: []string{"secrets"}, verbs: verbsSecrets}},
	{id: k8sRBACWorkloads, grant: rbacGrant{groups: workloadGroups, resources: workloadResources, verbs: verbsWrite}},
	// Exec, attach and port-forward are websocket (HTTP GET) upgrades,
	// which API servers before 1.31 authorize as "get".
	{id: k8sRBACPodExec, grant: rbacGrant{groups: groupCore, resources: []string{"pods/exec"}, verbs: []string{"get", "create"}}},
	{id: k8sRBACPodAttach, grant: rbacGrant{groups: groupCore, resources: []string{"pods/attach"}, verbs: []string{"get", "create"}}},
	{id: k8sRBACPodPortForward, grant: rbacGrant{groups: groupCore, resources: []string{"pods/portforward"}, verbs: []string{"get", "create"}}},
	{id: k8sRBACEscalate, grant: rbacGrant{groups: groupRBAC, resources: []string{"roles", "clusterroles", "rolebindings", "clusterrolebindings"}, verbs: []string{"escalate", "bind", "impersonate"}}},
	{id: k8sRBACImpersonate, grant: rbacGrant{groups: []string{"", "authentication.k8s.io"}, resources: []string{"users", "groups", "serviceaccounts", "uids", "userextras"}, verbs: []string{"impersonate"}}},
	{id: k8sRBACBindAnyRole, grant: rbacGrant{groups: groupRBAC, resources: []string{"rolebindings"}, verbs: []string{"create"}},
		also: &rbacGrant{groups: groupRBAC, resources: []string{"roles", "clusterroles"}, verbs: []string{"bind"}, anyName: true}},
	{id: k8sRBACBindAnyCluster, grant: rbacGrant{groups: groupRBAC, resources: []string{"clusterrolebindings"}, verbs: []string{"create"}},
		also: &rbacGrant{groups: groupRBAC, resources: []string{"clusterroles"}, verbs: []string{"bind"}, anyName: true}},
	{id: k8sRBACEditBindings, grant: rbacGrant{groups: groupRBAC, resources: []string{"rolebindings"}, verbs: []string{"update", "patch"}}},
	{id: k8sRBACWebhooks, grant: rbacGrant{groups: []string{"admissionregistration.k8s.io"}, resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"}, verbs: verbsWrite}},
	// The kubelet's exec, run, attach and port-forward endpoints answer GET
	// and POST, which the proxy authorizes as get and create.
	{id: k8sRBACNodeProxy, grant: rbacGrant{groups: groupCore, resources: []string{"nodes/proxy"}, verbs: []string{"get", "create"}}},
	{id: k8sRBACTokenCreate, grant: rbacGrant{groups: groupCore, resources: []string{"serviceaccounts/token"}, verbs: []string{"create"}}},
	{id: k8sRBACCSRApprove, grant: rbacGrant{groups: []string{"certificates.k8s.io"}, resources: []string{"certificatesigningrequests/approval"}, verbs: []string{"update", "patch"}}},
	{id: k8sRBACCreatePV, grant: rbacGrant{groups: groupCore, resources: []string{"persistentvolumes"}, verbs: []string{"create"}}},
	{id: k8sRBACDeleteLogs, grant: rbacGrant{groups: groupCore, resources: []string{"pods/log"}, verbs: []string{"delete", "deletecollection"}}},
	{id: k8sRBACConfigMaps, grant: rbacGrant{groups: groupCore, resources: []string{"configmaps"}, verbs: verbsWrite}},
	{id: k8sRBACAWSAuth, grant: rbacGrant{groups: groupCore, resources: []string{"configmaps"}, verbs: verbsWrite, names: []string{"aws-auth"}}},
	{id: k8sRBACNetworking, grant: rbacGrant{groups: []string{"", "networking.k8s.io", "discovery.k8s.io", "extensions"}, resources: []string{"services", "endpoints", "endpointslices", "networkpolicies", "ingresses"}, verbs: verbsWrite}},
}

// rbacBindingCheck flags a binding that names one of subjects (of
// subjectKind, when set) or that refers to one of roleRefs, unless its
// role is one of exempt.
type rbacBindingCheck struct {
	id          string
	subjects    []string
	subjectKind string
	roleRefs    []string
	// clusterOnly limits roleRefs to ClusterRoleBindings.
	clusterOnly bool
	exempt      []string
}

// Kubernetes' own default bindings give every client the discovery and
// version roles; binding those to system:authenticated or
// system:unauthenticated is how every cluster starts.
var discoveryRoles = []string{"system:basic-user", "system:discovery", "system:public-info-viewer"}

var rbacBindingChecks = []rbacBindingCheck{
	{id: k8sRBACAnonymousBinding, subjects: []string{"system:anonymous", "system:unauthenticated"}, exempt: discoveryRoles},
	{id: k8sRBACAuthenticated, subjects: []string{"system:authenticated"}, exempt: discoveryRoles},
	{id: k8sRBACMastersBinding, subjects: []string{"system:masters"}},
	{id: k8sRBACClusterAdmin, roleRefs: []string{"cluster-admin"}},
	{id: k8sRBACClusterAdmin, roleRefs: []string{"admin", "edit"}, clusterOnly: true},
	{id: k8sRBACDefaultSAAdmin, subjects: []string{"default"}, subjectKind: "ServiceAccount", roleRefs: []string{"cluster-admin"}},
	{id: k8sRBACDefaultSABound, subjects: []string{"default"}, subjectKind: "ServiceAccount", exempt: []string{"cluster-admin"}},
}

// isRBACKind reports whether kind is one checkRBAC reads (kinds compared
// as kubectl does, without regard to case).
func isRBACKind(kind string) bool {
	for _, k := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} {
		if strings.EqualFold(kind, k) {
			return true
		}
	}
	return false
}

// checkRBAC checks a Role, ClusterRole, RoleBinding or ClusterRoleBinding.
func checkRBAC(root *yaml.Node, kind, name string, r *reporter) {
	switch {
	case strings.EqualFold(kind, "Role"), strings.EqualFold(kind, "ClusterRole"):
		checkRoleRules(root, strings.EqualFold(kind, "ClusterRole"), name, r)
	default:
		checkBinding(root, strings.EqualFold(kind, "ClusterRoleBinding"), name, r)
	}
}

// rbacRule is one rule of a role, its lists read once.
type rbacRule struct {
	node                            *yaml.Node
	groups, resources, verbs, names []string
	hasGroups                       bool
}

// rchild is child for RBAC objects, reading through YAML aliases and
// merge keys ("<<: *base"), which the API server resolves too: a rule
// whose verbs come from an anchor grants them all the same.
func rchild(m *yaml.Node, key string) *yaml.Node {
	return rchildDepth(m, key, 0)
}

func rchildDepth(m *yaml.Node, key string, depth int) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode || depth > 8 {
		return nil
	}
	if n := child(m, key); n != nil {
		return deref(n)
	}
	merge := deref(child(m, "<<"))
	if merge == nil {
		return nil
	}
	bases := []*yaml.Node{merge}
	if merge.Kind == yaml.SequenceNode {
		bases = merge.Content
	}
	for _, b := range bases {
		if n := rchildDepth(b, key, depth+1); n != nil {
			return n
		}
	}
	return nil
}

// deref follows a YAML alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// ritems is items for RBAC objects, each item read through aliases.
func ritems(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for _, it := range items(deref(n)) {
		out = append(out, deref(it))
	}
	return out
}

func strs(n *yaml.Node) []string {
	n = deref(n)
	var out []string
	for _, it := range ritems(n) {
		out = append(out, scalar(it))
	}
	// A single scalar where a list belongs is read as a one-item list.
	if n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
		out = append(out, n.Value)
	}
	return out
}

// inGroups reports whether the rule covers one of groups. A rule without
// apiGroups is invalid for the API server; it is read as covering every
// group, so that a hand-written manifest is not passed for a typo.
func (rl rbacRule) inGroups(groups []string) bool {
	if groups == nil || !rl.hasGroups || slices.Contains(rl.groups, "*") {
		return true
	}
	for _, g := range groups {
		if slices.Contains(rl.groups, g) {
			return true
		}
	}
	return false
}

// grants reports whether the rule grants g, and what it matched.
// Resource "*" is left to the wildcard-resource checks, so a rule of
// "*" is reported once rather than under every resource check.
func (rl rbacRule) grants(g rbacGrant) (string, bool) {
	if !rl.inGroups(g.groups) {
		return "", false
	}
	res := ""
	for _, want := range g.resources {
		for _, have := range rl.resources {
			if have == want {
				res = want
			} else if _, sub, ok := strings.Cut(want, "/"); ok && have == "*/"+sub {
				res = have
			}
		}
	}
	if res == "" {
		return "", false
	}
	verb := ""
	for _, v := range rl.verbs {
		if v == "*" || slices.Contains(g.verbs, v) {
			verb = v
			break
		}
	}
	if verb == "" {
		return "", false
	}
	if g.names != nil && !slices.ContainsFunc(rl.names, func(n string) bool { return slices.Contains(g.names, n) }) {
		return "", false
	}
	if g.anyName && len(rl.names) > 0 && !slices.Contains(rl.names, "*") {
		return "", false
	}
	return verb + " " + res, true
}

func checkRoleRules(root *yaml.Node, cluster bool, name string, r *reporter) {
	var rules []rbacRule
	for _, n := range ritems(rchild(root, "rules")) {
		if n.Kind != yaml.MappingNode {
			continue
		}
		rules = append(rules, rbacRule{
			node: n, groups: strs(rchild(n, "apiGroups")), hasGroups: rchild(n, "apiGroups") != nil,
			resources: strs(rchild(n, "resources")), verbs: strs(rchild(n, "verbs")), names: strs(rchild(n, "resourceNames")),
		})
	}
	for i, rl := range rules {
		subject := name + " rule " + strconv.Itoa(i+1)
		if slices.Contains(rl.resources, "*") && len(rl.verbs) > 0 {
			switch {
			case slices.Contains(rl.verbs, "*") && (!rl.hasGroups || slices.Contains(rl.groups, "*") || slices.Contains(rl.groups, "")):
				r.add(k8sRBACWildcardAll, rl.node.Line, "verbs [*] on resources [*]", subject)
			case rl.inGroups(coreGroups) && cluster:
				r.add(k8sRBACClusterAllRes, rl.node.Line, "verbs ["+strings.Join(rl.verbs, ", ")+"] on resources [*]", subject)
			case rl.inGroups(coreGroups):
				r.add(k8sRBACNamespaceAllRes, rl.node.Line, "verbs ["+strings.Join(rl.verbs, ", ")+"] on resources [*]", subject)
			}
		}
		for _, c := range rbacRuleChecks {
			if (c.kind == "ClusterRole" && !cluster) || (c.kind == "Role" && cluster) {
				continue
			}
			what, ok := rl.grants(c.grant)
			if !ok {
				continue
			}
			if c.also != nil && !slices.ContainsFunc(rules, func(o rbacRule) bool { _, ok := o.grants(*c.also); return ok }) {
				continue
			}
			r.add(c.id, rl.node.Line, what, subject)
		}
	}
}

func checkBinding(root *yaml.Node, cluster bool, name string, r *reporter) {
	ref := rchild(root, "roleRef")
	role := scalar(rchild(ref, "name"))
	line := root.Line
	if ref != nil {
		line = ref.Line
	}
	subjects := ritems(rchild(root, "subjects"))
	for _, c := range rbacBindingChecks {
		if slices.Contains(c.exempt, role) || (c.roleRefs != nil && (!slices.Contains(c.roleRefs, role) || (c.clusterOnly && !cluster))) {
			continue
		}
		if c.subjects == nil {
			r.add(c.id, line, "roleRef "+role, name)
			continue
		}
		for _, s := range subjects {
			sn := scalar(rchild(s, "name"))
			if !slices.Contains(c.subjects, sn) || (c.subjectKind != "" && scalar(rchild(s, "kind")) != c.subjectKind) {
				continue
			}
			who := sn
			if ns := scalar(rchild(s, "namespace")); ns != "" {
				who = ns + "/" + sn
			}
			r.add(c.id, s.Line, "subject "+who+" bound to "+role, name)
		}
	}
}
