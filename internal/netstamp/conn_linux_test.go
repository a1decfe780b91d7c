//go:build linux

package netstamp

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loopPair returns a stamped client conn (mode) and the plain server side of
// one loopback TCP connection.
func loopPair(t testing.TB, mode Mode) (*Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	d := &Dialer{Mode: mode}
	nc, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { nc.Close(); srv.Close() })
	return nc.(*Conn), srv.(*net.TCPConn)
}

// warmKernelStamps holds a stamped connection open for the test and waits
// until its reads carry kernel stamps. The kernel turns receive stamping on
// for the whole system when the first socket asks for it, from a work queue,
// and off again (also deferred) when the last such socket closes: packets it
// receives in between carry no stamp, and those reads fall back to user-space
// stamps. Tests that assert a kernel stamp on every read start after that.
func warmKernelStamps(t *testing.T) {
	t.Helper()
	c, srv := loopPair(t, ModeKernel)
	buf := make([]byte, 1)
	for range 1000 {
		srv.Write(buf)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
		if c.LastReadStamp().HasKernel() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no kernel receive stamp after 1000 reads")
}

func withTimestampOpt(t *testing.T, f func(fd int) error) {
	old := setTimestamps
	setTimestamps = f
	t.Cleanup(func() { setTimestamps = old })
}

var timestampOpts = []struct {
	name string
	set  func(fd int) error
}{
	{"SO_TIMESTAMPNS", func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}},
	{"SO_TIMESTAMPING", func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING,
			unix.SOF_TIMESTAMPING_RX_SOFTWARE|unix.SOF_TIMESTAMPING_SOFTWARE)
	}},
}

// TestKernelStampIsTheWriteNotTheRead sends messages one at a time; after
// each write has returned (the bytes sit in the client's receive queue) the
// client waits a deliberate 2 ms before reading. On the same reads, the kernel
// stamp falls inside the server's write syscall while the user-space stamp
// carries the reader's delay. Nothing here is timed against a threshold that
// a busy machine could break: the delay is a lower bound the test enforces.
func TestKernelStampIsTheWriteNotTheRead(t *testing.T) {
	const msgs, delay = 40, 2 * time.Millisecond
	for _, opt := range timestampOpts {
		t.Run(opt.name, func(t *testing.T) {
			withTimestampOpt(t, opt.set)
			warmKernelStamps(t)
			c, srv := loopPair(t, ModeKernel)
			if c.Source() != SourceKernel {
				t.Fatalf("source %v, want kernel", c.Source())
			}
			buf := make([]byte, 64)
			var kernelAfterWrite, userLag []time.Duration
			for i := range msgs {
				before := time.Now().UnixNano()
				if _, err := srv.Write(buf[:16]); err != nil {
					t.Fatal(err)
				}
				after := time.Now().UnixNano()
				time.Sleep(delay)
				n, err := c.Read(buf)
				if err != nil || n != 16 {
					t.Fatalf("read %d: n=%d err=%v", i, n, err)
				}
				s := c.LastReadStamp()
				if !s.HasKernel() {
					t.Fatalf("read %d: no kernel stamp", i)
				}
				if s.Seq != uint64(i+1) {
					t.Fatalf("read %d: seq %d", i, s.Seq)
				}
				if s.Kernel < before || s.Kernel > after {
					t.Errorf("read %d: kernel stamp %d outside the write syscall [%d, %d]", i, s.Kernel, before, after)
				}
				if lag := s.Lag(); lag < delay {
					t.Errorf("read %d: user − kernel = %v, the reader waited at least %v", i, lag, delay)
				}
				k, u, ok := c.LastRead()
				if !ok || u.Sub(k) != s.Lag() {
					t.Errorf("read %d: LastRead user − kernel = %v (ok %v), stamp lag %v", i, u.Sub(k), ok, s.Lag())
				}
				kernelAfterWrite = append(kernelAfterWrite, time.Duration(s.Kernel-before))
				userLag = append(userLag, time.Duration(s.UserWall-before))
			}
			slices.Sort(kernelAfterWrite)
			slices.Sort(userLag)
			t.Logf("stamp − server write start, p50/max: kernel %v/%v, user %v/%v",
				kernelAfterWrite[msgs/2], kernelAfterWrite[msgs-1], userLag[msgs/2], userLag[msgs-1])
		})
	}
}

// TestCoalescedReadOneStamp: two writes that one read returns carry the stamp
// of the later segment (the last one the read copied).
func TestCoalescedReadOneStamp(t *testing.T) {
	warmKernelStamps(t)
	c, srv := loopPair(t, ModeAuto)
	srv.Write([]byte("first"))
	time.Sleep(time.Millisecond)
	mid := time.Now().UnixNano()
	srv.Write([]byte("second"))
	time.Sleep(time.Millisecond)
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "firstsecond" {
		t.Fatalf("read %q, %v: want both writes in one read", buf[:n], err)
	}
	if s := c.LastReadStamp(); s.Kernel < mid {
		t.Errorf("kernel stamp %d before the second write began (%d): want the last segment's", s.Kernel, mid)
	}
}

func TestFallbackWhenRefused(t *testing.T) {
	withTimestampOpt(t, func(int) error { return unix.ENOPROTOOPT })
	var why error
	d := &Dialer{OnConn: func(_ Source, err error) { why = err }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			s.Write([]byte("hello"))
			defer s.Close()
		}
	}()
	nc, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := nc.(*Conn)
	if c.Source() != SourceUser || !errors.Is(why, unix.ENOPROTOOPT) {
		t.Fatalf("source %v, fallback reason %v: want user, ENOPROTOOPT", c.Source(), why)
	}
	if src, ok := d.LastSource(); !ok || src != SourceUser || d.Conns(SourceUser) != 1 || d.Conns(SourceKernel) != 0 {
		t.Errorf("dialer says %v %v, conns user %d kernel %d", src, ok, d.Conns(SourceUser), d.Conns(SourceKernel))
	}
	buf := make([]byte, 16)
	before := time.Now()
	if n, err := io.ReadFull(c, buf[:5]); err != nil || n != 5 {
		t.Fatal(n, err)
	}
	k, u, ok := c.LastRead()
	if ok || !k.Equal(u) || u.Before(before) {
		t.Errorf("fallback read: kernel %v user %v ok %v: want user stamp only, after %v", k, u, ok, before)
	}

	d.Mode = ModeKernel
	if _, err := d.DialContext(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, ErrKernelUnavailable) {
		t.Errorf("ModeKernel on a refusing socket: err %v, want ErrKernelUnavailable", err)
	}
}

func TestFallbackNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c, why, err := Wrap(a, ModeAuto)
	if err != nil || why == nil || c.Source() != SourceUser {
		t.Fatalf("pipe: source %v why %v err %v", c.Source(), why, err)
	}
	go b.Write([]byte("x"))
	if _, err := c.Read(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if s := c.LastReadStamp(); !s.Valid() || s.HasKernel() {
		t.Errorf("pipe read stamp %+v: want a user stamp", s)
	}
	if _, _, err := Wrap(a, ModeKernel); !errors.Is(err, ErrKernelUnavailable) {
		t.Errorf("ModeKernel on a pipe: %v", err)
	}
}

func TestUserModeNoKernelStamp(t *testing.T) {
	c, srv := loopPair(t, ModeUser)
	srv.Write([]byte("abc"))
	if _, err := c.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if c.Source() != SourceUser || c.LastReadStamp().HasKernel() {
		t.Errorf("user mode: source %v stamp %+v", c.Source(), c.LastReadStamp())
	}
}

// TestErrorsLikePlainConn: deadlines, close and peer close surface as they
// do from a *net.TCPConn (net/http and the prober classify them by these).
func TestErrorsLikePlainConn(t *testing.T) {
	c, srv := loopPair(t, ModeKernel)
	buf := make([]byte, 8)

	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past deadline: %v, want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("read error %#v, want *net.OpError with Op read", err)
	}
	c.SetReadDeadline(time.Time{})

	srv.Write([]byte("ok"))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("read after deadline cleared: %q %v", buf[:n], err)
	}

	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write past deadline: %v", err)
	}
	c.SetWriteDeadline(time.Time{})

	// A write fills no buffer here: it returns at once and its stamp precedes
	// the peer's read of it.
	if n, err := c.Write([]byte("ping")); err != nil || n != 4 {
		t.Fatal(n, err)
	}
	if n, err := io.ReadFull(srv, buf[:4]); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("server read %q %v", buf[:n], err)
	}
	if w := c.LastWrite(); !w.Valid() || w.UserWall > time.Now().UnixNano() {
		t.Errorf("write stamp %+v", w)
	}

	srv.Close()
	if _, err := c.Read(buf); err != io.EOF {
		t.Errorf("read after peer close: %v, want io.EOF", err)
	}
	// Writing to a closed peer fails with EPIPE or ECONNRESET within a few
	// writes (the first may still be accepted by the kernel).
	var werr error
	for range 20 {
		if _, werr = c.Write([]byte("x")); werr != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, syscall.ECONNRESET) {
		t.Errorf("write to closed peer: %v", werr)
	}

	done := make(chan error, 1)
	c2, _ := loopPair(t, ModeKernel)
	go func() { _, err := c2.Read(buf); done <- err }()
	time.Sleep(5 * time.Millisecond)
	c2.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read blocked across Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read blocked across Close did not return")
	}
	if _, err := c2.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
}

// TestLargeWriteStampsLastSyscall: a write bigger than the socket buffers
// blocks until the peer reads; its stamp is taken before the syscall that
// carried the last byte, so it follows the peer's first read.
func TestLargeWriteStampsLastSyscall(t *testing.T) {
	c, srv := loopPair(t, ModeAuto)
	big := make([]byte, 32<<20)
	wrote := make(chan error, 1)
	go func() { _, err := c.Write(big); wrote <- err }()
	time.Sleep(20 * time.Millisecond)
	firstRead := time.Now().UnixNano()
	if _, err := io.ReadFull(srv, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if w := c.LastWrite(); w.UserWall < firstRead {
		t.Errorf("write stamp %d precedes the peer's first read %d: want the last syscall's", w.UserWall, firstRead)
	}
}

func TestParseStamp(t *testing.T) {
	var oob [oobWords]uint64
	b := unsafe.Slice((*byte)(unsafe.Pointer(&oob[0])), len(oob)*8)
	hdr := unix.CmsgLen(0)
	put := func(off int, typ int32, data int, sec, nsec int64) int {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
		h.Level, h.Type = unix.SOL_SOCKET, typ
		h.SetLen(unix.CmsgLen(data))
		ts := unix.NsecToTimespec(sec*1e9 + nsec)
		*(*unix.Timespec)(unsafe.Pointer(&b[off+hdr])) = ts
		return off + unix.CmsgSpace(data)
	}
	tsLen := int(unsafe.Sizeof(unix.Timespec{}))
	end := put(0, unix.SCM_TIMESTAMPING, 3*tsLen, 7, 9)
	if got := parseStamp(b[:end]); got != 7e9+9 {
		t.Errorf("SCM_TIMESTAMPING: %d", got)
	}
	end = put(0, 99, tsLen, 1, 1)
	end = put(end, unix.SCM_TIMESTAMPNS, tsLen, 3, 5)
	if got := parseStamp(b[:end]); got != 3e9+5 {
		t.Errorf("second message: %d, want the timestamp one", got)
	}
	if got := parseStamp(b[:hdr-1]); got != 0 {
		t.Errorf("short buffer: %d", got)
	}
	(*unix.Cmsghdr)(unsafe.Pointer(&b[0])).SetLen(1 << 20)
	if got := parseStamp(b[:end]); got != 0 {
		t.Errorf("length past the buffer: %d", got)
	}
	zero := put(0, unix.SCM_TIMESTAMPNS, tsLen, 0, 0)
	if got := parseStamp(b[:zero]); got != 0 {
		t.Errorf("zero timespec: %d, want none", got)
	}
}

// TestReadAllocatesNothing: a stamped read, kernel or user, allocates
// nothing.
func TestReadAllocatesNothing(t *testing.T) {
	for _, mode := range []Mode{ModeKernel, ModeUser} {
		c, srv := loopPair(t, mode)
		buf := make([]byte, 64)
		msg := []byte("0123456789abcdef")
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := srv.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(srv, buf[:len(msg)]); err != nil {
				t.Fatal(err)
			}
			_ = c.LastReadStamp()
			_ = c.LastWrite()
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per read+write", mode, allocs)
		}
	}
}

// TestFirstWriteStartsAfterARead: writes with no read between them are one
// burst (a request's headers and body); the first write after a read (the
// next request, once the response was read) starts the next.
func TestFirstWriteStartsAfterARead(t *testing.T) {
	c, srv := loopPair(t, ModeAuto)
	buf := make([]byte, 16)
	c.Write([]byte("head"))
	c.Write([]byte("body"))
	if f, l := c.FirstWrite(), c.LastWrite(); f.Seq != 1 || l.Seq != 2 || f.UserMono > l.UserMono {
		t.Errorf("one burst: first %+v last %+v", f, l)
	}
	io.ReadFull(srv, buf[:8])
	srv.Write([]byte("reply"))
	io.ReadFull(c, buf[:5])
	c.Write([]byte("next"))
	if f, l := c.FirstWrite(), c.LastWrite(); f.Seq != 2 || l.Seq != 3 || f.UserMono != l.UserMono {
		t.Errorf("after a read: first %+v last %+v, want a new burst at the third write", f, l)
	}
}
