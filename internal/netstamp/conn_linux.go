//go:build linux

package netstamp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobWords sizes the control buffer: room for one SCM_TIMESTAMPNS (16 bytes
// of data) or SCM_TIMESTAMPING (48) message with its header, in uint64s so
// that the buffer is aligned for the cmsghdr and timespec views.
const oobWords = 16

// setTimestamps enables kernel receive stamps on fd; a variable so that tests
// can make the socket refuse it.
var setTimestamps = func(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
}

// sysConn is the Linux part of a Conn: reads go through recvmsg on the raw
// socket (via syscall.RawConn, so the netpoller parks the goroutine and
// deadlines hold), writes through write(2) with a stamp before each syscall.
// The syscall state lives here, preallocated, so that a read or write
// allocates nothing.
type sysConn struct {
	rc     syscall.RawConn // nil: plain Read and Write of the wrapped conn
	kernel bool

	rmu    sync.Mutex // Read may be called concurrently; the state below is per call
	rbuf   []byte
	rn     int
	rerr   error
	msg    unix.Msghdr
	iov    unix.Iovec
	oob    [oobWords]uint64
	recvFn func(fd uintptr) bool

	wmu     sync.Mutex
	burst   burst
	wbuf    []byte
	wn      int
	werr    error
	wc      *Conn
	writeFn func(fd uintptr) bool
}

func (s *sysConn) init(c *Conn, kernel bool) error {
	sc, ok := c.Conn.(syscall.Conn)
	if _, tcp := c.Conn.(*net.TCPConn); !ok || !tcp {
		return errors.New("not a TCP connection")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	s.rc, s.wc = rc, c
	s.writeFn = s.send
	if !kernel {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setTimestamps(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("setsockopt SO_TIMESTAMPNS", serr)
	}
	s.kernel = true
	s.recvFn = s.recv
	return nil
}

// Read reads like the wrapped conn and stamps the read.
func (c *Conn) Read(b []byte) (int, error) {
	s := &c.sys
	if !s.kernel {
		n, err := c.Conn.Read(b)
		if n > 0 {
			w, m := now()
			c.read.store(0, w, m)
		}
		return n, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	s.rmu.Lock()
	s.rbuf, s.rn, s.rerr = b, 0, nil
	err := s.rc.Read(s.recvFn)
	n, rerr := s.rn, s.rerr
	var kernel int64
	if n > 0 {
		kernel = parseStamp(s.oobBytes()[:s.msg.Controllen])
	}
	s.rbuf, s.iov.Base = nil, nil
	s.rmu.Unlock()
	if n > 0 {
		w, m := now()
		c.read.store(kernel, w, m)
	}
	switch {
	case err != nil:
		return n, c.opError("read", err)
	case rerr != nil:
		return n, c.opError("read", os.NewSyscallError("read", rerr))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (s *sysConn) oobBytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&s.oob[0])), len(s.oob)*8)
}

// recv is the RawConn read callback: one recvmsg, false to wait for
// readability.
func (s *sysConn) recv(fd uintptr) bool {
	for {
		s.iov.Base = &s.rbuf[0]
		s.iov.SetLen(len(s.rbuf))
		s.msg.Iov = &s.iov
		s.msg.SetIovlen(1)
		s.msg.Control = (*byte)(unsafe.Pointer(&s.oob[0]))
		s.msg.SetControllen(len(s.oob) * 8)
		s.msg.Flags = 0
		// Raw: the socket is non-blocking, so recvmsg returns at once, and
		// Syscall's entersyscall/exitsyscall would only add cost: on a
		// mostly idle client each one woke the sleeping sysmon thread, a
		// futex wake per read that was 10% of the client's CPU at 300
		// req/s.
		n, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)), 0)
		switch errno {
		case 0:
			s.rn = int(n)
			raceAcquireIO(fd)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			s.msg.Controllen = 0
			return false
		}
		s.msg.Controllen = 0
		s.rerr = errno
		return true
	}
}

// parseStamp returns the receive time (Unix ns) in the control messages, 0
// when there is none.
func parseStamp(oob []byte) int64 {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && (h.Type == unix.SCM_TIMESTAMPNS || h.Type == unix.SCM_TIMESTAMPING) &&
			l-hdr >= int(unsafe.Sizeof(unix.Timespec{})) {
			// SCM_TIMESTAMPING's first timespec is the software stamp, the
			// one SOF_TIMESTAMPING_RX_SOFTWARE asks for.
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[hdr]))
			if ns := ts.Nano(); ns > 0 {
				return ns
			}
		}
		next := unix.CmsgSpace(l - hdr)
		if next >= len(oob) {
			return 0
		}
		oob = oob[next:]
	}
	return 0
}

// Write writes b, stamping the instant before each write syscall: the last
// stamp is right before the syscall that carried b's last byte.
func (c *Conn) Write(b []byte) (int, error) {
	s := &c.sys
	if s.rc == nil {
		s.wmu.Lock()
		s.burst.begin(c.read.seq.Load())
		c.stampWrite(&s.burst)
		s.wmu.Unlock()
		return c.Conn.Write(b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	s.wmu.Lock()
	s.burst.begin(c.read.seq.Load())
	s.wbuf, s.wn, s.werr = b, 0, nil
	err := s.rc.Write(s.writeFn)
	n, werr := s.wn, s.werr
	s.wbuf = nil
	s.wmu.Unlock()
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case werr != nil:
		return n, c.opError("write", os.NewSyscallError("write", werr))
	}
	return n, nil
}

// send is the RawConn write callback: write(2) until done, false to wait for
// writability.
func (s *sysConn) send(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		s.wc.stampWrite(&s.burst)
		n, err := rawWrite(fd, s.wbuf[s.wn:])
		if n > 0 {
			s.wn += n
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = err
			return true
		}
	}
	return true
}

// opError shapes err as the wrapped conn's own Read or Write would: an
// *net.OpError (RawConn's say "raw-read"/"raw-write") around the cause, so
// that errors.Is(err, net.ErrClosed), os.ErrDeadlineExceeded or
// syscall.ECONNRESET and net.Error's Timeout() hold as for the plain conn.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
