//go:build linux && race

package netstamp

import "syscall"

// raceAcquireIO tells the race detector what syscall.Read would: the
// standard library annotates its read and write syscalls as synchronizing
// (through a shared variable), so that memory written before a peer's write
// counts as visible after the read that got its bytes. recvmsg through
// unix.Syscall carries no such annotation; a zero-length read(2) on the
// socket consumes nothing and does. Race builds only.
func raceAcquireIO(fd uintptr) { syscall.Read(int(fd), nil) }

// rawWrite is syscall.Write in race builds: its race annotation is the one
// the standard library's reads on the other side acquire.
func rawWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
