package wire

// ServerList answers GET /v1/agent/servers: the https:// URLs of the
// servers sharing the database that were alive a moment ago, for agents to
// fail over along. It is empty with a single server (SQLite).
type ServerList struct {
	Servers []string `json:"servers"`
}
