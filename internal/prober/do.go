package prober

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/llmprobe/llmprobe/internal/netstamp"
)

// doState is per-request scratch, pooled so that a request in steady state
// allocates only what net/http itself does.
type doState struct {
	sent      time.Time
	firstByte atomic.Int64 // ns after sent; 0 until the first response byte
	reused    atomic.Bool  // the attempt went out on a kept-alive connection
	// dialer finds the attempt's stamped connection (conn) in GotConn.
	dialer *netstamp.Dialer
	conn   atomic.Pointer[netstamp.Conn]
	// connected is ns after sent when a fresh connection was ready; 0 on a
	// reused one.
	connected atomic.Int64
	// The connection's stamp of the read that brought the first response
	// byte (fbMono 0: none), published before firstByte.
	fbKernel, fbWall, fbMono atomic.Int64
	// stampConn is conn once the response is known to be HTTP/1 (one
	// request on the connection at a time), for the SSE reader.
	stampConn *netstamp.Conn
	guard     netstamp.StepGuard
	trace     httptrace.ClientTrace
	sse       *SSEReader
	chunk     Chunk
	buf       []byte // non-streamed response body
}

func (st *doState) gotFirstResponseByte() {
	if c := st.conn.Load(); c != nil {
		// The hook runs right after the read loop's peek returned: the
		// connection's last read is the one that brought the first byte.
		rs := c.LastReadStamp()
		st.fbKernel.Store(rs.Kernel)
		st.fbWall.Store(rs.UserWall)
		st.fbMono.Store(rs.UserMono)
	}
	st.firstByte.Store(int64(max(time.Since(st.sent), 1)))
}

func (st *doState) gotConn(info httptrace.GotConnInfo) {
	st.reused.Store(info.Reused)
	if !info.Reused {
		st.connected.Store(int64(max(time.Since(st.sent), 1)))
	}
	if st.dialer != nil {
		st.conn.Store(st.dialer.Lookup(info.Conn))
	}
}

// firstByteStamp is the connection's stamp of the first response byte's read
// (invalid when there is none).
func (st *doState) firstByteStamp() netstamp.Stamp {
	if st.firstByte.Load() == 0 {
		return netstamp.Stamp{}
	}
	m := st.fbMono.Load()
	if m == 0 {
		return netstamp.Stamp{}
	}
	return netstamp.Stamp{Kernel: st.fbKernel.Load(), UserWall: st.fbWall.Load(), UserMono: m, Seq: 1}
}

// socketSend is the attempt's send instant at the socket (right before the
// write syscall of its last byte), or from (the user-space instant before
// the attempt) when the connection is not stamped or wrote nothing since.
func (st *doState) socketSend(from time.Time) (time.Time, netstamp.Stamp, bool) {
	ref := netstamp.At(from)
	if c := st.conn.Load(); c != nil {
		if w := c.LastWrite(); w.Valid() && w.UserMono >= ref.UserMono {
			return w.User(), w, true
		}
	}
	return from, ref, false
}

// sendSpan is how long before the write of its last byte the attempt's
// first write syscall (its headers) went out; 0 when not stamped.
func (st *doState) sendSpan(from time.Time, send netstamp.Stamp) time.Duration {
	if c := st.conn.Load(); c != nil {
		if f := c.FirstWrite(); f.Valid() && f.UserMono >= netstamp.At(from).UserMono && f.UserMono <= send.UserMono {
			return time.Duration(send.UserMono - f.UserMono)
		}
	}
	return 0
}

func getState() *doState {
	st := statePool.Get().(*doState)
	st.firstByte.Store(0)
	st.reused.Store(false)
	st.conn.Store(nil)
	st.connected.Store(0)
	st.fbMono.Store(0)
	st.stampConn = nil
	return st
}

var statePool = sync.Pool{New: func() any {
	st := &doState{sse: NewSSEReader(nil, DefaultMaxEventSize)}
	st.trace.GotFirstResponseByte = st.gotFirstResponseByte
	st.trace.GotConn = st.gotConn
	return st
}}

// Do sends req and measures it into res (reset first). It returns the send
// instant: right before the write syscall of the request's last byte on a
// stamped connection, else the moment just before the request was first
// handed to the HTTP client (the load engine's schedule delay is this minus
// the intended send time). Every duration in res counts from that instant, or from the retry's
// when the first attempt failed on a reused connection before any response
// byte: such a request is sent once more on a fresh connection (res.Retry
// says why, res.Resent when), and a failure on a fresh connection never is.
//
// The scenario timeout is ctx's deadline: passing it yields OutcomeTimeout;
// a cancellation of ctx yields OutcomeCanceled.
func (c *Client) Do(ctx context.Context, req Request, res *Result) (sent time.Time) {
	res.Reset()
	res.Stream = req.Stream

	// A fresh buffer per request, not a pooled one: the transport may
	// still read the body after Do returns, and only a body net/http knows
	// to be in memory (a *bytes.Reader) is written with the headers in one
	// write; any other is flushed apart, a second write syscall, segment
	// and wake-up on both sides per request.
	body := c.appendBody(make([]byte, 0, c.bodyHint.Load()), &req)
	if n := int64(len(body)); n > c.bodyHint.Load() {
		c.bodyHint.Store(n)
	}
	header := c.plainHeader
	if req.Stream {
		header = c.streamHeader
	}
	if c.trace {
		// One trace for the request, its retry included: the engine sees
		// the same id on both attempts.
		var tp string
		res.TraceID, tp = newTraceparent(c.traceSampled)
		header = withTraceparent(header, tp)
	}

	st := getState()
	// Timing starts here: everything above is client work, not latency.
	sent = time.Now()
	resp, headersAt, err := c.attempt(ctx, c.http, body, header, st, sent)
	// The send instant is taken at the socket where the connection is
	// stamped: dialing, TLS and the transport's own goroutine hand-offs
	// then stay out of the request's latency (Connect says how long a fresh
	// connection took).
	from, ref, _ := st.socketSend(sent)
	sent = from
	if err != nil && retryable(ctx, st) {
		// The abandoned state is not pooled: the failed attempt's read
		// loop may still call its trace hooks.
		res.Retry = retryReason(err)
		st = getState()
		from = time.Now()
		resp, headersAt, err = c.attempt(ctx, c.fresh, body, header, st, from)
		from, ref, _ = st.socketSend(from)
		res.Resent = from.Sub(sent)
	}
	if fresh := st.connected.Load(); fresh > 0 {
		res.Connect = time.Duration(fresh)
	}
	res.SendSpan = st.sendSpan(st.sent, ref)
	if err != nil {
		res.Outcome = classify(ctx, err, false)
		res.E2E = headersAt.Sub(from)
		res.Detail = c.errorDetail(err)
		return sent
	}

	defer statePool.Put(st)
	defer resp.Body.Close()

	res.Status = resp.StatusCode
	st.guard.Reset(ref)
	if conn := st.conn.Load(); conn != nil && resp.ProtoMajor == 1 {
		// HTTP/2 multiplexes requests on a connection: its last read or
		// write is not this request's, so only HTTP/1 uses its stamps.
		st.stampConn = conn
		res.KernelStamps = conn.Source() == netstamp.SourceKernel
	}
	// The trace hook runs on the transport's read loop as the first byte
	// arrives, before header parsing and before the hand-off to this
	// goroutine, so it is the more faithful TTFB; Do's return is the
	// fallback. On a stamped connection, the stamp of the read that brought
	// that byte is more faithful still.
	if fb := st.firstByteStamp(); st.stampConn != nil && fb.Valid() && fb.UserMono >= ref.UserMono {
		at, _ := st.guard.Time(fb)
		res.TTFB = at.Sub(from)
	} else if fb := st.firstByte.Load(); fb > 0 {
		res.TTFB = time.Duration(fb) - from.Sub(st.sent)
	} else {
		res.TTFB = headersAt.Sub(from)
	}
	defer func() { res.ClockSteps = int32(st.guard.Steps) }()

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
	default:
		switch {
		case code == http.StatusTooManyRequests:
			res.Outcome = OutcomeHTTP429
		case code >= 300 && code <= 399:
			res.Outcome = OutcomeHTTP3xx
		case code >= 400 && code <= 499:
			res.Outcome = OutcomeHTTP4xx
		case code >= 500:
			res.Outcome = OutcomeHTTP5xx
		default: // 1xx as a final status: not an answer we can measure
			res.Outcome = OutcomeProtocolError
		}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), headersAt)
		}
		res.Detail = c.errorBody(resp.Body, st)
		if res.Outcome == OutcomeHTTP3xx {
			res.Detail = c.detail("redirected to " + shownLocation(resp.Header.Get("Location")) + " (only 307 and 308 are followed)")
		}
		res.E2E = time.Since(from)
		return sent
	}
	if o, why := unmeasurable(resp, req.Stream); o != OutcomeSuccess {
		if said := c.errorBody(resp.Body, st); said != "" && o == OutcomeUnexpectedContentType {
			why += "; it said: " + said
		}
		res.Outcome, res.Detail = o, c.detail(why)
		res.E2E = time.Since(from)
		return sent
	}

	if req.Stream {
		err = c.readStream(ctx, resp.Body, from, res, st)
	} else {
		err = c.readJSON(ctx, resp.Body, from, res, st)
	}
	if res.Outcome != OutcomeSuccess && res.Detail == "" {
		res.Detail = c.errorDetail(err)
	}
	return sent
}

// attempt sends the body once through hc, with from as the attempt's send
// instant.
func (c *Client) attempt(ctx context.Context, hc *http.Client, body []byte, header http.Header, st *doState, from time.Time) (*http.Response, time.Time, error) {
	st.dialer = c.stamps
	hreq := (&http.Request{
		Method:        http.MethodPost,
		URL:           c.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          c.url.Host,
	}).WithContext(httptrace.WithClientTrace(ctx, &st.trace))
	st.sent = from
	resp, err := hc.Do(hreq)
	return resp, time.Now(), err
}

// followSafeRedirects follows only the redirects that keep the method and
// the body (307, 308). On a 301, 302 or 303 net/http would turn the POST into
// a body-less GET, and the endpoint would answer a different request; such a
// response is counted as http_3xx instead.
func followSafeRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if code := req.Response.StatusCode; code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
		return http.ErrUseLastResponse
	}
	return nil
}

// retryable: the attempt failed on a kept-alive connection before any byte
// of a response came back, and nobody gave up on the request. The server then
// closed (or reset) a connection it had kept open, usually right as the
// request went out on it; net/http retries that only for idempotent requests,
// and an inference POST is not one.
func retryable(ctx context.Context, st *doState) bool {
	return ctx.Err() == nil && st.reused.Load() && st.firstByte.Load() == 0
}

func retryReason(err error) RetryReason {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "server closed idle connection"):
		return RetryEOF
	case errors.Is(err, syscall.ECONNRESET):
		return RetryReset
	case errors.Is(err, syscall.EPIPE):
		return RetryBrokenPipe
	}
	return RetryOther
}

// errorBody reads what a non-2xx response says (its head, for the detail)
// and drains the rest up to maxErrorDrain, so the connection can be reused.
func (c *Client) errorBody(body io.Reader, st *doState) string {
	var head [4 << 10]byte
	n, _ := io.ReadFull(body, head[:])
	st.sse.Reset(body)
	st.sse.Drain(maxErrorDrain)
	st.sse.Reset(nil)
	if n == 0 {
		return ""
	}
	return c.detail(serverMessage(head[:n]))
}

// unmeasurable says why a 2xx response cannot be measured as the answer
// asked for, or OutcomeSuccess when it can: a Content-Encoding would time a
// decompressor's output, not the bytes' arrival (prometheus/common's
// transport does not ask for one, so a server that sends one anyway is
// misconfigured, or a proxy is); HTML is a login page or a proxy's error; a
// JSON body to a streamed request means the server ignored stream: true.
func unmeasurable(resp *http.Response, stream bool) (Outcome, string) {
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return OutcomeEncodingUnsupported, "Content-Encoding " + strconv.Quote(enc) + " (llmprobe asks for none: it times bytes as they arrive)"
	}
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	switch {
	case strings.Contains(ct, "text/html"):
		return OutcomeUnexpectedContentType, "Content-Type " + strconv.Quote(ct) + ": a web page, not an API reply"
	case stream && strings.Contains(ct, "application/json"):
		return OutcomeUnexpectedContentType, "Content-Type " + strconv.Quote(ct) + " to a streamed request: the server ignored stream: true"
	case !stream && strings.Contains(ct, "text/event-stream"):
		return OutcomeUnexpectedContentType, "Content-Type " + strconv.Quote(ct) + " to a request with stream: false"
	}
	return OutcomeSuccess, ""
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 10.2.3), relative to now. Anything else, or a time past, is 0.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now))
	}
	return 0
}

// shownLocation is a redirect target fit for a log.
func shownLocation(loc string) string {
	if loc == "" {
		return "(no Location)"
	}
	return ShownURL(loc)
}

// classify maps an error to an outcome. The context decides first: its
// deadline is the scenario timeout, its cancellation a shutdown or reload.
func classify(ctx context.Context, err error, afterHeaders bool) Outcome {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return OutcomeTimeout
		}
		return OutcomeCanceled
	}
	var pathErr *fs.PathError
	var tokenErr *oauth2.RetrieveError
	switch {
	case !afterHeaders && errors.As(err, &pathErr):
		// prometheus/common reads credentials, passwords and client
		// certificates from their files as each request is built: nothing
		// was sent.
		return OutcomeClientConfigError
	case !afterHeaders && errors.As(err, &tokenErr):
		// The oauth2 token endpoint refused the client's credentials:
		// nothing was sent to the target.
		return OutcomeClientConfigError
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	case !afterHeaders:
		return OutcomeConnectError
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server closed the stream (cleanly, or mid-chunk) without
		// [DONE].
		return OutcomeTruncated
	}
	return OutcomeProtocolError // reset after headers, bad framing, oversized event
}
