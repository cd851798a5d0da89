package ops

// SetAfterLogRead sets o's hook called once a replay has read its log.
func SetAfterLogRead(o *ReplayOptions, f func()) { o.afterLogRead = f }
