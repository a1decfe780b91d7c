// Package netstamp wraps TCP connections so that each read carries the
// kernel's receive time of the bytes it returned, and each write the instant
// right before its last byte went to the socket.
//
// A user-space stamp (time.Now after Read returns) includes whatever delayed
// the reading goroutine: a busy core, the Go scheduler, GC. The kernel's
// receive stamp (SO_TIMESTAMPNS, delivered with recvmsg) does not. Where the
// kernel cannot give one (non-Linux, a socket that refuses the option, a
// connection that is not TCP), a Conn falls back to user-space stamps and
// says so (Source).
//
// Kernel stamps are on the wall clock (CLOCK_REALTIME); durations elsewhere
// are monotonic. Every Stamp therefore carries the wall and monotonic
// readings of one user-space instant, which maps a kernel stamp onto the
// monotonic clock, and StepGuard rejects kernel stamps of a request during
// which the wall clock stepped.
package netstamp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode selects the timestamp source a Dialer asks for.
type Mode uint8

const (
	ModeAuto   Mode = iota // kernel stamps where the socket accepts the option, else user-space
	ModeKernel             // kernel stamps or the dial fails
	ModeUser               // user-space stamps only
)

// ParseMode parses "auto" (or ""), "kernel" or "user".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "auto":
		return ModeAuto, nil
	case "kernel":
		return ModeKernel, nil
	case "user":
		return ModeUser, nil
	}
	return ModeAuto, fmt.Errorf("timestamps: unknown mode %q (want auto, kernel or user)", s)
}

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeKernel:
		return "kernel"
	case ModeUser:
		return "user"
	}
	return "unknown"
}

// Source is where a connection's read stamps come from.
type Source uint8

const (
	SourceUser   Source = iota // time.Now after the read returned
	SourceKernel               // the kernel's receive time (SO_TIMESTAMPNS)
	NumSources
)

func (s Source) String() string {
	if s == SourceKernel {
		return "kernel"
	}
	return "user"
}

// ErrKernelUnavailable is returned (wrapped) when ModeKernel is asked for and
// the connection cannot give kernel stamps.
var ErrKernelUnavailable = errors.New("netstamp: kernel receive timestamps unavailable")

// epoch anchors monotonic readings: a Stamp keeps nanoseconds since epoch
// (atomically storable) and turns them back into a time.Time that carries a
// monotonic reading.
var epoch = time.Now()

// now returns the wall (Unix ns) and monotonic (ns since epoch) readings of
// one instant.
func now() (wall, mono int64) {
	t := time.Now()
	return t.UnixNano(), int64(t.Sub(epoch))
}

// Stamp is what one read (or write) saw. The zero Stamp means "none yet".
type Stamp struct {
	// Kernel is the kernel's receive time (wall clock, Unix ns) of the last
	// segment the read copied; 0 when the read carried none.
	Kernel int64
	// UserWall and UserMono are one user-space instant: right after the read
	// returned (right before the write's last syscall for a write stamp).
	// UserMono counts nanoseconds since a process-wide epoch.
	UserWall, UserMono int64
	// Seq counts the connection's reads that returned bytes (writes for a
	// write stamp), 1 for the first: events delivered by the same read share
	// it.
	Seq uint64
}

// Valid reports whether s holds a stamp at all.
func (s Stamp) Valid() bool { return s.Seq != 0 }

// HasKernel reports whether s carries a kernel receive time.
func (s Stamp) HasKernel() bool { return s.Kernel != 0 }

// User is the user-space instant, on the monotonic clock. Its wall reading is
// the process epoch's plus the monotonic time elapsed; use UserWall for the
// wall clock itself.
func (s Stamp) User() time.Time { return epoch.Add(time.Duration(s.UserMono)) }

// KernelTime is the kernel receive time mapped onto the monotonic clock with
// this stamp's own wall–monotonic offset; User when there is no kernel stamp.
func (s Stamp) KernelTime() time.Time {
	if s.Kernel == 0 {
		return s.User()
	}
	return epoch.Add(time.Duration(s.UserMono + s.Kernel - s.UserWall))
}

// Lag is how long after the kernel received the bytes the reading goroutine
// got them: the delay a user-space stamp would have added. 0 without a kernel
// stamp.
func (s Stamp) Lag() time.Duration {
	if s.Kernel == 0 {
		return 0
	}
	return time.Duration(s.UserWall - s.Kernel)
}

// offset is wall − monotonic at the stamp's user-space instant.
func (s Stamp) offset() int64 { return s.UserWall - s.UserMono }

// stampCell holds the latest Stamp of one direction. One goroutine stores
// (reads, and writes, are serialized per Conn); any goroutine may load. A
// sequence lock keeps the fields consistent without locking the writer:
// net/http's read loop may peek at a connection while the goroutine that read
// a response body looks at its last stamp.
type stampCell struct {
	lock         atomic.Uint64 // odd while a store is in progress
	kernel, wall atomic.Int64
	mono         atomic.Int64
	seq          atomic.Uint64
}

func (c *stampCell) store(kernel, wall, mono int64) {
	c.lock.Add(1)
	c.kernel.Store(kernel)
	c.wall.Store(wall)
	c.mono.Store(mono)
	c.seq.Add(1)
	c.lock.Add(1)
}

func (c *stampCell) load() Stamp {
	for {
		l := c.lock.Load()
		if l&1 != 0 {
			continue // a store is a few instructions long
		}
		s := Stamp{Kernel: c.kernel.Load(), UserWall: c.wall.Load(), UserMono: c.mono.Load(), Seq: c.seq.Load()}
		if c.lock.Load() == l {
			return s
		}
	}
}

// Conn is a net.Conn whose reads and writes are stamped. Only net.Conn's
// methods are promoted from the wrapped connection: an io.ReaderFrom or
// io.WriterTo of a *net.TCPConn would move bytes past the stamps (bufio's
// ReadFrom uses them when its buffer is empty).
type Conn struct {
	net.Conn
	src    Source
	read   stampCell
	write  stampCell
	first  stampCell // first write since the latest read
	sys    sysConn
	dialer *Dialer  // registered there (by key) while open; nil for Wrap
	key    net.Addr // LocalAddr at the dial
}

// Close closes the connection and forgets it in its Dialer.
func (c *Conn) Close() error {
	if c.dialer != nil {
		c.dialer.conns.CompareAndDelete(c.key, c)
	}
	return c.Conn.Close()
}

// Source says where c's read stamps come from.
func (c *Conn) Source() Source { return c.src }

// LastRead returns the stamps of the most recent read that returned bytes:
// the kernel's receive time mapped onto the monotonic clock (ok is false when
// that read carried none, or before any read) and the user-space time the
// read returned.
func (c *Conn) LastRead() (kernel, user time.Time, ok bool) {
	s := c.read.load()
	if !s.Valid() {
		return time.Time{}, time.Time{}, false
	}
	return s.KernelTime(), s.User(), s.HasKernel()
}

// LastReadStamp returns the raw stamp of the most recent read that returned
// bytes (zero before the first).
func (c *Conn) LastReadStamp() Stamp { return c.read.load() }

// LastWrite returns the stamp taken right before the write syscall that
// carried the last byte of the most recent Write (zero before the first).
//
// net/http writes a request's headers and body into a bufio.Writer and
// flushes it, so a request goes out in one or more Writes; on an HTTP/1
// connection, which carries one request at a time, the last Write before the
// response is read is the one with the request's last byte, and this stamp,
// read once the response has begun, is the request's send instant.
func (c *Conn) LastWrite() Stamp { return c.write.load() }

// FirstWrite returns the stamp taken before the first write syscall since the
// most recent read: on an HTTP/1 connection, once a response has begun, the
// request's first byte. net/http flushes a request's headers before a body it
// cannot see is in memory, so the headers may reach the server (and start
// its clock) a little before the body's last byte: LastWrite − FirstWrite is
// that spread.
func (c *Conn) FirstWrite() Stamp { return c.first.load() }

// burst tracks write bursts: a Write after a read (or the first Write) starts
// one. Only the writing goroutine touches it.
type burst struct {
	afterRead uint64 // read count at the latest Write
	started   bool
	pending   bool // the next syscall is the burst's first
}

func (b *burst) begin(reads uint64) {
	if !b.started || reads != b.afterRead {
		b.pending = true
	}
	b.started, b.afterRead = true, reads
}

// stampWrite stamps a write syscall about to happen.
func (c *Conn) stampWrite(b *burst) {
	w, m := now()
	c.write.store(0, w, m)
	if b.pending {
		c.first.store(0, w, m)
		b.pending = false
	}
}

// Wrap stamps conn's reads and writes. ModeAuto and ModeKernel enable kernel
// receive stamps where conn allows (a TCP connection on Linux). Where it does
// not, ModeAuto falls back to user-space stamps and returns the reason as why
// (for a log line; err is nil), and ModeKernel fails with
// ErrKernelUnavailable.
func Wrap(conn net.Conn, mode Mode) (c *Conn, why error, err error) {
	c = &Conn{Conn: conn, src: SourceUser}
	why = c.sys.init(c, mode != ModeUser)
	if why == nil && mode != ModeUser {
		c.src = SourceKernel
	}
	if mode == ModeKernel && c.src != SourceKernel {
		return nil, why, fmt.Errorf("%w: %v", ErrKernelUnavailable, why)
	}
	return c, why, nil
}

// DialFunc is the shape of net.Dialer.DialContext (and of prometheus/common's
// config.DialContextFunc).
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer dials stamped connections. Its zero value dials with a net.Dialer in
// ModeAuto.
type Dialer struct {
	Mode Mode
	// Dial dials the underlying connection; nil uses a net.Dialer with a
	// 30 s keep-alive, as net/http's default transport does.
	Dial DialFunc
	// OnConn, when set, is called for each connection dialed, with its
	// source and, for a fallback to user-space stamps, the reason (for a log
	// line).
	OnConn func(src Source, why error)

	counts [NumSources]atomic.Uint64
	last   atomic.Uint32 // Source+1 of the latest connection, 0 before any
	// conns maps an open connection's LocalAddr to it, for Lookup.
	conns sync.Map
}

var defaultDialer = &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}

// DialContext dials address and wraps the connection (a *Conn). In ModeKernel
// a connection that cannot give kernel stamps is closed and the dial fails.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	dial := d.Dial
	if dial == nil {
		dial = defaultDialer.DialContext
	}
	raw, err := dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c, why, err := Wrap(raw, d.Mode)
	if err != nil {
		raw.Close()
		return nil, err
	}
	d.counts[c.src].Add(1)
	d.last.Store(uint32(c.src) + 1)
	if c.key = raw.LocalAddr(); c.key != nil {
		c.dialer = d
		d.conns.Store(c.key, c)
	}
	if d.OnConn != nil {
		d.OnConn(c.src, why)
	}
	return c, nil
}

// Lookup finds the *Conn d dialed under nc, as httptrace's GotConn hands it
// over: the conn itself, a *tls.Conn over it (NetConn), or a wrapper that
// hides it. prometheus/common wraps every dialed conn (go-conntrack) in a
// type that promotes only net.Conn's methods; such a wrapper passes
// LocalAddr through, and a *net.TCPConn returns the same *net.TCPAddr every
// time, so that pointer names the conn. nil when nc is not one of d's open
// conns. It allocates nothing.
func (d *Dialer) Lookup(nc net.Conn) *Conn {
	for range 4 {
		switch v := nc.(type) {
		case *Conn:
			return v
		case interface{ NetConn() net.Conn }:
			nc = v.NetConn()
			continue
		}
		break
	}
	if nc == nil {
		return nil
	}
	if a := nc.LocalAddr(); a != nil {
		if v, ok := d.conns.Load(a); ok {
			return v.(*Conn)
		}
	}
	return nil
}

// Conns returns how many connections d dialed with each source.
func (d *Dialer) Conns(src Source) uint64 {
	if src >= NumSources {
		return 0
	}
	return d.counts[src].Load()
}

// LastSource is the source of the latest connection d dialed (ok false
// before any).
func (d *Dialer) LastSource() (src Source, ok bool) {
	v := d.last.Load()
	if v == 0 {
		return SourceUser, false
	}
	return Source(v - 1), true
}

// MaxClockStep is how far the wall–monotonic offset may move between a
// request's send and one of its reads before the wall clock counts as
// stepped. NTP slewing moves both clocks alike and never gets near it.
const MaxClockStep = time.Millisecond

// StepGuard decides, for one request, whether its reads' kernel stamps can be
// trusted: a kernel stamp is wall-clock, so a wall-clock step between the
// request's send and a read would move it. Ref is taken at the send.
type StepGuard struct {
	ref int64 // wall − mono at the send
	set bool
	// Steps counts reads whose kernel stamp was rejected because the wall
	// clock stepped since the send.
	Steps int
}

// Reset starts a request: ref is the send stamp (a Conn's LastWrite, or a
// user-space instant from Now).
func (g *StepGuard) Reset(ref Stamp) {
	*g = StepGuard{ref: ref.offset(), set: ref.Valid() || ref.UserWall != 0}
}

// Now is a user-space Stamp of this instant (Seq 1), for a send reference
// when the connection gave none.
func Now() Stamp {
	w, m := now()
	return Stamp{UserWall: w, UserMono: m, Seq: 1}
}

// At is the user-space Stamp of t, which must carry a monotonic reading (a
// time.Now, or one derived from it).
func At(t time.Time) Stamp {
	return Stamp{UserWall: t.UnixNano(), UserMono: int64(t.Sub(epoch)), Seq: 1}
}

// Time is the read's instant on the monotonic clock and where it came from:
// the kernel stamp when there is one and the wall clock has not stepped since
// the reference, else the user-space stamp (counted in Steps when a kernel
// stamp was rejected).
func (g *StepGuard) Time(s Stamp) (time.Time, Source) {
	if !s.HasKernel() {
		return s.User(), SourceUser
	}
	if g.set {
		if d := s.offset() - g.ref; d > int64(MaxClockStep) || d < -int64(MaxClockStep) {
			g.Steps++
			return s.User(), SourceUser
		}
	}
	return s.KernelTime(), SourceKernel
}
