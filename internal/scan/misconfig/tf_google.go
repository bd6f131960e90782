package misconfig

// Google Cloud checks: CIS Google Cloud Platform Foundation Benchmark v2–3
// where a section applies, else the AVD entry. See tfrules.go.
func init() {
	const fw = "google_compute_firewall"
	tf("gcp-bigquery-public", "CIS GCP 7.1, AVD-GCP-0046", crit, "google_bigquery_dataset", "access.special_group != allAuthenticatedUsers && access.iam_member !in allUsers,allAuthenticatedUsers", "the dataset is readable by any Google account", "Remove the allAuthenticatedUsers/allUsers access entry.")
	tf("gcp-firewall-all-ports", "AVD-GCP-0072", med, fw, "each allow: ports && ports !in 0-65535,1-65535 unless protocol in icmp,esp,ah,ipip", "the firewall rule allows every port", "List the ports the service needs.")
	tf("gcp-firewall-default-rule", "AVD-GCP-0073", med, fw, "name !~ ^default-allow-(internal|ssh|rdp|icmp)$", "a default firewall rule is kept; it opens more than most networks need", "Delete the default-allow-* rules and write rules for what you use.")
	tf("gcp-firewall-public-egress", "AVD-GCP-0035", crit, fw, "destination_ranges !in 0.0.0.0/0,::/0 unless direction != EGRESS || deny", "the firewall rule allows egress to any address", "Restrict destination_ranges.")
	tf("gcp-firewall-public-ingress", "CIS GCP 3.6, AVD-GCP-0027", crit, fw, "source_ranges !in 0.0.0.0/0,::/0 unless direction == EGRESS || deny", "the firewall rule allows ingress from any address", "Restrict source_ranges to known networks.")
	tf("gcp-disk-cmk", "AVD-GCP-0034", low, "google_compute_disk", "disk_encryption_key.kms_key_self_link", "the disk is not encrypted with a customer managed key", "Set disk_encryption_key.kms_key_self_link.")
	tf("gcp-disk-plaintext-key", "AVD-GCP-0037", crit, "google_compute_disk", "!disk_encryption_key.raw_key && !disk_encryption_key.rsa_encrypted_key", "the disk's encryption key is written in the configuration", "Use a Cloud KMS key (kms_key_self_link).")
	tf("gcp-instance-plaintext-key", "AVD-GCP-0037", crit, "google_compute_instance", "!boot_disk.disk_encryption_key_raw && !attached_disk.disk_encryption_key_raw", "a disk's encryption key is written in the configuration", "Use a Cloud KMS key (kms_key_self_link).")
	const vm = "google_compute_instance"
	tf("gcp-vm-integrity-monitoring", "CIS GCP 4.8, AVD-GCP-0045", med, vm, "shielded_instance_config.enable_integrity_monitoring != false", "Shielded VM integrity monitoring is off", "Set shielded_instance_config.enable_integrity_monitoring = true.")
	tf("gcp-vm-secure-boot", "CIS GCP 4.8, AVD-GCP-0067", med, vm, "shielded_instance_config.enable_secure_boot == true", "Shielded VM secure boot is off (unset means off)", "Set shielded_instance_config.enable_secure_boot = true.")
	tf("gcp-vm-vtpm", "CIS GCP 4.8, AVD-GCP-0041", med, vm, "shielded_instance_config.enable_vtpm != false", "the Shielded VM vTPM is off", "Set shielded_instance_config.enable_vtpm = true.")
	tf("gcp-vm-default-service-account", "CIS GCP 4.1, AVD-GCP-0044", crit, vm, "service_account.email && service_account.email !~ -compute@developer\\.gserviceaccount\\.com$", "the instance runs as the default Compute service account (project Editor)", "Create a dedicated service account with the roles the instance needs.")
	tf("gcp-vm-ip-forwarding", "CIS GCP 4.6, AVD-GCP-0043", high, vm, "can_ip_forward != true", "the instance may forward packets it did not originate", "Set can_ip_forward = false unless it is a router.")
	tf("gcp-vm-oslogin-override", "CIS GCP 4.4, AVD-GCP-0036", med, vm, "metadata.enable-oslogin !in false", "the instance turns OS Login off, overriding the project", "Remove enable-oslogin = false from the instance metadata.")
	tf("gcp-vm-project-ssh-keys", "CIS GCP 4.3, AVD-GCP-0030", med, vm, "metadata.block-project-ssh-keys == true", "project-wide SSH keys can log in to the instance", "Set metadata block-project-ssh-keys = true.")
	tf("gcp-vm-public-ip", "AVD-GCP-0031", high, vm, "!network_interface.access_config", "the instance has a public IP address", "Remove access_config; reach it through IAP or a load balancer.")
	tf("gcp-vm-serial-port", "CIS GCP 4.5, AVD-GCP-0032", med, vm, "metadata.serial-port-enable !in true,1", "the interactive serial console is enabled", "Remove serial-port-enable from the metadata.")
	tf("gcp-vm-disk-cmk", "CIS GCP 4.7, AVD-GCP-0033", low, vm, "boot_disk.kms_key_self_link || boot_disk.disk_encryption_key_raw", "the boot disk is not encrypted with a customer managed key", "Set boot_disk.kms_key_self_link.")
	tf("gcp-project-oslogin", "CIS GCP 4.4, AVD-GCP-0042", med, "google_compute_project_metadata", "metadata.enable-oslogin in true,TRUE", "OS Login is not enabled for the project", "Set metadata enable-oslogin = \"TRUE\".")
	tf("gcp-project-oslogin-item", "CIS GCP 4.4, AVD-GCP-0042", med, "google_compute_project_metadata_item", "value in true,TRUE unless key != enable-oslogin", "OS Login is turned off for the project", "Set enable-oslogin to TRUE.")
	tf("gcp-subnet-flow-logs", "CIS GCP 3.8, AVD-GCP-0029, AVD-GCP-0076", med, "google_compute_subnetwork", "log_config || enable_flow_logs == true unless purpose in REGIONAL_MANAGED_PROXY,GLOBAL_MANAGED_PROXY,INTERNAL_HTTPS_LOAD_BALANCER,PRIVATE_SERVICE_CONNECT", "VPC flow logs are off for the subnetwork", "Add a log_config block.")
	tf("gcp-subnet-private-google-access", "AVD-GCP-0075", low, "google_compute_subnetwork", "private_ip_google_access == true unless purpose in REGIONAL_MANAGED_PROXY,GLOBAL_MANAGED_PROXY,INTERNAL_HTTPS_LOAD_BALANCER,PRIVATE_SERVICE_CONNECT", "Private Google Access is off, so instances need public IPs to reach Google APIs", "Set private_ip_google_access = true.")
	tf("gcp-ssl-policy-tls", "CIS GCP 3.9, AVD-GCP-0039", crit, "google_compute_ssl_policy", "min_tls_version in TLS_1_2,TLS_1_3", "the SSL policy accepts TLS older than 1.2 (unset means TLS 1.0)", "Set min_tls_version = \"TLS_1_2\".")
	tf("gcp-dns-dnssec", "CIS GCP 3.3, AVD-GCP-0013", med, "google_dns_managed_zone", "dnssec_config.state == on unless visibility == private", "DNSSEC is off for the public zone", "Add dnssec_config { state = \"on\" }.")
	tf("gcp-dns-rsasha1", "CIS GCP 3.4, AVD-GCP-0012", med, "google_dns_managed_zone", "dnssec_config.default_key_specs.algorithm != rsasha1", "the zone signs with RSA/SHA-1", "Use rsasha256 or ecdsap256sha256.")

	const gke, pool = "google_container_cluster", "google_container_node_pool"
	tf("gcp-gke-auto-repair", "CIS GKE 5.5.2, AVD-GCP-0063", low, pool, "management.auto_repair != false", "node auto-repair is off", "Set management.auto_repair = true.")
	tf("gcp-gke-auto-upgrade", "CIS GKE 5.5.3, AVD-GCP-0058", low, pool, "management.auto_upgrade != false", "node auto-upgrade is off", "Set management.auto_upgrade = true.")
	tf("gcp-gke-node-metadata", "CIS GKE 5.4.1, AVD-GCP-0057", high, pool+","+gke, "node_config.workload_metadata_config.mode != GCE_METADATA && node_config.workload_metadata_config.node_metadata !in EXPOSE,UNSPECIFIED", "pods can read the node's metadata server, and with it the node's credentials", "Set node_config.workload_metadata_config.mode = \"GKE_METADATA\".")
	tf("gcp-gke-node-image-cos", "CIS GKE 5.5.1, AVD-GCP-0054", low, pool, "node_config.image_type !~ (?i)ubuntu|windows", "the nodes do not run Container-Optimized OS", "Set node_config.image_type = \"COS_CONTAINERD\".")
	tf("gcp-gke-ip-aliasing", "CIS GKE 5.6.2, AVD-GCP-0049", low, gke, "ip_allocation_policy", "the cluster is not VPC-native (no IP aliasing)", "Add an ip_allocation_policy block.")
	tf("gcp-gke-master-networks", "CIS GKE 5.6.3, AVD-GCP-0061", high, gke, "master_authorized_networks_config", "any address may reach the control plane", "Add master_authorized_networks_config with your ranges.")
	tf("gcp-gke-master-networks-world", "AVD-GCP-0053", high, gke, "master_authorized_networks_config.cidr_blocks.cidr_block !in 0.0.0.0/0,::/0", "the control plane is authorized for the whole internet", "Remove 0.0.0.0/0 from master_authorized_networks_config.")
	tf("gcp-gke-network-policy", "CIS GKE 5.6.7, AVD-GCP-0056", med, gke, "network_policy.enabled == true unless datapath_provider == ADVANCED_DATAPATH || enable_autopilot == true", "network policy enforcement is off, so every pod can reach every other", "Set network_policy.enabled = true (or use Dataplane V2).")
	tf("gcp-gke-private-nodes", "CIS GKE 5.6.5, AVD-GCP-0059", med, gke, "private_cluster_config.enable_private_nodes == true", "the nodes have public IP addresses", "Set private_cluster_config.enable_private_nodes = true.")
	tf("gcp-gke-logging", "CIS GKE 5.7.1, AVD-GCP-0060", low, gke, "logging_service !in logging.googleapis.com,none", "the cluster does not use Kubernetes-aware Cloud Logging", "Set logging_service = \"logging.googleapis.com/kubernetes\".")
	tf("gcp-gke-monitoring", "CIS GKE 5.7.1, AVD-GCP-0052", low, gke, "monitoring_service !in monitoring.googleapis.com,none", "the cluster does not use Kubernetes-aware Cloud Monitoring", "Set monitoring_service = \"monitoring.googleapis.com/kubernetes\".")
	tf("gcp-gke-legacy-endpoints", "CIS GKE 5.4.1, AVD-GCP-0048", high, gke+","+pool, "node_config.metadata.disable-legacy-endpoints !in false", "the legacy metadata endpoints are enabled", "Set node_config.metadata disable-legacy-endpoints = true.")
	tf("gcp-gke-legacy-auth", "CIS GKE 5.8.1, AVD-GCP-0064", high, gke, "master_auth.client_certificate_config.issue_client_certificate != true && !master_auth.username", "the cluster issues client certificates or basic-auth credentials", "Remove master_auth client certificates and username/password; use IAM.")
	tf("gcp-gke-shielded-nodes", "CIS GKE 5.5.5, AVD-GCP-0055", high, gke, "enable_shielded_nodes != false", "Shielded GKE nodes are off", "Set enable_shielded_nodes = true.")
	tf("gcp-gke-labels", "AVD-GCP-0051", low, gke, "resource_labels", "the cluster has no labels to attribute cost and ownership", "Set resource_labels.")
	tf("gcp-gke-legacy-abac", "CIS GKE 5.8.3, AVD-GCP-0062", high, gke, "enable_legacy_abac != true", "legacy ABAC is enabled, bypassing RBAC", "Remove enable_legacy_abac = true.")
	tf("gcp-gke-service-account", "CIS GKE 5.2.1, AVD-GCP-0050", med, gke, "node_config.service_account || cluster_autoscaling.auto_provisioning_defaults.service_account unless remove_default_node_pool == true || enable_autopilot == true", "the nodes run as the default Compute service account", "Set node_config.service_account to a minimal service account.")
	tf("gcp-gke-pool-service-account", "CIS GKE 5.2.1, AVD-GCP-0050", med, pool, "node_config.service_account", "the node pool runs as the default Compute service account", "Set node_config.service_account to a minimal service account.")

	tf("gcp-iam-audit-config", "CIS GCP 2.1, AVD-GCP-0079", low, "google_project_iam_audit_config", "service == allServices && audit_log_config.log_type ~ ^ADMIN_READ$ && audit_log_config.log_type ~ ^DATA_READ$ && audit_log_config.log_type ~ ^DATA_WRITE$", "audit logging does not cover all services and all of admin read, data read and data write", "Set service = \"allServices\" with audit_log_config for ADMIN_READ, DATA_READ and DATA_WRITE.")
	tf("gcp-project-audit-config", "CIS GCP 2.1, AVD-GCP-0079", low, "google_project", "@google_project_iam_audit_config.any", "no audit logging configuration accompanies the project", "Add a google_project_iam_audit_config for allServices.")
	tf("gcp-wif-provider-condition", "AVD-GCP-0068", high, "google_iam_workload_identity_pool_provider", "attribute_condition", "any identity of the external provider (any GitHub repository, say) can use the pool", "Set attribute_condition to your organisation or repository.")
	tf("gcp-project-default-network", "CIS GCP 3.1, AVD-GCP-0010", high, "google_project", "auto_create_network == false", "the project gets the default network with its permissive firewall rules (unset means true)", "Set auto_create_network = false.")
	const folder = "google_folder_iam_member,google_folder_iam_binding"
	const org = "google_organization_iam_member,google_organization_iam_binding"
	const proj = "google_project_iam_member,google_project_iam_binding"
	const defaultSA = `member !~ -compute@developer\.gserviceaccount\.com$|@appspot\.gserviceaccount\.com$ && members !~ -compute@developer\.gserviceaccount\.com$|@appspot\.gserviceaccount\.com$`
	tf("gcp-folder-default-sa-role", "CIS GCP 1.5, AVD-GCP-0004", med, folder, defaultSA, "a role is granted to a default service account", "Grant roles to dedicated service accounts.")
	tf("gcp-org-default-sa-role", "CIS GCP 1.5, AVD-GCP-0008", med, org, defaultSA, "a role is granted to a default service account", "Grant roles to dedicated service accounts.")
	tf("gcp-project-default-sa-role", "CIS GCP 1.5, AVD-GCP-0006", med, proj, defaultSA, "a role is granted to a default service account", "Grant roles to dedicated service accounts.")
	const impersonate = "role !in roles/iam.serviceAccountUser,roles/iam.serviceAccountTokenCreator"
	tf("gcp-folder-sa-impersonation", "CIS GCP 1.6, AVD-GCP-0005", med, folder, impersonate, "service account impersonation is granted for a whole folder", "Grant serviceAccountUser on the one service account needed.")
	tf("gcp-org-sa-impersonation", "CIS GCP 1.6, AVD-GCP-0009", med, org, impersonate, "service account impersonation is granted for the whole organisation", "Grant serviceAccountUser on the one service account needed.")
	tf("gcp-project-sa-impersonation", "CIS GCP 1.6, AVD-GCP-0011", med, proj, impersonate, "service account impersonation is granted for the whole project", "Grant serviceAccountUser on the one service account needed.")
	const all = folder + "," + org + "," + proj
	tf("gcp-iam-personal-email", "CIS GCP 1.1, AVD-GCP-0069", low, all, `member !~ @(gmail|googlemail|hotmail|yahoo|outlook)\.com$ && members !~ @(gmail|googlemail|hotmail|yahoo|outlook)\.com$`, "a personal email account is granted a role", "Grant roles to accounts of your organisation's domain.")
	tf("gcp-iam-privileged-sa", "CIS GCP 1.5, AVD-GCP-0007", high, all, "role !in roles/owner,roles/editor unless member !~ ^serviceAccount: && members !~ ^serviceAccount:", "a service account holds Owner or Editor", "Grant the service account the narrow roles it needs.")
	tf("gcp-iam-user-granted", "AVD-GCP-0003", med, all, "member !~ ^user: && members !~ ^user:", "a role is granted to a user directly rather than to a group", "Grant roles to groups and manage membership there.")
	tf("gcp-kms-rotation", "CIS GCP 1.10, AVD-GCP-0065", high, "google_kms_crypto_key", "rotation_period ~ ^([0-9]{1,6}|[0-6][0-9]{6}|7[0-6][0-9]{5}|77[0-6][0-9]{4}|7776000)(\\.[0-9]+)?s$ unless purpose ~ ^ASYMMETRIC", "the key is not rotated at least every 90 days", "Set rotation_period = \"7776000s\" or less.")

	const sql = "google_sql_database_instance"
	tf("gcp-sql-backup", "CIS GCP 6.7, AVD-GCP-0024", med, sql, "settings.backup_configuration.enabled == true unless master_instance_name", "automated backups are off", "Set settings.backup_configuration.enabled = true.")
	tf("gcp-sql-ssl", "CIS GCP 6.4, AVD-GCP-0015", high, sql, "settings.ip_configuration.require_ssl == true || settings.ip_configuration.ssl_mode in ENCRYPTED_ONLY,TRUSTED_CLIENT_CERTIFICATE_REQUIRED", "the database accepts unencrypted connections", "Set settings.ip_configuration.ssl_mode = \"ENCRYPTED_ONLY\".")
	pg := func(id, ref, flag, want, why string) {
		tf(id, ref, med, sql, "settings.database_flags[name="+flag+"].value "+want+" unless database_version !~ ^POSTGRES", why, "Set the database flag "+flag+" as the CIS benchmark asks.")
	}
	pg("gcp-sql-pg-log-temp-files", "CIS GCP 6.2.6, AVD-GCP-0014", "log_temp_files", "== 0", "temporary files are not logged (log_temp_files is not 0)")
	pg("gcp-sql-pg-log-checkpoints", "AVD-GCP-0025", "log_checkpoints", "== on", "checkpoints are not logged")
	pg("gcp-sql-pg-log-connections", "CIS GCP 6.2.2, AVD-GCP-0016", "log_connections", "== on", "connections are not logged")
	pg("gcp-sql-pg-log-disconnections", "CIS GCP 6.2.3, AVD-GCP-0022", "log_disconnections", "== on", "disconnections are not logged")
	pg("gcp-sql-pg-log-lock-waits", "AVD-GCP-0020", "log_lock_waits", "== on", "lock waits are not logged")
	pg("gcp-sql-pg-log-min-messages", "CIS GCP 6.2.5, AVD-GCP-0018", "log_min_messages", "!in FATAL,PANIC,LOG", "errors below FATAL are not logged")
	pg("gcp-sql-pg-log-min-duration", "CIS GCP 6.2.7, AVD-GCP-0021", "log_min_duration_statement", "!~ ^[0-9]+$", "statement text is logged, with whatever data it carries")
	tf("gcp-sql-mysql-local-infile", "CIS GCP 6.1.3, AVD-GCP-0026", high, sql, "settings.database_flags[name=local_infile].value != on unless database_version !~ ^MYSQL", "MySQL local_infile is on, letting clients read server files", "Set the database flag local_infile = off.")
	tf("gcp-sql-contained-db-auth", "CIS GCP 6.3.7, AVD-GCP-0023", med, sql, "settings.database_flags[name=contained database authentication].value == off unless database_version !~ ^SQLSERVER", "contained database authentication is not turned off", "Set the database flag \"contained database authentication\" = off.")
	tf("gcp-sql-cross-db-chaining", "CIS GCP 6.3.2, AVD-GCP-0019", med, sql, "settings.database_flags[name=cross db ownership chaining].value == off unless database_version !~ ^SQLSERVER", "cross-database ownership chaining is not turned off", "Set the database flag \"cross db ownership chaining\" = off.")

	tf("gcp-storage-cmk", "AVD-GCP-0066", low, "google_storage_bucket", "encryption.default_kms_key_name", "the bucket is not encrypted with a customer managed key", "Set encryption.default_kms_key_name.")
	tf("gcp-storage-logging", "AVD-GCP-0077", med, "google_storage_bucket", "logging.log_bucket || @google_storage_bucket.logging.log_bucket", "access logging is off for the bucket", "Add logging { log_bucket = … }.")
	tf("gcp-storage-versioning", "AVD-GCP-0078", med, "google_storage_bucket", "versioning.enabled == true", "the bucket is not versioned", "Add versioning { enabled = true }.")
	tf("gcp-storage-ubla", "CIS GCP 5.2, AVD-GCP-0002", med, "google_storage_bucket", "uniform_bucket_level_access == true", "object ACLs can grant access that bucket IAM does not show", "Set uniform_bucket_level_access = true.")
	tf("gcp-storage-public", "CIS GCP 5.1, AVD-GCP-0001", high, "google_storage_bucket_iam_binding,google_storage_bucket_iam_member,google_storage_bucket_access_control,google_storage_default_object_access_control", "members !in allUsers,allAuthenticatedUsers && member !in allUsers,allAuthenticatedUsers && entity !in allUsers,allAuthenticatedUsers", "the bucket is readable by anyone", "Remove allUsers and allAuthenticatedUsers.")
}
