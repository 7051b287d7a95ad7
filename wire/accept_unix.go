package wire

import (
	"errors"
	"syscall"
)

// isTemporaryAcceptError reports accept errors worth retrying: running out of
// file descriptors or memory, or a connection aborted before we accepted it.
func isTemporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
