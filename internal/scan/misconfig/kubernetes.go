package misconfig

import (
	"bytes"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/interlock-dev/interlock/internal/scan"
)

var (
	k8sPrivileged   = def("k8s-privileged", scan.SeverityCritical, "a privileged container has full access to the node", "Remove privileged: true; grant only the capabilities the container needs.")
	k8sHostNS       = def("k8s-host-namespace", scan.SeverityHigh, "the pod shares the node's network, PID or IPC namespace", "Remove hostNetwork/hostPID/hostIPC.")
	k8sRoot         = def("k8s-runs-as-root", scan.SeverityMedium, "the container may run as root", "Set securityContext.runAsNonRoot: true and a non-zero runAsUser.")
	k8sNoLimits     = def("k8s-no-resource-limits", scan.SeverityLow, "the container has no CPU or memory limits, so one pod can starve the node", "Set resources.limits.cpu and resources.limits.memory.")
	k8sEnvSecret    = def("k8s-secret-in-env-literal", scan.SeverityHigh, "a secret is written literally in the manifest's env", "Use valueFrom.secretKeyRef with a Kubernetes Secret (or an external secret store).")
	k8sPrivEscalate = def("k8s-allow-privilege-escalation", scan.SeverityMedium, "the container allows privilege escalation (setuid binaries work)", "Set securityContext.allowPrivilegeEscalation: false.")
)

var secretEnvName = regexp.MustCompile(`(?i)(password|passwd|secret|token|api_?key|private_?key|credentials?)`)

var workloadKinds = map[string]bool{
	"Pod": true, "Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true,
	"Job": true, "CronJob": true, "ReplicationController": true,
}

// child returns the value node of key in mapping m.
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func ypath(m *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		m = child(m, k)
	}
	return m
}

func isTrue(n *yaml.Node) bool { return n != nil && n.Kind == yaml.ScalarNode && n.Value == "true" }

// kubernetes checks every workload in a (multi-document) manifest.
func kubernetes(data []byte, r *reporter) {
	if !bytes.Contains(data, []byte("kind:")) || !bytes.Contains(data, []byte("containers")) {
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		kind := child(root, "kind")
		if kind == nil || !workloadKinds[kind.Value] {
			continue
		}
		name := kind.Value
		if n := ypath(root, "metadata", "name"); n != nil {
			name += "/" + n.Value
		}
		var pod *yaml.Node
		switch kind.Value {
		case "Pod":
			pod = child(root, "spec")
		case "CronJob":
			pod = ypath(root, "spec", "jobTemplate", "spec", "template", "spec")
		default:
			pod = ypath(root, "spec", "template", "spec")
		}
		if pod == nil {
			continue
		}
		checkPod(pod, name, r)
	}
}

func checkPod(pod *yaml.Node, name string, r *reporter) {
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if n := child(pod, k); isTrue(n) {
			r.add(k8sHostNS, n.Line, k+": true", name)
		}
	}
	podSC := child(pod, "securityContext")
	podNonRoot := isTrue(child(podSC, "runAsNonRoot"))
	podUser := child(podSC, "runAsUser")
	for _, list := range []string{"containers", "initContainers"} {
		cs := child(pod, list)
		if cs == nil || cs.Kind != yaml.SequenceNode {
			continue
		}
		for _, c := range cs.Content {
			cname := name
			if n := child(c, "name"); n != nil {
				cname += " container " + n.Value
			}
			sc := child(c, "securityContext")
			if n := child(sc, "privileged"); isTrue(n) {
				r.add(k8sPrivileged, n.Line, "privileged: true", cname)
			}
			if n := child(sc, "allowPrivilegeEscalation"); isTrue(n) {
				r.add(k8sPrivEscalate, n.Line, "allowPrivilegeEscalation: true", cname)
			}
			user := child(sc, "runAsUser")
			if user == nil {
				user = podUser
			}
			nonRoot := podNonRoot
			if n := child(sc, "runAsNonRoot"); n != nil {
				nonRoot = isTrue(n)
			}
			switch {
			case user != nil && user.Value == "0":
				r.add(k8sRoot, user.Line, "runAsUser: 0", cname)
			case !nonRoot && user == nil:
				r.add(k8sRoot, c.Line, "no runAsNonRoot or runAsUser", cname)
			}
			if list == "containers" {
				lim := ypath(c, "resources", "limits")
				if lim == nil || child(lim, "memory") == nil || child(lim, "cpu") == nil {
					r.add(k8sNoLimits, c.Line, "resources.limits missing", cname)
				}
			}
			if env := child(c, "env"); env != nil && env.Kind == yaml.SequenceNode {
				for _, e := range env.Content {
					n, v := child(e, "name"), child(e, "value")
					if n == nil || v == nil || v.Value == "" || !secretEnvName.MatchString(n.Value) {
						continue
					}
					if strings.HasPrefix(v.Value, "$(") || strings.HasSuffix(strings.ToUpper(n.Value), "_FILE") {
						continue
					}
					r.add(k8sEnvSecret, v.Line, n.Value+": "+scan.Redact(v.Value), cname+" env "+n.Value)
				}
			}
		}
	}
}
