package agent

// SetMaxInProcessSteps sets the bound on step processes the agents of one
// process run at once, for the agents started after it; it returns a func
// that puts the old bound back.
func SetMaxInProcessSteps(n int) (restore func()) {
	old := maxInProcessSteps
	maxInProcessSteps = n
	return func() { maxInProcessSteps = old }
}
