//go:build linux && !race

package netstamp

import (
	"syscall"
	"unsafe"
)

func raceAcquireIO(uintptr) {}

// rawWrite is write(2) on the non-blocking socket without the scheduler's
// syscall bookkeeping, for the reason recv gives.
func rawWrite(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
