package simulator

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/llmprobe/llmprobe/internal/netstamp"
)

// A request's arrival, where its TTFT and queue time start, is taken from
// the kernel's receive stamp of the read that delivered the request's last
// byte, not from the handler's clock: on a busy (or pinned) core the handler
// runs late, and that delay is the server's, not the client's, yet a
// handler-clock arrival hides it from the ground truth.
//
// Serve's listener wraps every accepted TCP connection in a *netstamp.Conn
// (SO_TIMESTAMPNS on Linux; user-space read stamps elsewhere), and
// http.Server.ConnContext puts it in each request's context. net/http reads
// the request through a bufio.Reader over that conn, so once the handler has
// read the body to EOF, the conn's last read is the one that returned the
// request's last byte (the body's last byte, or the headers' when it came
// with them). HTTP/1 clients do not pipeline, so no later read (net/http's
// background read waits for the next request) can have overwritten it.

type stampedConnKey struct{}

// stampListener wraps accepted connections so that their reads carry the
// kernel's receive time.
type stampListener struct {
	net.Listener
	s *Server
}

func (l stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc, why, err := netstamp.Wrap(c, netstamp.ModeAuto)
	if err != nil { // ModeAuto does not fail; keep the plain conn if it ever does
		return c, nil
	}
	if why != nil {
		l.s.logger.Debug("simulator: request arrivals use user-space stamps", "reason", why)
	}
	return sc, nil
}

// connContext hands a request's handler its stamped conn.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*netstamp.Conn); ok {
		return context.WithValue(ctx, stampedConnKey{}, sc)
	}
	return ctx
}

// requestArrival is the arrival of r, whose body has been read to EOF: the
// receive time of the conn's last read (kernel stamp, mapped onto the
// monotonic clock; that read's user-space stamp where it carried none), or
// handlerNow when r did not come through a stamped conn (Handler() served
// by another server, HTTP/2). It is never after handlerNow unless the
// body's last byte arrived after the handler started, which is then the
// truth.
// kernel says whether it is a kernel receive stamp.
func requestArrival(r *http.Request, handlerNow time.Time) (arrival time.Time, kernel bool) {
	sc, _ := r.Context().Value(stampedConnKey{}).(*netstamp.Conn)
	if sc == nil || r.ProtoMajor != 1 {
		return handlerNow, false
	}
	st := sc.LastReadStamp()
	if !st.Valid() {
		return handlerNow, false
	}
	t := st.KernelTime()
	// A receive stamp later than now would mean a wall-clock step between
	// the receive and the read's return; the handler's clock is then the
	// better guess.
	if t.After(time.Now()) {
		return handlerNow, false
	}
	return t, st.HasKernel()
}

// unwrapConn is the *net.TCPConn under a hijacked conn, if there is one.
func unwrapConn(c net.Conn) (*net.TCPConn, bool) {
	if sc, ok := c.(*netstamp.Conn); ok {
		c = sc.Conn
	}
	tc, ok := c.(*net.TCPConn)
	return tc, ok
}
