package misconfig

// Azure checks: CIS Microsoft Azure Foundations Benchmark v2 where a
// section applies, else the AVD entry. See tfrules.go.
func init() {
	const app = "azurerm_app_service,azurerm_linux_web_app,azurerm_windows_web_app"
	const fn = "azurerm_function_app,azurerm_linux_function_app,azurerm_windows_function_app"
	tf("azure-app-identity", "CIS Azure 9.5, AVD-AZU-0002", low, app, "identity", "the app has no managed identity, so it must hold credentials itself", "Add an identity block (SystemAssigned or UserAssigned).")
	tf("azure-app-auth", "CIS Azure 9.1, AVD-AZU-0003", med, "azurerm_app_service", "auth_settings.enabled == true", "App Service authentication is off", "Add auth_settings { enabled = true }.")
	tf("azure-app-http2", "CIS Azure 9.9, AVD-AZU-0005", low, "azurerm_app_service", "site_config.http2_enabled == true", "the app does not serve HTTP/2", "Set site_config.http2_enabled = true.")
	tf("azure-app-ftps", "CIS Azure 9.10, AVD-AZU-0071", med, app+","+fn, "site_config.ftps_state != AllAllowed", "the app accepts plain FTP deployments", "Set site_config.ftps_state = \"FtpsOnly\" or \"Disabled\".")
	tf("azure-function-https", "CIS Azure 9.2, AVD-AZU-0004", crit, fn, "https_only == true", "the function app accepts plain HTTP (unset means it does)", "Set https_only = true.")
	tf("azure-app-https", "CIS Azure 9.2, AVD-AZU-0072", med, app, "https_only == true", "the web app accepts plain HTTP (unset means it does)", "Set https_only = true.")
	tf("azure-app-php-version", "AVD-AZU-0069", med, app, "site_config.php_version !~ ^(5|7)\\.|^8\\.0$", "the app runs a PHP version that no longer gets security fixes", "Use PHP 8.2 or newer.")
	tf("azure-app-python-version", "AVD-AZU-0070", med, app, "site_config.python_version !~ ^(2\\.|3\\.[0-8]$)", "the app runs a Python version that no longer gets security fixes", "Use Python 3.9 or newer.")
	tf("azure-app-client-cert", "CIS Azure 9.4, AVD-AZU-0001", low, "azurerm_app_service", "client_cert_enabled == true", "the app does not ask for client certificates", "Set client_cert_enabled = true.")
	tf("azure-app-tls", "CIS Azure 9.3, AVD-AZU-0006", high, app+","+fn, "site_config.min_tls_version !in 1.0,1.1", "the app accepts TLS 1.0 or 1.1", "Set site_config.min_tls_version = \"1.2\".")
	tf("azure-role-all-actions", "AVD-AZU-0030", med, "azurerm_role_definition", "permissions.actions !in * || assignable_scopes !in /", "the custom role allows every action at the root scope", "List the actions the role needs and scope it to a subscription or group.")
	tf("azure-role-custom-role-creation", "CIS Azure 1.23, AVD-AZU-0052", med, "azurerm_role_definition", "permissions.actions !in *,Microsoft.Authorization/*,Microsoft.Authorization/roleDefinitions/*,Microsoft.Authorization/roleDefinitions/write", "the role may create custom roles, a path to privilege escalation", "Remove Microsoft.Authorization/roleDefinitions/write from actions.")
	tf("azure-vm-password-auth", "CIS Azure 7.x, AVD-AZU-0039", high, "azurerm_linux_virtual_machine,azurerm_virtual_machine", "disable_password_authentication != false && os_profile_linux_config.disable_password_authentication != false", "SSH password login is enabled on the VM", "Set disable_password_authentication = true and use admin_ssh_key.")
	tf("azure-managed-disk-encryption", "CIS Azure 7.3, AVD-AZU-0038", high, "azurerm_managed_disk", "encryption_settings.enabled != false", "the managed disk's encryption is turned off", "Remove encryption_settings.enabled = false.")
	tf("azure-vm-custom-data-secret", "AVD-AZU-0037", med, "azurerm_virtual_machine,azurerm_linux_virtual_machine,azurerm_windows_virtual_machine", "os_profile.custom_data !~ (?i)(password|passwd|secret|token)[A-Za-z_]*\\s*= && custom_data !~ (?i)(password|passwd|secret|token)[A-Za-z_]*\\s*=", "custom data carries a password or token, readable from the VM's metadata", "Fetch secrets at boot from Key Vault with the VM's managed identity.")
	tf("azure-nic-no-nsg", "AVD-AZU-0068", med, "azurerm_network_interface", "network_security_group_id || @azurerm_network_interface_security_group_association.network_interface_id", "the network interface has no network security group", "Associate an NSG with the interface or its subnet.")
	tf("azure-nic-public-ip", "AVD-AZU-0076", med, "azurerm_network_interface", "!ip_configuration.public_ip_address_id", "the network interface has a public IP address", "Remove public_ip_address_id; reach the VM through Bastion or a load balancer.")
	tf("azure-nic-ip-forwarding", "AVD-AZU-0075", med, "azurerm_network_interface", "enable_ip_forwarding != true && ip_forwarding_enabled != true", "the interface forwards packets it did not originate", "Set ip_forwarding_enabled = false unless the VM is a router.")

	const aks = "azurerm_kubernetes_cluster"
	tf("azure-aks-network-policy", "CIS AKS 5.4.4, AVD-AZU-0043", high, aks, "network_profile.network_policy", "no network policy engine, so every pod can reach every other", "Set network_profile.network_policy = \"calico\" or \"azure\".")
	tf("azure-aks-policy-addon", "AVD-AZU-0066", low, aks, "azure_policy_enabled == true || addon_profile.azure_policy.enabled == true", "the Azure Policy add-on is off", "Set azure_policy_enabled = true.")
	tf("azure-aks-disk-encryption-set", "AVD-AZU-0067", low, aks, "disk_encryption_set_id", "node disks are not encrypted with a customer managed key", "Set disk_encryption_set_id.")
	tf("azure-aks-private", "CIS AKS 5.4.2, AVD-AZU-0065", med, aks, "private_cluster_enabled == true", "the AKS API server has a public endpoint", "Set private_cluster_enabled = true.")
	tf("azure-aks-authorized-ips", "CIS AKS 5.4.1, AVD-AZU-0041", crit, aks, "api_server_access_profile.authorized_ip_ranges || api_server_authorized_ip_ranges unless private_cluster_enabled == true", "any address may reach the AKS API server", "Set api_server_access_profile.authorized_ip_ranges.")
	tf("azure-aks-monitoring", "AVD-AZU-0040", med, aks, "oms_agent || addon_profile.oms_agent.enabled == true", "AKS logs do not reach Azure Monitor", "Add an oms_agent block with a Log Analytics workspace.")
	tf("azure-aks-rbac", "CIS AKS 5.x, AVD-AZU-0042", high, aks, "role_based_access_control.enabled != false && role_based_access_control_enabled != false", "Kubernetes RBAC is off", "Set role_based_access_control_enabled = true.")

	tf("azure-sql-alerts-disabled", "CIS Azure 4.2.1, AVD-AZU-0028", med, "azurerm_mssql_server_security_alert_policy", "disabled_alerts !~ .", "some threat detection alerts are disabled", "Empty disabled_alerts.")
	tf("azure-sql-alert-email", "AVD-AZU-0018", med, "azurerm_mssql_server_security_alert_policy", "email_addresses", "threat alerts are sent to nobody", "Set email_addresses.")
	tf("azure-sql-alert-admins", "AVD-AZU-0023", low, "azurerm_mssql_server_security_alert_policy", "email_account_admins == true", "threat alerts do not reach the subscription's admins", "Set email_account_admins = true.")
	tf("azure-sql-audit", "CIS Azure 4.1.1, AVD-AZU-0027", med, "azurerm_sql_server,azurerm_mssql_server", "extended_auditing_policy || @azurerm_mssql_server_extended_auditing_policy.server_id", "auditing is off for the SQL server", "Add an azurerm_mssql_server_extended_auditing_policy.")
	tf("azure-sql-audit-retention", "CIS Azure 4.1.3, AVD-AZU-0025", med, "azurerm_mssql_database_extended_auditing_policy,azurerm_mssql_server_extended_auditing_policy", "retention_in_days >= 90 || retention_in_days == 0 || !retention_in_days", "audit logs are kept less than 90 days", "Set retention_in_days = 90 or more (0 keeps them forever).")
	const dbs = "azurerm_postgresql_server,azurerm_mysql_server,azurerm_mariadb_server"
	tf("azure-db-ssl", "CIS Azure 4.3.1, AVD-AZU-0020", med, dbs, "ssl_enforcement_enabled == true", "the database accepts unencrypted connections", "Set ssl_enforcement_enabled = true.")
	tf("tf-db-azure-public-network", "CIS Azure 4.3.7, AVD-AZU-0022", high, dbs+",azurerm_mssql_server,azurerm_postgresql_flexible_server,azurerm_mysql_flexible_server", "public_network_access_enabled == false", "the database server accepts connections from the public internet (unset means it does)", "Set public_network_access_enabled = false and use a private endpoint.")
	tf("azure-db-firewall-world", "CIS Azure 4.1.2, AVD-AZU-0029", high, "azurerm_sql_firewall_rule,azurerm_mssql_firewall_rule,azurerm_postgresql_firewall_rule,azurerm_mysql_firewall_rule,azurerm_mariadb_firewall_rule,azurerm_postgresql_flexible_server_firewall_rule,azurerm_mysql_flexible_server_firewall_rule", "start_ip_address != 0.0.0.0 || end_ip_address !in 255.255.255.255", "the database firewall admits every address", "Admit only your networks' ranges.")
	pgconf := func(id, ref, name string) {
		tf(id, ref, med, "azurerm_postgresql_server", "@azurerm_postgresql_configuration.server_name: name == "+name+" && value == on", "the server parameter "+name+" is not on", "Add an azurerm_postgresql_configuration setting "+name+" = on.")
	}
	pgconf("azure-pg-connection-throttling", "CIS Azure 4.3.6, AVD-AZU-0021", "connection_throttling")
	pgconf("azure-pg-log-checkpoints", "CIS Azure 4.3.3, AVD-AZU-0024", "log_checkpoints")
	pgconf("azure-pg-log-connections", "CIS Azure 4.3.4, AVD-AZU-0019", "log_connections")
	tf("azure-db-tls", "CIS Azure 4.3.x, AVD-AZU-0026", med, "azurerm_mssql_server,azurerm_mysql_server,azurerm_postgresql_server", "minimum_tls_version !in 1.0,1.1 && ssl_minimal_tls_version_enforced !in TLS1_0,TLS1_1,TLSEnforcementDisabled", "the database accepts TLS older than 1.2", "Set minimum_tls_version = \"1.2\".")
	tf("azure-data-factory-public", "AVD-AZU-0035", crit, "azurerm_data_factory", "public_network_enabled == false", "the Data Factory is reachable from the internet (unset means it is)", "Set public_network_enabled = false.")
	tf("azure-data-lake-encryption", "AVD-AZU-0036", high, "azurerm_data_lake_store", "encryption_state != Disabled", "the Data Lake store is not encrypted", "Set encryption_state = \"Enabled\".")

	tf("azure-kv-secret-content-type", "AVD-AZU-0015", low, "azurerm_key_vault_secret", "content_type", "the secret has no content type", "Set content_type.")
	tf("azure-kv-key-expiry", "CIS Azure 8.1, AVD-AZU-0014", med, "azurerm_key_vault_key", "expiration_date", "the key never expires", "Set expiration_date.")
	tf("azure-kv-secret-expiry", "CIS Azure 8.3, AVD-AZU-0017", low, "azurerm_key_vault_secret", "expiration_date", "the secret never expires", "Set expiration_date.")
	tf("azure-kv-purge-protection", "CIS Azure 8.5, AVD-AZU-0016", med, "azurerm_key_vault", "purge_protection_enabled == true && soft_delete_enabled != false", "deleted keys and secrets can be purged at once, with no recovery", "Set purge_protection_enabled = true.")
	tf("azure-kv-network-acl", "CIS Azure 8.6, AVD-AZU-0013", crit, "azurerm_key_vault", "network_acls.default_action == Deny", "the key vault accepts connections from any network", "Add network_acls { default_action = \"Deny\" bypass = \"AzureServices\" }.")

	const lp = "azurerm_monitor_log_profile"
	tf("azure-log-profile-retention", "CIS Azure 5.1.2, AVD-AZU-0031", med, lp, "retention_policy.enabled == true && retention_policy.days >= 365 || retention_policy.enabled == true && retention_policy.days == 0", "the activity log is kept less than a year", "Set retention_policy { enabled = true days = 365 }.")
	tf("azure-log-profile-categories", "CIS Azure 5.1.3, AVD-AZU-0033", med, lp, "categories ~ ^Action$ && categories ~ ^Delete$ && categories ~ ^Write$", "the log profile does not capture Action, Delete and Write", "Set categories = [\"Action\", \"Delete\", \"Write\"].")
	tf("azure-log-profile-regions", "CIS Azure 5.1.4, AVD-AZU-0032", med, lp, "locations ~ ^global$ && locations ~ ^eastus$ && locations ~ ^westeurope$ && locations ~ ^southeastasia$", "the log profile does not capture every region", "List global and every region in locations.")

	const rule = "source_address_prefix !in *,0.0.0.0/0,0.0.0.0,internet,any,::/0 && source_address_prefixes !in *,0.0.0.0/0,0.0.0.0,internet,any,::/0 unless direction != Inbound || access != Allow"
	const egress = "destination_address_prefix !in *,0.0.0.0/0,0.0.0.0,internet,any,::/0 && destination_address_prefixes !in *,0.0.0.0/0,0.0.0.0,internet,any,::/0 unless direction != Outbound || access != Allow"
	tf("azure-nsg-rule-public-ingress", "CIS Azure 6.x, AVD-AZU-0047", crit, "azurerm_network_security_rule", rule, "the rule allows ingress from the whole internet", "Restrict source_address_prefix to known ranges.")
	tf("azure-nsg-public-ingress", "CIS Azure 6.x, AVD-AZU-0047", crit, "azurerm_network_security_group", "each security_rule: "+rule, "a rule allows ingress from the whole internet", "Restrict source_address_prefix to known ranges.")
	tf("azure-nsg-rule-public-egress", "AVD-AZU-0051", crit, "azurerm_network_security_rule", egress, "the rule allows egress to any address", "Restrict destination_address_prefix.")
	tf("azure-nsg-public-egress", "AVD-AZU-0051", crit, "azurerm_network_security_group", "each security_rule: "+egress, "a rule allows egress to any address", "Restrict destination_address_prefix.")
	tf("azure-flow-log-enabled", "CIS Azure 6.4, AVD-AZU-0073", med, "azurerm_network_watcher_flow_log", "enabled != false", "the NSG flow log is disabled", "Set enabled = true.")
	tf("azure-flow-log-retention", "CIS Azure 6.5, AVD-AZU-0049", low, "azurerm_network_watcher_flow_log", "retention_policy.enabled == true && retention_policy.days >= 90", "flow logs are kept less than 90 days", "Set retention_policy { enabled = true days = 90 }.")

	const contact = "azurerm_security_center_contact"
	tf("azure-defender-alert-notifications", "CIS Azure 2.1.19, AVD-AZU-0044, AVD-AZU-0063", med, contact, "alert_notifications == true", "high-severity alerts are not emailed", "Set alert_notifications = true.")
	tf("azure-defender-alerts-to-admins", "CIS Azure 2.1.20, AVD-AZU-0064", med, contact, "alerts_to_admins == true", "alerts do not reach subscription owners", "Set alerts_to_admins = true.")
	tf("azure-defender-contact-email", "CIS Azure 2.1.19, AVD-AZU-0062", med, contact, "email", "no security contact email is set", "Set email.")
	tf("azure-defender-contact-phone", "AVD-AZU-0046", low, contact, "phone", "no security contact phone is set", "Set phone.")
	tf("azure-defender-standard-tier", "CIS Azure 2.1.x, AVD-AZU-0045", low, "azurerm_security_center_subscription_pricing", "tier == Standard", "Defender for Cloud is on the free tier", "Set tier = \"Standard\".")

	const sa = "azurerm_storage_account"
	tf("tf-azure-storage-public", "CIS Azure 3.7", high, sa, "allow_nested_items_to_be_public != true && allow_blob_public_access != true", "the storage account allows public blob access", "Set allow_nested_items_to_be_public = false.")
	tf("azure-storage-container-public", "CIS Azure 3.7, AVD-AZU-0007", high, "azurerm_storage_container", "container_access_type !in blob,container", "the blob container is readable anonymously", "Set container_access_type = \"private\".")
	tf("azure-storage-bypass", "CIS Azure 3.9, AVD-AZU-0010", high, sa+",azurerm_storage_account_network_rules", "network_rules.bypass ~ AzureServices || bypass ~ AzureServices unless !network_rules.bypass && !bypass", "trusted Microsoft services cannot reach the account (logging and backup break)", "Add \"AzureServices\" to bypass.")
	tf("azure-storage-cmk", "CIS Azure 3.12, AVD-AZU-0060", med, sa, "customer_managed_key || @azurerm_storage_account_customer_managed_key.storage_account_id", "the storage account is not encrypted with a customer managed key", "Add an azurerm_storage_account_customer_managed_key.")
	tf("azure-storage-soft-delete", "CIS Azure 3.11, AVD-AZU-0056", med, sa, "blob_properties.delete_retention_policy.days >= 1", "deleted blobs cannot be recovered", "Set blob_properties.delete_retention_policy.days = 7 or more.")
	tf("azure-storage-default-deny", "CIS Azure 3.8, AVD-AZU-0012", crit, "azurerm_storage_account_network_rules", "default_action == Deny", "the storage account accepts connections from any network", "Set default_action = \"Deny\".")
	tf("azure-storage-account-default-deny", "CIS Azure 3.8, AVD-AZU-0012", crit, sa, "network_rules.default_action == Deny unless !network_rules", "the storage account accepts connections from any network", "Set network_rules.default_action = \"Deny\".")
	tf("azure-storage-geo-redundant", "AVD-AZU-0058", low, sa, "account_replication_type in GRS,RAGRS,GZRS,RAGZRS", "the account is not replicated to a second region", "Set account_replication_type = \"GRS\" or \"GZRS\".")
	tf("azure-storage-https", "CIS Azure 3.1, AVD-AZU-0008, AVD-AZU-0059", high, sa, "enable_https_traffic_only != false && https_traffic_only_enabled != false", "the storage account accepts plain HTTP", "Set https_traffic_only_enabled = true.")
	tf("azure-storage-infra-encryption", "CIS Azure 3.2, AVD-AZU-0061", med, sa, "infrastructure_encryption_enabled == true", "data is encrypted once, not twice (infrastructure encryption is off)", "Set infrastructure_encryption_enabled = true.")
	tf("azure-storage-queue-logging", "CIS Azure 3.5, AVD-AZU-0009, AVD-AZU-0057", med, sa, "queue_properties.logging unless !@azurerm_storage_queue.storage_account_name", "queue service requests are not logged", "Add queue_properties.logging with delete, read and write.")
	tf("azure-storage-tls", "CIS Azure 3.15, AVD-AZU-0011", crit, sa, "min_tls_version !in TLS1_0,TLS1_1", "the storage account accepts TLS older than 1.2", "Set min_tls_version = \"TLS1_2\".")
	tf("azure-synapse-managed-vnet", "AVD-AZU-0034", med, "azurerm_synapse_workspace", "managed_virtual_network_enabled == true", "the Synapse workspace has no managed virtual network", "Set managed_virtual_network_enabled = true.")
}
