package store

import "time"

// nowUnix is used only for bookkeeping columns the domain does not own
// (schema_migrations). Domain timestamps come from the caller's injected clock.
func nowUnix() int64 { return time.Now().Unix() }
