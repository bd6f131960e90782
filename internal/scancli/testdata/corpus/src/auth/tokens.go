package auth

// Token kinds.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
)

func check(password string) bool { return password == hashOf(password) }

var passwordHash = "$2b$12$IIYnY8XjH4CPsCkaUI9chkVipg7hfzlVUiJHQ0wpvocL8IcdWh9OA"
var apiKeyHeader = "X-Api-Key"
var secretName = "db-credentials"

func Secret() string { return os.Getenv("SECRET") }
