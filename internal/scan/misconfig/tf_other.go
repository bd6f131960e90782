package misconfig

// Checks for the other Terraform providers trivy-checks covers:
// DigitalOcean, GitHub, OpenStack, CloudStack, Oracle Cloud, the Kubernetes
// provider and NIFCLOUD. See tfrules.go.
func init() {
	const world = "0.0.0.0/0,::/0"
	tf("do-k8s-auto-upgrade", "AVD-DIG-0008", crit, "digitalocean_kubernetes_cluster", "auto_upgrade == true", "the cluster does not upgrade its Kubernetes patch version automatically", "Set auto_upgrade = true and a maintenance_policy.")
	tf("do-k8s-surge-upgrade", "AVD-DIG-0005", med, "digitalocean_kubernetes_cluster", "surge_upgrade != false", "surge upgrades are off, so upgrades take nodes away", "Set surge_upgrade = true.")
	tf("do-lb-https", "AVD-DIG-0002", crit, "digitalocean_loadbalancer", "forwarding_rule.entry_protocol !in http", "the load balancer accepts plain HTTP", "Use entry_protocol = \"https\" (or redirect_http_to_https = true).")
	tf("do-firewall-public-egress", "AVD-DIG-0003", crit, "digitalocean_firewall", "outbound_rule.destination_addresses !in "+world, "the firewall allows egress to any address", "List the destinations the droplets need.")
	tf("do-firewall-public-ingress", "AVD-DIG-0001", crit, "digitalocean_firewall", "inbound_rule.source_addresses !in "+world, "the firewall allows ingress from any address", "Restrict source_addresses.")
	tf("do-droplet-ssh-keys", "AVD-DIG-0004", high, "digitalocean_droplet", "ssh_keys", "the droplet has no SSH key, so root gets an emailed password", "Set ssh_keys.")
	tf("do-spaces-public-acl", "AVD-DIG-0006", crit, "digitalocean_spaces_bucket,digitalocean_spaces_bucket_object", "acl != public-read", "the Spaces bucket or object is publicly readable", "Set acl = \"private\".")
	tf("do-spaces-force-destroy", "AVD-DIG-0009", med, "digitalocean_spaces_bucket", "force_destroy != true", "terraform destroy deletes the bucket with every object in it", "Remove force_destroy = true.")
	tf("do-spaces-versioning", "AVD-DIG-0007", med, "digitalocean_spaces_bucket", "versioning.enabled == true", "the Spaces bucket is not versioned", "Add versioning { enabled = true }.")

	tf("github-actions-plaintext-secret", "AVD-GIT-0002", high, "github_actions_environment_secret,github_actions_secret,github_actions_organization_secret", "!plaintext_value", "the Actions secret is written in the configuration (and the state) in plaintext", "Use encrypted_value with the repository's public key.")
	tf("github-branch-signed-commits", "AVD-GIT-0004", high, "github_branch_protection,github_branch_protection_v3", "require_signed_commits == true", "the protected branch accepts unsigned commits", "Set require_signed_commits = true.")
	tf("github-vulnerability-alerts", "AVD-GIT-0003", high, "github_repository", "vulnerability_alerts == true", "Dependabot vulnerability alerts are off", "Set vulnerability_alerts = true.")
	tf("github-public-repository", "AVD-GIT-0001", crit, "github_repository", "visibility in private,internal || private == true", "the repository is public", "Set visibility = \"private\" unless it is meant to be open source (then suppress this finding).")

	tf("openstack-plaintext-password", "AVD-OPNSTK-0001", med, "openstack_compute_instance_v2", "!admin_pass", "the instance's admin password is written in the configuration", "Use key_pair and remove admin_pass.")
	tf("openstack-fw-rule-public", "AVD-OPNSTK-0002", med, "openstack_fw_rule_v1", "source_ip_address && destination_ip_address unless action == deny || enabled == false", "the firewall rule allows traffic from or to the whole internet", "Set source_ip_address and destination_ip_address.")
	tf("openstack-secgroup-description", "AVD-OPNSTK-0005", med, "openstack_networking_secgroup_v2", "description", "the security group has no description", "Add a description.")
	tf("openstack-secgroup-public-egress", "AVD-OPNSTK-0004", med, "openstack_networking_secgroup_rule_v2", "remote_ip_prefix !in "+world+" unless direction != egress", "the rule allows egress to any address", "Restrict remote_ip_prefix.")
	tf("openstack-secgroup-public-ingress", "AVD-OPNSTK-0003", med, "openstack_networking_secgroup_rule_v2", "remote_ip_prefix !in "+world+" unless direction != ingress", "the rule allows ingress from any address", "Restrict remote_ip_prefix.")
	tf("cloudstack-user-data-secret", "AVD-CLDSTK-0001", high, "cloudstack_instance", "user_data !~ (?i)(password|passwd|secret|token)[A-Za-z_]*\\s*=", "user data carries a password or token", "Fetch secrets at boot from a secret store.")
	tf("oracle-public-ip", "AVD-OCI-0001", crit, "opc_compute_ip_address_reservation", "ip_address_pool != public-ippool", "the instance takes an address from the public pool", "Use ip_address_pool = \"cloud-ippool\".")
	tf("k8s-tf-netpol-public-egress", "AVD-KUBE-0002", high, "kubernetes_network_policy,kubernetes_network_policy_v1", "spec.egress.to.ip_block.cidr !in "+world, "the network policy allows egress to any address", "Restrict ip_block.cidr.")
	tf("k8s-tf-netpol-public-ingress", "AVD-KUBE-0001", high, "kubernetes_network_policy,kubernetes_network_policy_v1", "spec.ingress.from.ip_block.cidr !in "+world, "the network policy allows ingress from any address", "Restrict ip_block.cidr.")

	const private = "net-COMMON_PRIVATE"
	tf("nifcloud-sg-description", "AVD-NIF-0002", low, "nifcloud_security_group", "description", "the security group has no description", "Add a description.")
	tf("nifcloud-sg-rule-description", "AVD-NIF-0003", low, "nifcloud_security_group_rule", "description", "the security group rule has no description", "Add a description.")
	tf("nifcloud-instance-sg", "AVD-NIF-0004", crit, "nifcloud_instance", "security_group", "the instance has no security group", "Set security_group.")
	tf("nifcloud-instance-common-private", "AVD-NIF-0005", low, "nifcloud_instance", "network_interface.network_id != "+private, "the instance sits on the shared common private network", "Attach it to your own private LAN.")
	tf("nifcloud-sg-rule-public-ingress", "AVD-NIF-0001", crit, "nifcloud_security_group_rule", "cidr_ip !in "+world+" unless type != IN", "the rule allows ingress from any address", "Restrict cidr_ip.")
	tf("nifcloud-dns-verify-record", "AVD-NIF-0007", crit, "nifcloud_dns_record", "record !~ ^nifty-dns-verify=", "the domain-verification record is still published, so the zone can be claimed again", "Delete the nifty-dns-verify record once the zone is verified.")
	tf("nifcloud-nas-sg-description", "AVD-NIF-0015", low, "nifcloud_nas_security_group", "description", "the NAS security group has no description", "Add a description.")
	tf("nifcloud-nas-common-private", "AVD-NIF-0013", low, "nifcloud_nas_instance", "network_id != "+private, "the NAS sits on the shared common private network", "Attach it to your own private LAN.")
	tf("nifcloud-nas-public-ingress", "AVD-NIF-0014", crit, "nifcloud_nas_security_group", "rule.cidr_ip !in "+world, "the NAS security group admits any address", "Restrict rule.cidr_ip.")
	tf("nifcloud-router-sg", "AVD-NIF-0016", crit, "nifcloud_router", "security_group", "the router has no security group", "Set security_group.")
	tf("nifcloud-vpn-gateway-sg", "AVD-NIF-0018", crit, "nifcloud_vpn_gateway", "security_group", "the VPN gateway has no security group", "Set security_group.")
	tf("nifcloud-elb-http", "AVD-NIF-0021", crit, "nifcloud_elb", "protocol != HTTP", "the load balancer serves plain HTTP", "Use protocol = \"HTTPS\".")
	tf("nifcloud-lb-http", "AVD-NIF-0021", crit, "nifcloud_load_balancer", "load_balancer_port != 80", "the load balancer serves plain HTTP", "Serve HTTPS on 443.")
	tf("nifcloud-elb-common-private", "AVD-NIF-0019", low, "nifcloud_elb", "network_interface.network_id != "+private, "the load balancer sits on the shared common private network", "Attach it to your own private LAN.")
	tf("nifcloud-router-common-private", "AVD-NIF-0017", low, "nifcloud_router", "network_interface.network_id != "+private, "the router sits on the shared common private network", "Attach it to your own private LAN.")
	tf("nifcloud-lb-tls-policy", "AVD-NIF-0020", crit, "nifcloud_load_balancer", "ssl_policy_name ~ (?i)ciphers d|ats unless load_balancer_port == 80", "the load balancer's TLS policy allows outdated protocols or ciphers", "Use ssl_policy_name = \"Standard Ciphers D ver1\".")
	tf("nifcloud-db-sg-description", "AVD-NIF-0012", low, "nifcloud_db_security_group", "description", "the DB security group has no description", "Add a description.")
	tf("nifcloud-db-common-private", "AVD-NIF-0010", low, "nifcloud_db_instance", "network_id != "+private, "the database sits on the shared common private network", "Attach it to your own private LAN.")
	tf("nifcloud-db-public", "AVD-NIF-0008", crit, "nifcloud_db_instance", "publicly_accessible != true", "the database is reachable from the internet", "Set publicly_accessible = false.")
	tf("nifcloud-db-sg-public-ingress", "AVD-NIF-0011", crit, "nifcloud_db_security_group", "rule.cidr_ip !in "+world, "the DB security group admits any address", "Restrict rule.cidr_ip.")
	tf("nifcloud-db-backup-retention", "AVD-NIF-0009", med, "nifcloud_db_instance", "backup_retention_period >= 2", "backups are kept for a day or less", "Set backup_retention_period to 7 or more.")
}
