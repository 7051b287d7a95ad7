package postgres

// SetRetentionScanRows makes retention's time walk read n rows per query,
// so a test can make it take several; it returns the restore.
func SetRetentionScanRows(n int) (restore func()) {
	old := retentionScanRows
	retentionScanRows = n
	return func() { retentionScanRows = old }
}
