package exec

// WaitersForTest counts the change channels the engine holds.
func (e *Engine) WaitersForTest() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.changed)
}
