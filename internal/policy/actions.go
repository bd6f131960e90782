package policy

// Action names, exactly as Cedar sees them: Action::"op.run". Every API
// route names one of these; policies that name any other action are
// refused by Apply.
const (
	ActionWhoami              = "whoami"
	ActionSessionLogout       = "session.logout"
	ActionUserInvite          = "user.invite"
	ActionUserList            = "user.list"
	ActionUserDisable         = "user.disable"
	ActionDeviceList          = "device.list"
	ActionDeviceRevoke        = "device.revoke"
	ActionHostList            = "host.list"
	ActionHostRevoke          = "host.revoke"
	ActionHostReturn          = "host.return"
	ActionJoinTokenCreate     = "jointoken.create"
	ActionServiceList         = "service.list"
	ActionServiceSet          = "service.set"
	ActionRunbookList         = "runbook.list"
	ActionRunbookGet          = "runbook.get"
	ActionRunbookApply        = "runbook.apply"
	ActionOpPlan              = "op.plan"
	ActionOpRun               = "op.run"
	ActionOpList              = "op.list"
	ActionOpGet               = "op.get"
	ActionOpApprove           = "op.approve"
	ActionOpDeny              = "op.deny"
	ActionOpHalt              = "op.halt"
	ActionOpResume            = "op.resume"
	ActionOpAbort             = "op.abort"
	ActionOpBreakglass        = "op.breakglass"
	ActionPolicyGet           = "policy.get"
	ActionPolicyApply         = "policy.apply"
	ActionPolicyTest          = "policy.test"
	ActionLogRead             = "log.read"
	ActionLogRedact           = "log.redact"
	ActionLogFork             = "log.fork"
	ActionKMSKeyCreate        = "kms.key.create"
	ActionKMSKeyRotate        = "kms.key.rotate"
	ActionKMSKeyList          = "kms.key.list"
	ActionKMSKeyGet           = "kms.key.get"
	ActionKMSEncrypt          = "kms.encrypt"
	ActionKMSDecrypt          = "kms.decrypt"
	ActionKMSDataKey          = "kms.datakey"
	ActionKMSRewrap           = "kms.rewrap"
	ActionKMSKeyDisable       = "kms.key.disable"
	ActionKMSKeyDestroy       = "kms.key.destroy"
	ActionKMSKeySetMinVersion = "kms.key.set_min_version"
	ActionSecretPut           = "secret.put"
	ActionSecretGet           = "secret.get"
	ActionSecretList          = "secret.list"
	ActionSecretVersions      = "secret.versions"
	ActionSecretDelete        = "secret.delete"
	ActionScanReport          = "scan.report"
	ActionAgentConnect        = "agent.connect"
	ActionAgentReport         = "agent.report"
	// Separation of duties (issue 9): a requester takes back their own
	// operation; internal/ops checks that the caller is the requester.
	ActionOpWithdraw = "op.withdraw"

	// Change requests for the gate's own configuration (internal/change).
	ActionChangeList     = "change.list"
	ActionChangeGet      = "change.get"
	ActionChangeApprove  = "change.approve"
	ActionChangeDeny     = "change.deny"
	ActionChangeWithdraw = "change.withdraw"
	ActionChangeApply    = "change.apply"

	// Reading /metrics with a session (issue 11); a scrape token is the
	// other way in (api.MetricsRoute).
	ActionMetricsRead = "metrics.read"
	// Passkeys (web console, issue 11): each person manages their own;
	// internal/passkey scopes every call to the caller.
	ActionPasskeyList     = "passkey.list"
	ActionPasskeyRegister = "passkey.register"
	ActionPasskeyRemove   = "passkey.remove"
	// People (issue 12, account recovery): resetting credentials is always
	// a change request; enabling and setting roles are when they loosen.
	ActionUserReset    = "user.reset"
	ActionUserEnable   = "user.enable"
	ActionUserSetRoles = "user.set_roles"
	// Just-in-time elevation, training and access review (issue 12;
	// internal/elevate, internal/training, internal/review).
	ActionElevateRequest     = "elevate.request"
	ActionElevateApprove     = "elevate.approve"
	ActionElevateDeny        = "elevate.deny"
	ActionElevateRevoke      = "elevate.revoke"
	ActionElevateList        = "elevate.list"
	ActionElevateEligibility = "elevate.eligibility"
	ActionTrainingRecord     = "training.record"
	ActionTrainingList       = "training.list"
	ActionAccessReview       = "access.review"
	ActionAccessDecide       = "access.decide"
)

// Actions lists every action Interlock knows, in a stable order.
var Actions = []string{
	ActionWhoami, ActionSessionLogout,
	ActionUserInvite, ActionUserList, ActionUserDisable,
	ActionDeviceList, ActionDeviceRevoke,
	ActionHostList, ActionHostRevoke, ActionHostReturn, ActionJoinTokenCreate,
	ActionServiceList, ActionServiceSet,
	ActionRunbookList, ActionRunbookGet, ActionRunbookApply,
	ActionOpPlan, ActionOpRun, ActionOpList, ActionOpGet, ActionOpApprove, ActionOpDeny,
	ActionOpHalt, ActionOpResume, ActionOpAbort, ActionOpBreakglass,
	ActionPolicyGet, ActionPolicyApply, ActionPolicyTest,
	ActionLogRead, ActionLogRedact, ActionLogFork,
	ActionKMSKeyCreate, ActionKMSKeyRotate, ActionKMSKeyList, ActionKMSKeyGet,
	ActionKMSEncrypt, ActionKMSDecrypt, ActionKMSDataKey, ActionKMSRewrap,
	ActionKMSKeyDisable, ActionKMSKeyDestroy, ActionKMSKeySetMinVersion,
	ActionSecretPut, ActionSecretGet, ActionSecretList, ActionSecretVersions, ActionSecretDelete,
	ActionScanReport,
	ActionAgentConnect, ActionAgentReport,
	ActionOpWithdraw,
	ActionChangeList, ActionChangeGet, ActionChangeApprove, ActionChangeDeny, ActionChangeWithdraw, ActionChangeApply,
	ActionMetricsRead,
	ActionPasskeyList, ActionPasskeyRegister, ActionPasskeyRemove,
	ActionUserReset, ActionUserEnable, ActionUserSetRoles,
	ActionElevateRequest, ActionElevateApprove, ActionElevateDeny, ActionElevateRevoke, ActionElevateList, ActionElevateEligibility,
	ActionTrainingRecord, ActionTrainingList, ActionAccessReview, ActionAccessDecide,
}

// Resource types a [Request] may name.
const (
	ResourceService   = "Service"
	ResourceHost      = "Host"
	ResourceRunbook   = "Runbook"
	ResourceOperation = "Operation"
	ResourceKey       = "Key"
	ResourceSecret    = "Secret"
	ResourcePolicy    = "Policy"
	ResourceLog       = "Log"
	ResourceSystem    = "System"
	ResourceChange    = "Change" // a change request, Change::"<id>"
)

// ResourceTypes lists every resource type.
var ResourceTypes = []string{
	ResourceService, ResourceHost, ResourceRunbook, ResourceOperation, ResourceKey,
	ResourceSecret, ResourcePolicy, ResourceLog, ResourceSystem,
	ResourceChange,
}

// Principal and grouping entity types, as Cedar sees them.
const (
	EntityPerson = "Person" // Person::"<person id>", member of Role::"<role>" for each role
	EntityAgent  = "Agent"  // Agent::"<host id>"
	EntityRole   = "Role"   // Role::"viewer", Role::"operator", …
	EntityAction = "Action" // Action::"op.run"
)

var (
	knownActions     = setOf(Actions)
	knownEntityTypes = setOf(append([]string{EntityPerson, EntityAgent, EntityRole, EntityAction}, ResourceTypes...))
	knownResources   = setOf(ResourceTypes)
)

func setOf(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}
