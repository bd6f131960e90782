package misconfig

import "github.com/interlock-dev/interlock/internal/scan"

const (
	low  = scan.SeverityLow
	med  = scan.SeverityMedium
	high = scan.SeverityHigh
	crit = scan.SeverityCritical
)

// AWS checks: CIS AWS Foundations Benchmark v1.4–3.0 where a section
// applies, else the AVD catalogue entry that trivy-checks uses, so
// findings map one to one. Written for Interlock; see tfrules.go for the
// condition language.
func init() {
	const publicACLs = "public-read,public-read-write,authenticated-read"
	tf("tf-s3-public-acl", "CIS AWS 2.1.5, AVD-AWS-0092", high, "aws_s3_bucket,aws_s3_bucket_acl", "acl !in "+publicACLs, "the S3 bucket ACL grants access to everyone", `Use acl = "private" and grant access with bucket policies to named principals.`)
	tf("aws-s3-block-public-acls", "CIS AWS 2.1.5, AVD-AWS-0086", high, "aws_s3_bucket_public_access_block", "block_public_acls == true", "the S3 public access block does not block public ACLs (unset means false)", "Set block_public_acls = true.")
	tf("aws-s3-block-public-policy", "CIS AWS 2.1.5, AVD-AWS-0087", high, "aws_s3_bucket_public_access_block", "block_public_policy == true", "the S3 public access block does not block public bucket policies (unset means false)", "Set block_public_policy = true.")
	tf("aws-s3-ignore-public-acls", "CIS AWS 2.1.5, AVD-AWS-0091", high, "aws_s3_bucket_public_access_block", "ignore_public_acls == true", "the S3 public access block does not ignore public ACLs (unset means false)", "Set ignore_public_acls = true.")
	tf("aws-s3-restrict-public-buckets", "CIS AWS 2.1.5, AVD-AWS-0093", high, "aws_s3_bucket_public_access_block", "restrict_public_buckets == true", "the S3 public access block does not restrict public buckets (unset means false)", "Set restrict_public_buckets = true.")
	tf("aws-s3-account-public-access-block", "CIS AWS 2.1.5", high, "aws_s3_account_public_access_block", "block_public_acls == true && block_public_policy == true && ignore_public_acls == true && restrict_public_buckets == true", "the account-wide S3 public access block leaves a setting off (unset means false)", "Set all four block_/ignore_/restrict_ attributes to true.")
	tf("aws-s3-public-access-block-missing", "AVD-AWS-0094", low, "aws_s3_bucket", "@aws_s3_bucket_public_access_block.bucket", "the bucket has no public access block of its own", "Add an aws_s3_bucket_public_access_block for the bucket with all four settings true.")
	tf("aws-s3-encryption", "CIS AWS 2.1.1, AVD-AWS-0088", high, "aws_s3_bucket", "server_side_encryption_configuration || @aws_s3_bucket_server_side_encryption_configuration.bucket", "the bucket declares no server-side encryption", "Add an aws_s3_bucket_server_side_encryption_configuration (aws:kms with your key).")
	tf("aws-s3-encryption-cmk", "AVD-AWS-0132", low, "aws_s3_bucket", "server_side_encryption_configuration.rule.apply_server_side_encryption_by_default.kms_master_key_id || @aws_s3_bucket_server_side_encryption_configuration.bucket: rule.apply_server_side_encryption_by_default.kms_master_key_id unless acl == log-delivery-write || @aws_s3_bucket_acl.bucket: acl == log-delivery-write || @aws_s3_bucket_acl.bucket: access_control_policy.grant.grantee.uri ~ LogDelivery$ || !server_side_encryption_configuration && !@aws_s3_bucket_server_side_encryption_configuration.bucket", "the bucket is encrypted with an AWS-managed key rather than one you control", "Set kms_master_key_id to a customer managed KMS key.")
	tf("aws-s3-logging", "CIS AWS 3.6, AVD-AWS-0089", low, "aws_s3_bucket", "logging || @aws_s3_bucket_logging.bucket unless acl == log-delivery-write || @aws_s3_bucket_acl.bucket: acl == log-delivery-write", "server access logging is off for the bucket", "Add an aws_s3_bucket_logging pointing at a log bucket.")
	tf("aws-s3-versioning", "AVD-AWS-0090", med, "aws_s3_bucket", "versioning.enabled == true || @aws_s3_bucket_versioning.bucket: versioning_configuration.status == Enabled", "the bucket is not versioned, so overwritten or deleted objects are gone", "Add an aws_s3_bucket_versioning with status = \"Enabled\".")
	tf("aws-s3-versioning-disabled", "AVD-AWS-0090", med, "aws_s3_bucket_versioning", "versioning_configuration.status == Enabled", "bucket versioning is suspended", "Set versioning_configuration.status = \"Enabled\".")
	tf("aws-s3-mfa-delete", "CIS AWS 2.1.3, AVD-AWS-0170", low, "aws_s3_bucket_versioning", "versioning_configuration.mfa_delete == Enabled", "versioned objects can be deleted without MFA", "Set versioning_configuration.mfa_delete = \"Enabled\" (requires the root account's MFA).")

	tf("aws-apigw-access-logging", "AVD-AWS-0001", med, "aws_api_gateway_stage,aws_apigatewayv2_stage", "access_log_settings.destination_arn", "the API Gateway stage has no access log", "Add access_log_settings with a CloudWatch log group destination_arn.")
	tf("aws-apigw-cache", "AVD-AWS-0190", low, "aws_api_gateway_method_settings", "settings.caching_enabled == true", "API Gateway response caching is off", "Set settings.caching_enabled = true.")
	tf("aws-apigw-cache-encryption", "AVD-AWS-0002", med, "aws_api_gateway_method_settings", "settings.cache_data_encrypted == true unless settings.caching_enabled != true", "the API Gateway cache is not encrypted", "Set settings.cache_data_encrypted = true.")
	tf("aws-apigw-tracing", "AVD-AWS-0003", low, "aws_api_gateway_stage", "xray_tracing_enabled == true", "X-Ray tracing is off for the API Gateway stage", "Set xray_tracing_enabled = true.")
	tf("aws-apigw-no-auth", "AVD-AWS-0004", low, "aws_api_gateway_method", "authorization != NONE unless api_key_required == true || http_method in OPTIONS,OPTION", "the API method needs no authorization", "Set authorization (AWS_IAM, COGNITO_USER_POOLS or CUSTOM) or require an API key.")
	tf("aws-apigw-tls", "AVD-AWS-0005", high, "aws_api_gateway_domain_name", "security_policy !~ (?i)TLS_1_0|TLS-1-0|TLS_1_1", "the API Gateway domain accepts TLS 1.0", "Set security_policy = \"TLS_1_2\" or a TLS 1.3 policy.")

	tf("aws-athena-db-encryption", "AVD-AWS-0006", high, "aws_athena_database", "encryption_configuration", "the Athena database is not encrypted at rest", "Add encryption_configuration (SSE_KMS with your key).")
	tf("aws-athena-workgroup-encryption", "AVD-AWS-0006", high, "aws_athena_workgroup", "configuration.result_configuration.encryption_configuration", "Athena workgroup results are not encrypted at rest", "Add configuration.result_configuration.encryption_configuration.")
	tf("aws-athena-workgroup-enforce", "AVD-AWS-0007", high, "aws_athena_workgroup", "configuration && configuration.enforce_workgroup_configuration != false", "clients may override the workgroup's encryption settings", "Set configuration.enforce_workgroup_configuration = true.")

	tf("aws-cloudfront-logging", "AVD-AWS-0010", med, "aws_cloudfront_distribution", "logging_config || @aws_cloudwatch_log_delivery_source.resource_arn", "the CloudFront distribution has no access log", "Add logging_config with a log bucket.")
	tf("aws-cloudfront-waf", "AVD-AWS-0011", high, "aws_cloudfront_distribution", "web_acl_id", "no WAF protects the CloudFront distribution", "Set web_acl_id to an AWS WAF web ACL.")
	tf("aws-cloudfront-https", "AVD-AWS-0012", crit, "aws_cloudfront_distribution", "default_cache_behavior.viewer_protocol_policy != allow-all && ordered_cache_behavior.viewer_protocol_policy != allow-all", "the CloudFront distribution serves plain HTTP", "Set viewer_protocol_policy = \"redirect-to-https\" or \"https-only\".")
	tf("aws-cloudfront-tls", "AVD-AWS-0013", high, "aws_cloudfront_distribution", "viewer_certificate.minimum_protocol_version ~ ^TLSv1\\.2 unless !viewer_certificate || viewer_certificate.cloudfront_default_certificate == true", "the CloudFront distribution accepts TLS older than 1.2", "Set viewer_certificate.minimum_protocol_version = \"TLSv1.2_2021\" or newer.")

	tf("aws-cloudtrail-multi-region", "CIS AWS 3.1, AVD-AWS-0014", med, "aws_cloudtrail", "is_multi_region_trail == true", "the trail records one region only", "Set is_multi_region_trail = true.")
	tf("aws-cloudtrail-log-validation", "CIS AWS 3.2, AVD-AWS-0016", high, "aws_cloudtrail", "enable_log_file_validation == true", "trail log files can be altered without detection", "Set enable_log_file_validation = true.")
	tf("aws-cloudtrail-cmk", "CIS AWS 3.7, AVD-AWS-0015", high, "aws_cloudtrail", "kms_key_id", "trail logs are not encrypted with a customer managed key", "Set kms_key_id to a KMS key you control.")
	tf("aws-cloudtrail-cloudwatch", "CIS AWS 3.4, AVD-AWS-0162", low, "aws_cloudtrail", "cloud_watch_logs_group_arn", "trail events do not reach CloudWatch Logs, so no alarm can fire on them", "Set cloud_watch_logs_group_arn and cloud_watch_logs_role_arn.")
	tf("aws-cloudtrail-bucket-public", "CIS AWS 3.3, AVD-AWS-0161", crit, "aws_s3_bucket", "acl !in "+publicACLs+" && !@aws_s3_bucket_acl.bucket: acl in "+publicACLs+" unless !@aws_cloudtrail.s3_bucket_name", "the bucket holding CloudTrail logs is public", "Make the trail's bucket private and add a public access block.")
	tf("aws-cloudtrail-bucket-logging", "CIS AWS 3.6, AVD-AWS-0163", low, "aws_s3_bucket", "logging || @aws_s3_bucket_logging.bucket unless !@aws_cloudtrail.s3_bucket_name", "the bucket holding CloudTrail logs has no access log of its own", "Add an aws_s3_bucket_logging for the trail's bucket.")
	tf("tf-logging-disabled", "CIS AWS 3.1", med, "aws_cloudtrail", "enable_logging != false", "the trail is switched off, so misuse leaves no trace", "Remove enable_logging = false.")
	tf("aws-cloudwatch-log-group-cmk", "AVD-AWS-0017", low, "aws_cloudwatch_log_group", "kms_key_id", "the log group is not encrypted with a customer managed key", "Set kms_key_id.")
	tf("aws-codebuild-artifact-encryption", "AVD-AWS-0018", high, "aws_codebuild_project", "artifacts.encryption_disabled != true && secondary_artifacts.encryption_disabled != true", "CodeBuild artifacts are stored unencrypted", "Remove encryption_disabled = true.")
	tf("aws-config-aggregate-all-regions", "AVD-AWS-0019", high, "aws_config_configuration_aggregator", "account_aggregation_source.all_regions == true || organization_aggregation_source.all_regions == true", "the Config aggregator misses some regions", "Set all_regions = true.")

	tf("aws-docdb-log-export", "AVD-AWS-0020", med, "aws_docdb_cluster", "enabled_cloudwatch_logs_exports ~ ^(audit|profiler)$", "DocumentDB exports no audit or profiler logs", "Set enabled_cloudwatch_logs_exports = [\"audit\", \"profiler\"].")
	tf("aws-docdb-encryption", "AVD-AWS-0021", high, "aws_docdb_cluster", "storage_encrypted == true", "DocumentDB storage is not encrypted (unset means false)", "Set storage_encrypted = true.")
	tf("aws-docdb-cmk", "AVD-AWS-0022", low, "aws_docdb_cluster", "kms_key_id", "DocumentDB is not encrypted with a customer managed key", "Set kms_key_id.")
	tf("aws-dax-encryption", "AVD-AWS-0023", high, "aws_dax_cluster", "server_side_encryption.enabled == true", "the DAX cluster is not encrypted at rest", "Add server_side_encryption { enabled = true }.")
	tf("aws-dynamodb-pitr", "AVD-AWS-0024", med, "aws_dynamodb_table", "point_in_time_recovery.enabled == true", "point-in-time recovery is off for the table", "Add point_in_time_recovery { enabled = true }.")
	tf("aws-dynamodb-cmk", "AVD-AWS-0025", low, "aws_dynamodb_table", "server_side_encryption.enabled == true && server_side_encryption.kms_key_arn && server_side_encryption.kms_key_arn !~ ^alias/aws/", "the table is not encrypted with a customer managed key", "Add server_side_encryption { enabled = true, kms_key_arn = … }.")

	tf("aws-sg-description", "AVD-AWS-0099, AVD-AWS-0049", low, "aws_security_group,aws_elasticache_security_group,aws_db_security_group,aws_redshift_security_group", "description", "the security group has no description, so reviewers cannot tell what it is for", "Add a description.")
	tf("aws-sg-rule-description", "AVD-AWS-0124", low, "aws_security_group_rule,aws_vpc_security_group_ingress_rule,aws_vpc_security_group_egress_rule", "description", "the security group rule has no description", "Add a description.")
	tf("aws-sg-ingress-description", "AVD-AWS-0124", low, "aws_security_group", "each ingress: description", "a security group rule has no description", "Add a description to every ingress and egress block.")
	tf("aws-sg-egress-description", "AVD-AWS-0124", low, "aws_security_group", "each egress: description", "a security group rule has no description", "Add a description to every ingress and egress block.")
	tf("aws-sg-egress-world", "AVD-AWS-0104", crit, "aws_security_group", "each egress: cidr_blocks !in 0.0.0.0/0,::/0 && ipv6_cidr_blocks !in ::/0", "the security group allows egress to any address", "Restrict egress cidr_blocks to the destinations the workload needs.")
	tf("aws-sg-rule-egress-world", "AVD-AWS-0104", crit, "aws_security_group_rule", "cidr_blocks !in 0.0.0.0/0 && ipv6_cidr_blocks !in ::/0 unless type != egress", "the security group rule allows egress to any address", "Restrict cidr_blocks to the destinations the workload needs.")
	tf("aws-sg-egress-rule-world", "AVD-AWS-0104", crit, "aws_vpc_security_group_egress_rule", "cidr_ipv4 != 0.0.0.0/0 && cidr_ipv6 != ::/0", "the egress rule allows traffic to any address", "Restrict cidr_ipv4/cidr_ipv6.")
	tf("aws-nacl-all-ports", "AVD-AWS-0102", crit, "aws_network_acl_rule", "protocol !in all,-1", "the network ACL rule covers every port and protocol", "Name the protocol and port range.")
	tf("aws-nacl-ingress-world", "CIS AWS 5.1, AVD-AWS-0105", med, "aws_network_acl_rule", "cidr_block != 0.0.0.0/0 && ipv6_cidr_block != ::/0 unless egress == true || rule_action ~ (?i)deny", "the network ACL allows ingress from any address", "Restrict cidr_block to known ranges.")

	const lt = "aws_instance,aws_launch_template,aws_launch_configuration"
	tf("aws-ec2-imdsv2", "AVD-AWS-0028, AVD-AWS-0130", high, lt, "metadata_options.http_tokens == required || metadata_options.http_endpoint == disabled", "the instance metadata service accepts IMDSv1, so an SSRF can steal the instance role's credentials", "Add metadata_options { http_tokens = \"required\" }.")
	tf("aws-ec2-user-data-aws-keys", "AVD-AWS-0029, AVD-AWS-0129", crit, lt, "user_data !~ (?i)AKIA[0-9A-Z]{16}|aws_secret_access_key && user_data_base64 !~ (?i)AKIA[0-9A-Z]{16}|aws_secret_access_key", "user data carries AWS access keys, readable by anyone who can describe the instance", "Use an instance profile instead of keys in user data.")
	tf("aws-ec2-user-data-secret", "AVD-AWS-0122", high, lt, "user_data !~ (?i)(password|passwd|secret|token)[A-Za-z_]*\\s*= && user_data_base64 !~ (?i)(password|passwd|secret|token)[A-Za-z_]*\\s*=", "user data carries a password or token", "Fetch secrets at boot from Secrets Manager or SSM Parameter Store.")
	tf("aws-ec2-root-volume-encryption", "AVD-AWS-0131, AVD-AWS-0008", high, "aws_instance,aws_launch_configuration", "each root_block_device: encrypted == true", "the root volume is not encrypted (unset means false)", "Set root_block_device.encrypted = true.")
	tf("aws-ec2-ebs-block-encryption", "AVD-AWS-0131, AVD-AWS-0008", high, "aws_instance,aws_launch_configuration", "each ebs_block_device: encrypted == true", "an attached EBS volume is not encrypted (unset means false)", "Set ebs_block_device.encrypted = true.")
	tf("aws-ebs-encryption", "CIS AWS 2.2.1, AVD-AWS-0026", high, "aws_ebs_volume", "encrypted == true", "the EBS volume is not encrypted (unset means false)", "Set encrypted = true.")
	tf("aws-ebs-cmk", "AVD-AWS-0027", low, "aws_ebs_volume", "kms_key_id", "the EBS volume is not encrypted with a customer managed key", "Set kms_key_id.")
	tf("aws-ec2-public-ip", "AVD-AWS-0009", high, "aws_launch_configuration,aws_instance", "associate_public_ip_address != true", "instances get a public IP address", "Set associate_public_ip_address = false and reach instances through a load balancer or bastion.")
	tf("aws-subnet-public-ip", "AVD-AWS-0164", high, "aws_subnet", "map_public_ip_on_launch != true", "instances in the subnet get public IP addresses by default", "Set map_public_ip_on_launch = false.")
	tf("aws-default-vpc", "AVD-AWS-0101", high, "aws_default_vpc", "false", "the default VPC is in use; its subnets are public by default", "Create a dedicated VPC with private subnets.")
	tf("aws-vpc-flow-logs", "CIS AWS 3.9, AVD-AWS-0178", med, "aws_vpc", "@aws_flow_log.vpc_id", "the VPC has no flow log", "Add an aws_flow_log for the VPC.")
	tf("aws-ami-owners", "AVD-AWS-0344", low, "data.aws_ami", "owners", "the AMI lookup does not restrict owners, so anyone's image with a matching name can be picked", "Set owners to the publisher's account ID.")

	tf("aws-ecr-scan-on-push", "AVD-AWS-0030", high, "aws_ecr_repository", "image_scanning_configuration.scan_on_push == true", "images are not scanned on push", "Add image_scanning_configuration { scan_on_push = true }.")
	tf("aws-ecr-immutable-tags", "AVD-AWS-0031", high, "aws_ecr_repository", "image_tag_mutability ~ ^IMMUTABLE", "image tags can be overwritten, so a tag may point at a different image tomorrow", "Set image_tag_mutability = \"IMMUTABLE\".")
	tf("aws-ecr-public-policy", "AVD-AWS-0032", high, "aws_ecr_repository_policy", `policy !~ "Principal"\s*:\s*(\{\s*"AWS"\s*:\s*)?"\*"`, "the repository policy allows any principal", "Name the accounts or roles that may pull.")
	tf("aws-ecr-cmk", "AVD-AWS-0033", low, "aws_ecr_repository", "encryption_configuration.encryption_type == KMS", "the repository is not encrypted with a customer managed key", "Add encryption_configuration { encryption_type = \"KMS\" }.")
	tf("aws-ecs-container-insights", "AVD-AWS-0034", low, "aws_ecs_cluster", "setting.value in enabled,enhanced", "container insights are off for the ECS cluster", "Add setting { name = \"containerInsights\" value = \"enabled\" }.")
	tf("aws-ecs-efs-transit-encryption", "AVD-AWS-0035", high, "aws_ecs_task_definition", "each volume: !efs_volume_configuration || efs_volume_configuration.transit_encryption == ENABLED", "an EFS volume is mounted without encryption in transit", "Set efs_volume_configuration.transit_encryption = \"ENABLED\".")
	tf("aws-ecs-plaintext-secret", "AVD-AWS-0036", crit, "aws_ecs_task_definition", `container_definitions !~ (?i)"name"\s*:\s*"[a-z0-9_]*(password|passwd|secret|token|api_?key|private_?key)[a-z0-9_]*"\s*,\s*"value"`, "a container definition carries a secret as a plain environment variable", "Use the secrets block with Secrets Manager or SSM Parameter Store ARNs.")
	tf("aws-efs-encryption", "AVD-AWS-0037", high, "aws_efs_file_system", "encrypted == true", "the EFS file system is not encrypted (unset means false)", "Set encrypted = true.")

	tf("aws-eks-control-plane-logging", "AVD-AWS-0038", med, "aws_eks_cluster", "enabled_cluster_log_types ~ ^api$ && enabled_cluster_log_types ~ ^audit$ && enabled_cluster_log_types ~ ^authenticator$ && enabled_cluster_log_types ~ ^controllerManager$ && enabled_cluster_log_types ~ ^scheduler$", "EKS control plane logging is incomplete", "Set enabled_cluster_log_types to api, audit, authenticator, controllerManager and scheduler.")
	tf("aws-eks-secrets-encryption", "AVD-AWS-0039", high, "aws_eks_cluster", "encryption_config.resources ~ ^secrets$ && encryption_config.provider.key_arn", "Kubernetes secrets are not envelope-encrypted with KMS", "Add encryption_config { resources = [\"secrets\"] provider { key_arn = … } }.")
	tf("aws-eks-public-endpoint", "AVD-AWS-0040", crit, "aws_eks_cluster", "vpc_config.endpoint_public_access == false", "the EKS API endpoint is public (unset means true)", "Set vpc_config.endpoint_public_access = false.")
	tf("aws-eks-public-endpoint-cidr", "AVD-AWS-0041", crit, "aws_eks_cluster", "vpc_config.public_access_cidrs && vpc_config.public_access_cidrs !in 0.0.0.0/0 unless vpc_config.endpoint_public_access == false", "the public EKS API endpoint is open to any address (the default CIDR is 0.0.0.0/0)", "Set vpc_config.public_access_cidrs to your ranges, or disable public access.")

	tf("aws-elasticache-rg-at-rest", "AVD-AWS-0045", high, "aws_elasticache_replication_group", "at_rest_encryption_enabled == true", "ElastiCache data is not encrypted at rest", "Set at_rest_encryption_enabled = true.")
	tf("aws-elasticache-rg-in-transit", "AVD-AWS-0051", high, "aws_elasticache_replication_group", "transit_encryption_enabled == true", "ElastiCache traffic is not encrypted", "Set transit_encryption_enabled = true.")
	tf("aws-elasticache-backup", "AVD-AWS-0050", med, "aws_elasticache_cluster", "snapshot_retention_limit >= 1 unless engine == memcached || node_type == cache.t1.micro", "the Redis cluster keeps no backups", "Set snapshot_retention_limit to at least 1.")
	const es = "aws_elasticsearch_domain,aws_opensearch_domain"
	tf("aws-es-at-rest", "AVD-AWS-0048", high, es, "encrypt_at_rest.enabled == true", "the search domain is not encrypted at rest", "Add encrypt_at_rest { enabled = true }.")
	tf("aws-es-audit-logs", "AVD-AWS-0042", med, es, "log_publishing_options.log_type ~ AUDIT_LOGS && log_publishing_options.enabled != false", "the search domain publishes no audit log", "Add log_publishing_options with log_type = \"AUDIT_LOGS\".")
	tf("aws-es-node-to-node", "AVD-AWS-0043", high, es, "node_to_node_encryption.enabled == true", "traffic between search nodes is not encrypted", "Add node_to_node_encryption { enabled = true }.")
	tf("aws-es-https", "AVD-AWS-0046", crit, es, "domain_endpoint_options.enforce_https == true", "the search domain accepts plain HTTP", "Set domain_endpoint_options.enforce_https = true.")
	tf("aws-es-tls", "AVD-AWS-0126", high, es, "domain_endpoint_options.tls_security_policy !~ TLS-1-0", "the search domain accepts TLS 1.0", "Set tls_security_policy = \"Policy-Min-TLS-1-2-2019-07\" or newer.")

	const lb = "aws_lb,aws_alb"
	tf("aws-lb-internet-facing", "AVD-AWS-0053", high, lb, "internal == true unless load_balancer_type == gateway", "the load balancer faces the internet", "Set internal = true unless the service is meant to be public (then suppress this finding).")
	tf("aws-lb-drop-invalid-headers", "AVD-AWS-0052", high, lb, "drop_invalid_header_fields == true unless load_balancer_type in network,gateway", "the load balancer forwards invalid HTTP headers (request smuggling)", "Set drop_invalid_header_fields = true.")
	tf("aws-lb-access-logs", "AVD-AWS-0150", med, "aws_lb,aws_alb,aws_elb", "access_logs.enabled != false", "load balancer access logging is disabled", "Set access_logs.enabled = true.")
	tf("aws-lb-listener-http", "AVD-AWS-0054", crit, "aws_lb_listener,aws_alb_listener", "protocol !in HTTP || default_action.redirect.protocol == HTTPS", "the listener serves plain HTTP", "Use protocol = \"HTTPS\" with a certificate, or redirect HTTP to HTTPS.")
	tf("aws-lb-listener-tls", "AVD-AWS-0047", crit, "aws_lb_listener,aws_alb_listener", "ssl_policy !~ TLS-1-0|TLS-1-1|ELBSecurityPolicy-2016-08|ELBSecurityPolicy-2015", "the listener's TLS policy allows TLS 1.0 or 1.1", "Use ssl_policy = \"ELBSecurityPolicy-TLS13-1-2-2021-06\".")

	tf("aws-emr-at-rest", "AVD-AWS-0137", high, "aws_emr_security_configuration", `configuration ~ "EnableAtRestEncryption"\s*:\s*true`, "EMR data is not encrypted at rest", "Set EnableAtRestEncryption to true in the security configuration.")
	tf("aws-emr-in-transit", "AVD-AWS-0138", high, "aws_emr_security_configuration", `configuration ~ "EnableInTransitEncryption"\s*:\s*true`, "EMR traffic is not encrypted", "Set EnableInTransitEncryption to true.")
	tf("aws-emr-local-disk", "AVD-AWS-0139", high, "aws_emr_security_configuration", `configuration ~ "EncryptionKeyProviderType"\s*:\s*"[^"]+"`, "EMR local disks are not encrypted", "Set LocalDiskEncryptionConfiguration with a key provider.")

	const pp = "aws_iam_account_password_policy"
	tf("aws-iam-password-reuse", "CIS AWS 1.9, AVD-AWS-0056", med, pp, "password_reuse_prevention >= 5", "the password policy allows reusing recent passwords", "Set password_reuse_prevention = 24.")
	tf("aws-iam-password-lowercase", "AVD-AWS-0058", med, pp, "require_lowercase_characters == true", "passwords need no lowercase letter", "Set require_lowercase_characters = true.")
	tf("aws-iam-password-numbers", "AVD-AWS-0059", med, pp, "require_numbers == true", "passwords need no digit", "Set require_numbers = true.")
	tf("aws-iam-password-symbols", "AVD-AWS-0060", med, pp, "require_symbols == true", "passwords need no symbol", "Set require_symbols = true.")
	tf("aws-iam-password-uppercase", "AVD-AWS-0061", med, pp, "require_uppercase_characters == true", "passwords need no uppercase letter", "Set require_uppercase_characters = true.")
	tf("aws-iam-password-max-age", "AVD-AWS-0062", med, pp, "max_password_age <= 90 && max_password_age >= 1", "passwords never expire or live longer than 90 days", "Set max_password_age = 90 or less.")
	tf("aws-iam-password-length", "CIS AWS 1.8, AVD-AWS-0063", med, pp, "minimum_password_length >= 14", "the minimum password length is under 14", "Set minimum_password_length = 14 or more.")
	tf("aws-iam-group-mfa", "AVD-AWS-0123", med, "aws_iam_group", "@aws_iam_group_policy_attachment.group || @aws_iam_group_policy.group: policy ~ MultiFactorAuthPresent", "no policy on the group requires MFA", "Attach a policy that denies actions when aws:MultiFactorAuthPresent is false.")
	tf("aws-iam-s3-full-access", "AVD-AWS-0345", high, "aws_iam_policy,aws_iam_role_policy,aws_iam_user_policy,aws_iam_group_policy", `policy !~ "s3:\*"`, "the policy grants every S3 action", "Grant the S3 actions the principal needs, on named buckets.")
	tf("aws-iam-s3-full-access-attached", "AVD-AWS-0345", high, "aws_iam_role_policy_attachment,aws_iam_user_policy_attachment,aws_iam_group_policy_attachment,aws_iam_policy_attachment", "policy_arn !~ AmazonS3FullAccess$", "AmazonS3FullAccess is attached", "Attach a policy scoped to the buckets and actions needed.")
	tf("aws-iam-policy-wildcard", "CIS AWS 1.16, AVD-AWS-0057", high, "aws_iam_policy,aws_iam_role_policy,aws_iam_user_policy,aws_iam_group_policy", `policy !~ "Effect"\s*:\s*"Allow"[^}]*"(Action|Resource)"\s*:\s*\[?\s*"(\*|[a-z0-9-]+:\*)"|"(Action|Resource)"\s*:\s*\[?\s*"(\*|[a-z0-9-]+:\*)"[^}]*"Effect"\s*:\s*"Allow"`, "the policy allows wildcard actions or resources", "Name the actions and resources the principal needs.")
	tf("aws-iam-policy-document-wildcard", "CIS AWS 1.16, AVD-AWS-0057", high, "data.aws_iam_policy_document", `each statement: effect == Deny || actions !~ ^(\*|[a-z0-9-]+:\*)$ && resources !~ ^\*$`, "the policy document allows wildcard actions or resources", "Name the actions and resources the principal needs.")
	tf("aws-iam-root-access-key", "CIS AWS 1.4, AVD-AWS-0141", crit, "aws_iam_access_key", "user != root", "an access key is created for the root user", "Delete root access keys; use IAM roles.")
	tf("aws-iam-user-policy", "CIS AWS 1.15, AVD-AWS-0143", low, "aws_iam_user_policy,aws_iam_user_policy_attachment", "false", "a policy is attached to a user directly rather than through a group or role", "Attach policies to groups or roles and add users to them.")

	tf("aws-kinesis-encryption", "AVD-AWS-0064", high, "aws_kinesis_stream", "encryption_type == KMS", "the Kinesis stream is not encrypted", "Set encryption_type = \"KMS\".")
	tf("aws-kms-rotation", "CIS AWS 3.8, AVD-AWS-0065", med, "aws_kms_key", "enable_key_rotation == true unless key_usage == SIGN_VERIFY || customer_master_key_spec ~ ^(RSA|ECC|HMAC)", "the KMS key is not rotated", "Set enable_key_rotation = true.")
	tf("aws-lambda-tracing", "AVD-AWS-0066", low, "aws_lambda_function", "tracing_config.mode == Active", "X-Ray tracing is off for the function", "Add tracing_config { mode = \"Active\" }.")
	tf("aws-lambda-permission-source", "AVD-AWS-0067", crit, "aws_lambda_permission", "source_arn unless principal !~ \\.amazonaws\\.com$", "any account's resource of that service may invoke the function", "Set source_arn to the resource allowed to invoke it.")
	tf("aws-mq-audit-log", "AVD-AWS-0070", med, "aws_mq_broker", "logs.audit == true unless engine_type ~ (?i)rabbitmq", "the broker keeps no audit log", "Set logs.audit = true.")
	tf("aws-mq-general-log", "AVD-AWS-0071", low, "aws_mq_broker", "logs.general == true", "the broker keeps no general log", "Set logs.general = true.")
	tf("aws-mq-public", "AVD-AWS-0072", high, "aws_mq_broker", "publicly_accessible != true", "the broker is reachable from the internet", "Set publicly_accessible = false.")
	tf("aws-msk-at-rest-cmk", "AVD-AWS-0179", high, "aws_msk_cluster", "encryption_info.encryption_at_rest_kms_key_arn", "MSK data is not encrypted with a key you control", "Set encryption_info.encryption_at_rest_kms_key_arn.")
	tf("aws-msk-in-transit", "AVD-AWS-0073", high, "aws_msk_cluster", "encryption_info.encryption_in_transit.client_broker !in TLS_PLAINTEXT,PLAINTEXT", "clients may talk to MSK brokers in plaintext", "Set encryption_in_transit.client_broker = \"TLS\".")
	tf("aws-msk-logging", "AVD-AWS-0074", med, "aws_msk_cluster", "logging_info.broker_logs.s3.enabled == true || logging_info.broker_logs.cloudwatch_logs.enabled == true || logging_info.broker_logs.firehose.enabled == true", "MSK broker logs go nowhere", "Enable logging_info.broker_logs to S3, CloudWatch or Firehose.")
	tf("aws-neptune-log-export", "AVD-AWS-0075", med, "aws_neptune_cluster", "enable_cloudwatch_logs_exports ~ ^audit$", "Neptune exports no audit log", "Set enable_cloudwatch_logs_exports = [\"audit\"].")
	tf("aws-neptune-encryption", "AVD-AWS-0076", high, "aws_neptune_cluster", "storage_encrypted == true", "Neptune storage is not encrypted (unset means false)", "Set storage_encrypted = true.")
	tf("aws-neptune-cmk", "AVD-AWS-0128", high, "aws_neptune_cluster", "kms_key_arn", "Neptune is not encrypted with a customer managed key", "Set kms_key_arn.")

	tf("tf-db-publicly-accessible", "CIS AWS 2.3.3, AVD-AWS-0180, AVD-AWS-0082", high, "aws_db_instance,aws_rds_cluster_instance,aws_redshift_cluster,aws_dms_replication_instance", "publicly_accessible != true", "the database instance is reachable from the internet", "Set publicly_accessible = false and reach it through private networking.")
	tf("aws-rds-performance-insights", "AVD-AWS-0133", low, "aws_rds_cluster_instance,aws_db_instance", "performance_insights_enabled == true", "Performance Insights is off", "Set performance_insights_enabled = true.")
	tf("aws-rds-performance-insights-cmk", "AVD-AWS-0078", low, "aws_rds_cluster_instance,aws_db_instance", "performance_insights_kms_key_id unless performance_insights_enabled != true", "Performance Insights data is not encrypted with a customer managed key", "Set performance_insights_kms_key_id.")
	tf("aws-rds-cluster-encryption", "CIS AWS 2.3.1, AVD-AWS-0079", high, "aws_rds_cluster", "storage_encrypted == true && kms_key_id unless replication_source_identifier", "the RDS cluster's storage is not encrypted with a KMS key you name (unset storage_encrypted means false)", "Set storage_encrypted = true (and kms_key_id).")
	tf("aws-rds-instance-encryption", "CIS AWS 2.3.1, AVD-AWS-0080", high, "aws_db_instance", "storage_encrypted == true unless replicate_source_db", "the DB instance's storage is not encrypted (unset means false)", "Set storage_encrypted = true.")
	tf("aws-rds-backup-retention", "AVD-AWS-0077", med, "aws_db_instance,aws_rds_cluster", "backup_retention_period >= 2 unless replicate_source_db || replication_source_identifier", "backups are kept for a day or less", "Set backup_retention_period to 7 days or more.")
	tf("aws-redshift-encryption", "AVD-AWS-0084", high, "aws_redshift_cluster", "encrypted == true", "the Redshift cluster is not encrypted (unset means false)", "Set encrypted = true.")
	tf("aws-redshift-cmk", "AVD-AWS-0084", high, "aws_redshift_cluster", "kms_key_id unless encrypted != true", "the Redshift cluster is not encrypted with a customer managed key", "Set kms_key_id.")
	tf("aws-redshift-vpc", "AVD-AWS-0127", high, "aws_redshift_cluster", "cluster_subnet_group_name", "the Redshift cluster is not placed in a VPC subnet group", "Set cluster_subnet_group_name.")

	tf("aws-sns-encryption", "AVD-AWS-0095", high, "aws_sns_topic", "kms_master_key_id", "the SNS topic is not encrypted", "Set kms_master_key_id.")
	tf("aws-sns-cmk", "AVD-AWS-0136", high, "aws_sns_topic", "kms_master_key_id != alias/aws/sns", "the SNS topic uses the AWS-managed key", "Use a customer managed KMS key.")
	tf("aws-sqs-encryption", "AVD-AWS-0096", high, "aws_sqs_queue", "kms_master_key_id || sqs_managed_sse_enabled == true", "the SQS queue is not encrypted", "Set kms_master_key_id or sqs_managed_sse_enabled = true.")
	tf("aws-sqs-cmk", "AVD-AWS-0135", high, "aws_sqs_queue", "kms_master_key_id != alias/aws/sqs", "the SQS queue uses the AWS-managed key", "Use a customer managed KMS key.")
	tf("aws-sqs-policy-wildcard", "AVD-AWS-0097", high, "aws_sqs_queue_policy", `policy !~ "Action"\s*:\s*\[?\s*"(sqs:)?\*"`, "the queue policy allows every action", "Name the SQS actions needed.")
	tf("aws-secretsmanager-cmk", "AVD-AWS-0098", low, "aws_secretsmanager_secret", "kms_key_id && kms_key_id !~ ^alias/aws/", "the secret is not encrypted with a customer managed key", "Set kms_key_id.")
	tf("aws-workspaces-encryption", "AVD-AWS-0109", high, "aws_workspaces_workspace", "root_volume_encryption_enabled == true && user_volume_encryption_enabled == true", "WorkSpaces volumes are not encrypted", "Set root_volume_encryption_enabled and user_volume_encryption_enabled to true.")
}
