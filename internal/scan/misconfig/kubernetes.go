package misconfig

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
)

// Kubernetes checks: every control of the Pod Security Standards, baseline
// (high severity: each one is a known way out of the container) and
// restricted (medium), plus the workload hygiene checks of trivy-checks'
// KSV set, each with its PSS control or AVD ID as the reference.
var (
	// Baseline.
	k8sPrivileged   = defRef("k8s-privileged", "PSS baseline: Privileged Containers, AVD-KSV-0017", scan.SeverityCritical, "a privileged container has full access to the node", "Remove privileged: true; grant only the capabilities the container needs.")
	k8sHostNS       = defRef("k8s-host-namespace", "PSS baseline: Host Namespaces, AVD-KSV-0008, AVD-KSV-0009, AVD-KSV-0010", scan.SeverityHigh, "the pod shares the node's network, PID or IPC namespace", "Remove hostNetwork/hostPID/hostIPC.")
	k8sHostPath     = defRef("k8s-host-path", "PSS baseline: HostPath Volumes, AVD-KSV-0023", scan.SeverityHigh, "a hostPath volume exposes the node's file system to the pod", "Use a persistentVolumeClaim, configMap, secret or emptyDir instead.")
	k8sRuntimeSock  = defRef("k8s-container-runtime-socket", "AVD-KSV-0006", scan.SeverityCritical, "the container runtime's socket is mounted, which is root on the node", "Do not mount docker.sock/containerd.sock; build images with a rootless builder.")
	k8sHostPort     = defRef("k8s-host-port", "PSS baseline: Host Ports, AVD-KSV-0024", scan.SeverityHigh, "the container binds a port on the node itself", "Remove hostPort and expose the container through a Service.")
	k8sCapAdd       = defRef("k8s-capability-added", "PSS baseline/restricted: Capabilities, AVD-KSV-0022", scan.SeverityMedium, "the container adds Linux capabilities beyond NET_BIND_SERVICE", "Remove capabilities.add, or keep it to NET_BIND_SERVICE.")
	k8sCapSysAdmin  = defRef("k8s-capability-sys-admin", "PSS baseline: Capabilities, AVD-KSV-0005", scan.SeverityHigh, "the container adds SYS_ADMIN (or ALL), which is close to privileged", "Remove SYS_ADMIN/ALL from capabilities.add.")
	k8sAppArmor     = defRef("k8s-apparmor-unconfined", "PSS baseline: AppArmor, AVD-KSV-0002", scan.SeverityHigh, "the container runs without the runtime's AppArmor profile (unconfined or an unknown profile)", "Use appArmorProfile.type: RuntimeDefault (or the runtime/default annotation).")
	k8sSELinux      = defRef("k8s-selinux-custom", "PSS baseline: SELinux, AVD-KSV-0025", scan.SeverityHigh, "custom SELinux options can lift the container's confinement", "Remove seLinuxOptions user/role, and use a container_t type only.")
	k8sProcMount    = defRef("k8s-proc-mount", "PSS baseline: /proc Mount Type, AVD-KSV-0027", scan.SeverityHigh, "an unmasked /proc exposes the node's kernel interfaces", "Remove procMount or set it to Default.")
	k8sSysctls      = defRef("k8s-unsafe-sysctl", "PSS baseline: Sysctls, AVD-KSV-0026", scan.SeverityHigh, "an unsafe sysctl changes the kernel for the whole node", "Use only the namespaced safe sysctls.")
	k8sSeccompOff   = defRef("k8s-seccomp-unconfined", "PSS baseline: Seccomp, AVD-KSV-0104", scan.SeverityHigh, "seccomp is explicitly off, so every system call is open to the container", "Set seccompProfile.type: RuntimeDefault.")
	k8sHostProcess  = defRef("k8s-windows-host-process", "PSS baseline: HostProcess", scan.SeverityCritical, "a Windows HostProcess container runs as the node", "Remove windowsOptions.hostProcess.")
	k8sPrivEscalate = defRef("k8s-allow-privilege-escalation", "PSS restricted: Privilege Escalation, AVD-KSV-0001", scan.SeverityMedium, "the container may gain privileges through setuid binaries (unset means allowed)", "Set securityContext.allowPrivilegeEscalation: false.")
	// Restricted.
	k8sRoot        = defRef("k8s-runs-as-root", "PSS restricted: Running as Non-root, AVD-KSV-0012", scan.SeverityMedium, "the container may run as root", "Set securityContext.runAsNonRoot: true and a non-zero runAsUser.")
	k8sDropAll     = defRef("k8s-capabilities-not-dropped", "PSS restricted: Capabilities, AVD-KSV-0003", scan.SeverityMedium, "the container keeps the runtime's default capabilities", "Set securityContext.capabilities.drop: [ALL].")
	k8sSeccomp     = defRef("k8s-seccomp-not-set", "PSS restricted: Seccomp, AVD-KSV-0030", scan.SeverityMedium, "no seccomp profile is set, so the container may run unconfined", "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.")
	k8sVolumeTypes = defRef("k8s-non-core-volume", "PSS restricted: Volume Types, AVD-KSV-0028", scan.SeverityMedium, "the pod uses a volume type outside the restricted set", "Use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret volumes.")
	// Hygiene.
	k8sReadOnlyFS  = defRef("k8s-writable-root-fs", "AVD-KSV-0014", scan.SeverityLow, "the container's root file system is writable, so an intruder can change its binaries", "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir where it writes.")
	k8sLowUID      = defRef("k8s-low-uid", "AVD-KSV-0020", scan.SeverityLow, "the container's UID is not above 10000 and may collide with a host user", "Set securityContext.runAsUser above 10000.")
	k8sLowGID      = defRef("k8s-low-gid", "AVD-KSV-0021", scan.SeverityLow, "the container's GID is not above 10000 and may collide with a host group", "Set securityContext.runAsGroup above 10000.")
	k8sNoCPULimit  = defRef("k8s-no-cpu-limit", "AVD-KSV-0011", scan.SeverityLow, "the container has no CPU limit, so one pod can starve the node", "Set resources.limits.cpu.")
	k8sNoMemLimit  = defRef("k8s-no-memory-limit", "AVD-KSV-0018", scan.SeverityLow, "the container has no memory limit, so one pod can exhaust the node's memory", "Set resources.limits.memory.")
	k8sNoCPUReq    = defRef("k8s-no-cpu-request", "AVD-KSV-0015", scan.SeverityLow, "the container requests no CPU, so the scheduler cannot place it fairly", "Set resources.requests.cpu.")
	k8sNoMemReq    = defRef("k8s-no-memory-request", "AVD-KSV-0016", scan.SeverityLow, "the container requests no memory, so the scheduler cannot place it fairly", "Set resources.requests.memory.")
	k8sLatest      = defRef("k8s-image-latest", "AVD-KSV-0013", scan.SeverityMedium, "the image is not pinned (no tag, or :latest), so what runs can change under you", "Pin the image by tag and digest.")
	k8sEnvSecret   = defRef("k8s-secret-in-env-literal", "AVD-KSV-0109", scan.SeverityHigh, "a secret is written literally in the manifest's env", "Use valueFrom.secretKeyRef with a Kubernetes Secret (or an external secret store).")
	k8sKubeSystem  = defRef("k8s-kube-system-workload", "AVD-KSV-0037", scan.SeverityMedium, "an application workload is placed in kube-system, beside the control plane", "Deploy it in its own namespace.")
	k8sTiller      = defRef("k8s-tiller", "AVD-KSV-0102", scan.SeverityCritical, "Helm v2's Tiller is deployed; it lets any pod act as cluster admin", "Remove Tiller and use Helm 3.")
	k8sConfigMap   = defRef("k8s-configmap-secret", "AVD-KSV-0109", scan.SeverityHigh, "a ConfigMap holds a password or key; ConfigMaps are not protected like Secrets", "Move the value to a Secret (or an external secret store).")
	k8sIngressInj  = defRef("k8s-ingress-nginx-annotation-injection", "CVE-2025-1974 family, AVD-KCV-0093", scan.SeverityHigh, "an ingress-nginx annotation carries characters that inject nginx configuration", "Remove |, #, ;, braces, quotes and newlines from the annotation value.")
	k8sNetPolicy   = defRef("k8s-networkpolicy-no-selector", "AVD-KSV-0038", scan.SeverityMedium, "the NetworkPolicy has no podSelector, so it does not say which pods it protects", "Set spec.podSelector ({} selects every pod of the namespace).")
	k8sAutomountSA = defRef("k8s-service-account-token", "AVD-KSV-0036", scan.SeverityLow, "the pod gets a service account token it may not need", "Set automountServiceAccountToken: false unless the pod calls the API server.")
)

var secretEnvName = regexp.MustCompile(`(?i)(password|passwd|secret|token|api_?key|private_?key|credentials?)`)

var workloadKinds = map[string]bool{
	"Pod": true, "Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true,
	"Job": true, "CronJob": true, "ReplicationController": true, "PodTemplate": true,
}

// Pod Security Standards allow-lists.
var (
	baselineCaps = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
	safeSysctls  = []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
	coreVolumes  = []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret", "name"}
	seLinuxTypes = []string{"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)

// child returns the value node of key in mapping m. A key written twice
// has its last value, as kubectl and Helm read YAML (through JSON): a
// manifest that says privileged: false and then privileged: true runs
// privileged.
//
// Aliases are read through (m, the key and the value may each be one),
// as kubectl resolves them: securityContext: *privileged is privileged.
// Merge keys are expanded before the checks run (expandMerges).
func child(m *yaml.Node, key string) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := len(m.Content) - len(m.Content)%2 - 2; i >= 0; i -= 2 {
		if k := m.Content[i]; k.Value == key && k.Kind == yaml.ScalarNode || k.Kind == yaml.AliasNode && scalar(deref(k)) == key {
			return deref(m.Content[i+1])
		}
	}
	return nil
}

// expandMerges gives each mapping of a document the keys its merge keys
// ("<<: *base", "<<: [*a, *b]") bring, as YAML 1.1 (and so kubectl)
// reads them: keys written in the mapping win, then earlier bases. Each
// node is visited once, through its own position, never through an alias,
// so a document cannot make it do more work than its size.
func expandMerges(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || n.Kind == yaml.AliasNode || seen[n] {
		return
	}
	seen[n] = true
	for _, c := range n.Content {
		expandMerges(c, seen)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	var bases []*yaml.Node
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0 && (k.Tag == "!!merge" || k.Tag == "") {
			v := deref(n.Content[i+1])
			if v != nil && v.Kind == yaml.SequenceNode {
				for _, b := range v.Content {
					bases = append(bases, deref(b))
				}
			} else {
				bases = append(bases, v)
			}
			continue
		}
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	if len(bases) == 0 {
		return
	}
	have := map[string]bool{}
	for i := 0; i+1 < len(kept); i += 2 {
		have[kept[i].Value] = true
	}
	for _, b := range bases {
		if b == nil || b.Kind != yaml.MappingNode {
			continue
		}
		expandMerges(b, seen) // a base anchored later in the document
		for i := 0; i+1 < len(b.Content); i += 2 {
			if k := b.Content[i].Value; !have[k] {
				have[k] = true
				// Prepended: child reads the last of a key written twice,
				// and the mapping's own keys must win.
				kept = append([]*yaml.Node{b.Content[i], b.Content[i+1]}, kept...)
			}
		}
	}
	n.Content = kept
}

func ypath(m *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		m = child(m, k)
	}
	return m
}

func isTrue(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.Value == "true"
}

func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func scalar(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// kubernetes checks every object in a (multi-document) manifest.
func kubernetes(data []byte, r *reporter) {
	// Callers pass only what dropUnchecked lets through: YAML with a
	// top-level kind, or not plain enough to tell without decoding.
	merges := bytes.Contains(data, []byte("<<"))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		if merges {
			expandMerges(&doc, map[*yaml.Node]bool{})
		}
		checkObject(deref(doc.Content[0]), r, 0)
	}
}

// checkObject checks one Kubernetes object. A List (kind List, or
// PodList, DeploymentList…) has its items checked each as an object, as
// kubectl applies each of them.
func checkObject(root *yaml.Node, r *reporter, depth int) {
	// The kind may come through an alias, as kubectl reads it.
	kind := scalar(child(root, "kind"))
	if strings.HasSuffix(kind, "List") && depth == 0 {
		for _, it := range items(child(root, "items")) {
			checkObject(deref(it), r, depth+1)
		}
		return
	}
	name := kind
	if n := scalar(ypath(root, "metadata", "name")); n != "" {
		name += "/" + n
	}
	switch {
	case workloadKinds[kind]:
		var pod, podMeta *yaml.Node
		switch kind {
		case "Pod":
			pod, podMeta = child(root, "spec"), child(root, "metadata")
		case "PodTemplate":
			pod, podMeta = ypath(root, "template", "spec"), ypath(root, "template", "metadata")
		case "CronJob":
			pod, podMeta = ypath(root, "spec", "jobTemplate", "spec", "template", "spec"), ypath(root, "spec", "jobTemplate", "spec", "template", "metadata")
		default:
			pod, podMeta = ypath(root, "spec", "template", "spec"), ypath(root, "spec", "template", "metadata")
		}
		if pod == nil || pod.Kind != yaml.MappingNode {
			return
		}
		if ns := child(child(root, "metadata"), "namespace"); scalar(ns) == "kube-system" {
			r.add(k8sKubeSystem, ns.Line, "namespace: kube-system", name)
		}
		checkPod(pod, podMeta, name, r)
	case kind == "ConfigMap":
		checkConfigMap(root, name, r)
	case kind == "Ingress":
		checkIngress(root, name, r)
	case isRBACKind(kind):
		checkRBAC(root, kind, name, r)
	case kind == "NetworkPolicy":
		if spec := child(root, "spec"); spec != nil && child(spec, "podSelector") == nil {
			r.add(k8sNetPolicy, spec.Line, "spec.podSelector missing", name)
		}
	}
}

// secCtx is a container's effective security context: the container's
// own setting where it has one, else the pod's.
type secCtx struct{ pod, c *yaml.Node }

func (s secCtx) get(keys ...string) *yaml.Node {
	if n := ypath(s.c, keys...); n != nil {
		return n
	}
	return ypath(s.pod, keys...)
}

func checkPod(pod, podMeta *yaml.Node, name string, r *reporter) {
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if n := child(pod, k); isTrue(n) {
			r.add(k8sHostNS, n.Line, k+": true", name)
		}
	}
	podSC := child(pod, "securityContext")
	for _, s := range items(child(podSC, "sysctls")) {
		if n := scalar(child(s, "name")); n != "" && !slices.Contains(safeSysctls, n) {
			r.add(k8sSysctls, s.Line, "sysctl "+n, name)
		}
	}
	if n := child(pod, "automountServiceAccountToken"); n == nil && child(pod, "serviceAccountName") != nil {
		r.add(k8sAutomountSA, pod.Line, "automountServiceAccountToken not set", name)
	}
	for _, v := range items(child(pod, "volumes")) {
		vname := scalar(child(v, "name"))
		if hp := child(v, "hostPath"); hp != nil {
			p := scalar(child(hp, "path"))
			r.add(k8sHostPath, hp.Line, "hostPath "+p, name+" volume "+vname)
			if strings.HasSuffix(p, "docker.sock") || strings.HasSuffix(p, "containerd.sock") || strings.HasSuffix(p, "crio.sock") || p == "/var/run" || p == "/run" {
				r.add(k8sRuntimeSock, hp.Line, "hostPath "+p, name+" volume "+vname)
			}
		}
		for i := 0; v.Kind == yaml.MappingNode && i+1 < len(v.Content); i += 2 {
			if t := v.Content[i].Value; !slices.Contains(coreVolumes, t) && t != "hostPath" {
				r.add(k8sVolumeTypes, v.Content[i].Line, "volume type "+t, name+" volume "+vname)
			}
		}
	}
	annotations := child(podMeta, "annotations")
	podSeccomp := scalar(ypath(podSC, "seccompProfile", "type"))
	if podSeccomp == "" {
		switch a := scalar(child(annotations, "seccomp.security.alpha.kubernetes.io/pod")); a {
		case "runtime/default", "docker/default":
			podSeccomp = "RuntimeDefault"
		case "unconfined":
			podSeccomp = "Unconfined"
		}
	}
	for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
		for _, c := range items(child(pod, list)) {
			checkContainer(c, list, podSC, annotations, podSeccomp, name, r)
		}
	}
}

func checkContainer(c *yaml.Node, list string, podSC, annotations *yaml.Node, podSeccomp, name string, r *reporter) {
	cname := scalar(child(c, "name"))
	subject := name + " container " + cname
	sc := child(c, "securityContext")
	eff := secCtx{pod: podSC, c: sc}
	line := c.Line
	if sc != nil {
		line = sc.Line
	}
	if n := child(sc, "privileged"); isTrue(n) {
		r.add(k8sPrivileged, n.Line, "privileged: true", subject)
	}
	switch n := child(sc, "allowPrivilegeEscalation"); {
	case n == nil:
		r.add(k8sPrivEscalate, line, "allowPrivilegeEscalation not set", subject)
	case scalar(n) != "false":
		r.add(k8sPrivEscalate, n.Line, "allowPrivilegeEscalation: "+scalar(n), subject)
	}
	user := eff.get("runAsUser")
	nonRoot := isTrue(eff.get("runAsNonRoot"))
	switch {
	case user != nil && scalar(user) == "0":
		r.add(k8sRoot, user.Line, "runAsUser: 0", subject)
	case !nonRoot && user == nil:
		r.add(k8sRoot, line, "no runAsNonRoot or runAsUser", subject)
	}
	for _, k := range []struct {
		key, id string
	}{{"runAsUser", k8sLowUID}, {"runAsGroup", k8sLowGID}} {
		n := eff.get(k.key)
		if v, err := strconv.Atoi(scalar(n)); err != nil || v <= 10000 {
			ev := k.key + " not set"
			l := line
			if n != nil {
				ev, l = k.key+": "+scalar(n), n.Line
			}
			r.add(k.id, l, ev, subject)
		}
	}
	caps := child(sc, "capabilities")
	dropAll := false
	for _, d := range items(child(caps, "drop")) {
		if strings.EqualFold(scalar(d), "ALL") {
			dropAll = true
		}
	}
	if !dropAll {
		r.add(k8sDropAll, line, "capabilities.drop does not include ALL", subject)
	}
	for _, a := range items(child(caps, "add")) {
		capName := strings.TrimPrefix(strings.ToUpper(scalar(a)), "CAP_")
		switch {
		case capName == "SYS_ADMIN" || capName == "ALL":
			r.add(k8sCapSysAdmin, a.Line, "capabilities.add: "+capName, subject)
		case !slices.Contains(baselineCaps, capName):
			r.add(k8sCapAdd, a.Line, "capabilities.add: "+capName, subject)
		case capName != "NET_BIND_SERVICE":
			r.add(k8sCapAdd, a.Line, "capabilities.add: "+capName, subject)
		}
	}
	if n := child(sc, "procMount"); n != nil && scalar(n) != "Default" {
		r.add(k8sProcMount, n.Line, "procMount: "+scalar(n), subject)
	}
	if n := eff.get("windowsOptions", "hostProcess"); isTrue(n) {
		r.add(k8sHostProcess, n.Line, "windowsOptions.hostProcess: true", subject)
	}
	for _, src := range []*yaml.Node{podSC, sc} {
		sel := child(src, "seLinuxOptions")
		if sel == nil {
			continue
		}
		if t := scalar(child(sel, "type")); !slices.Contains(seLinuxTypes, t) {
			r.add(k8sSELinux, sel.Line, "seLinuxOptions.type: "+t, subject)
		} else if child(sel, "user") != nil || child(sel, "role") != nil {
			r.add(k8sSELinux, sel.Line, "seLinuxOptions sets user or role", subject)
		}
	}
	aa := scalar(child(annotations, "container.apparmor.security.beta.kubernetes.io/"+cname))
	// Baseline allows only the runtime's default profile and localhost ones.
	if t := scalar(eff.get("appArmorProfile", "type")); t != "" && t != "RuntimeDefault" && t != "Localhost" {
		r.add(k8sAppArmor, line, "appArmorProfile.type: "+t, subject)
	} else if aa != "" && aa != "runtime/default" && !strings.HasPrefix(aa, "localhost/") {
		r.add(k8sAppArmor, line, "AppArmor annotation: "+aa, subject)
	}
	seccomp := scalar(ypath(sc, "seccompProfile", "type"))
	if seccomp == "" {
		seccomp = podSeccomp
	}
	switch seccomp {
	case "RuntimeDefault", "Localhost":
	case "Unconfined":
		r.add(k8sSeccompOff, line, "seccompProfile.type: Unconfined", subject)
	default:
		r.add(k8sSeccomp, line, "seccompProfile not set", subject)
	}
	if !isTrue(child(sc, "readOnlyRootFilesystem")) {
		r.add(k8sReadOnlyFS, line, "readOnlyRootFilesystem not true", subject)
	}
	for _, p := range items(child(c, "ports")) {
		if n := child(p, "hostPort"); n != nil && scalar(n) != "0" {
			r.add(k8sHostPort, n.Line, "hostPort: "+scalar(n), subject)
		}
	}
	image := scalar(child(c, "image"))
	if image != "" && !strings.Contains(image, "@sha256:") {
		last := image[strings.LastIndexByte(image, '/')+1:]
		if _, tag, tagged := strings.Cut(last, ":"); !tagged || tag == "latest" {
			r.add(k8sLatest, child(c, "image").Line, "image: "+image, subject)
		}
	}
	if strings.Contains(strings.ToLower(image), "tiller") {
		r.add(k8sTiller, child(c, "image").Line, "image: "+image, subject)
	}
	if list != "ephemeralContainers" {
		for _, k := range []struct{ path, res, id string }{
			{"limits", "cpu", k8sNoCPULimit}, {"limits", "memory", k8sNoMemLimit},
			{"requests", "cpu", k8sNoCPUReq}, {"requests", "memory", k8sNoMemReq},
		} {
			if ypath(c, "resources", k.path, k.res) == nil {
				r.add(k.id, c.Line, "resources."+k.path+"."+k.res+" not set", subject)
			}
		}
	}
	for _, e := range items(child(c, "env")) {
		n, v := child(e, "name"), child(e, "value")
		if n == nil || v == nil || v.Value == "" || !secretEnvName.MatchString(n.Value) {
			continue
		}
		if strings.HasPrefix(v.Value, "$(") || strings.HasSuffix(strings.ToUpper(n.Value), "_FILE") {
			continue
		}
		r.add(k8sEnvSecret, v.Line, n.Value+": "+scan.Redact(v.Value), subject+" env "+n.Value)
	}
}

var configSecretAssign = regexp.MustCompile(`(?i)\b[a-z0-9_]*(password|passwd|secret|token|api_?key|private_?key)[a-z0-9_]*\s*[=:]\s*["']?([^\s"'$]{4,})`)

// checkConfigMap flags secrets kept in a ConfigMap: a key named like a
// secret with a value, or a value that assigns one (REDIS_PASSWORD=…).
func checkConfigMap(root *yaml.Node, name string, r *reporter) {
	data := child(root, "data")
	for i := 0; data != nil && data.Kind == yaml.MappingNode && i+1 < len(data.Content); i += 2 {
		k, v := data.Content[i].Value, data.Content[i+1]
		val := scalar(v)
		if val == "" || strings.HasPrefix(val, "{{") {
			continue
		}
		if secretEnvName.MatchString(k) && !strings.ContainsAny(val, " \n") && !strings.HasSuffix(strings.ToLower(k), "_file") && !strings.HasSuffix(strings.ToLower(k), "key") {
			r.add(k8sConfigMap, v.Line, k+": "+scan.Redact(val), name+" key "+k)
			continue
		}
		if m := configSecretAssign.FindStringSubmatch(val); m != nil {
			r.add(k8sConfigMap, v.Line, k+": …"+scan.Redact(m[2]), name+" key "+k)
		}
	}
}

// ingressInjection matches characters that break out of the nginx
// directive an ingress-nginx annotation is copied into.
var ingressInjection = regexp.MustCompile("[|#;{}\"'`\\\\\\n\\r$]")

func checkIngress(root *yaml.Node, name string, r *reporter) {
	ann := ypath(root, "metadata", "annotations")
	for i := 0; ann != nil && ann.Kind == yaml.MappingNode && i+1 < len(ann.Content); i += 2 {
		k, v := ann.Content[i].Value, ann.Content[i+1]
		switch strings.TrimPrefix(k, "nginx.ingress.kubernetes.io/") {
		case "auth-url", "auth-tls-match-cn", "mirror-target", "mirror-host", "auth-signin", "auth-method", "permanent-redirect", "temporal-redirect", "rewrite-target", "app-root", "server-alias":
			if strings.HasPrefix(k, "nginx.ingress.kubernetes.io/") && ingressInjection.MatchString(scalar(v)) {
				r.add(k8sIngressInj, v.Line, k, name)
			}
		}
	}
}
