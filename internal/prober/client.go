package prober

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	promconfig "github.com/prometheus/common/config"
	"golang.org/x/oauth2"

	"github.com/llmprobe/llmprobe/internal/config"
)

// Request is one request to send. The prompt is JSON-escaped into the body.
type Request struct {
	Prompt    string
	MaxTokens int // omitted from the body when <= 0
	Stream    bool
}

const (
	// maxErrorDrain bounds how much of a non-2xx body is read (and
	// discarded) so that the connection can be reused.
	maxErrorDrain = 64 << 10
	// maxDoneDrain bounds the read after [DONE] that reaches the end of the
	// body, which lets the transport reuse the connection.
	maxDoneDrain = 4 << 10
	// maxJSONResponse caps a non-streamed response body.
	maxJSONResponse = 16 << 20
)

// managedBodyFields are set by llmprobe; target body extras may not override
// them (config validation rejects them too).
var managedBodyFields = []string{"model", "messages", "prompt", "stream", "stream_options", "max_tokens", "max_completion_tokens"}

// Client sends measured requests to one target. It is safe for concurrent
// use.
type Client struct {
	target string
	http   *http.Client
	// fresh never reuses a connection: a request whose reused connection
	// failed before any response byte is sent again on it, once.
	fresh *http.Client
	url   *url.URL
	chat  bool
	// continuousUsage asks for usage in every chunk (vLLM's option).
	continuousUsage bool
	// Headers are built once and shared read-only by every request: neither
	// net/http nor prometheus/common's round trippers (which clone the
	// request before adding auth) write to them.
	streamHeader, plainHeader http.Header
	// Body prefixes, pre-encoded once: everything up to the prompt.
	streamPrefix, plainPrefix []byte
	// secrets are the target's credentials, replaced by value in failure
	// details (a server may echo what it was sent).
	secrets []string
	logger  *slog.Logger
}

// NewClient builds a client for t. The HTTP client comes from t's
// http_client_config (auth, TLS, proxy) with keep-alive on; prometheus/common's
// transport already disables compression (we time bytes as they arrive, not
// as a decompressor releases them) and keeps up to 1000 idle connections per
// host, enough for the concurrency one worker drives.
func NewClient(t *config.Target, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{target: t.Name, logger: logger}
	switch t.API {
	case config.APIOpenAIChat, "":
		c.chat = true
	case config.APIOpenAICompletions:
	default:
		return nil, fmt.Errorf("target %q: unknown api %q", t.Name, t.API)
	}
	u, err := apiURL(t.URL, c.chat)
	if err != nil {
		// The parse error would quote the URL, which may hold a password.
		return nil, fmt.Errorf("target %q: invalid url", t.Name)
	}
	c.url = u
	if err := t.HTTPClientConfig.Validate(); err != nil {
		return nil, fmt.Errorf("target %q: http_client_config: %w", t.Name, err)
	}
	hc, err := promconfig.NewClientFromConfig(t.HTTPClientConfig, "llmprobe")
	if err != nil {
		return nil, fmt.Errorf("target %q: http client: %w", t.Name, err)
	}
	c.http = hc
	if c.fresh, err = promconfig.NewClientFromConfig(t.HTTPClientConfig, "llmprobe", promconfig.WithKeepAlivesDisabled()); err != nil {
		return nil, fmt.Errorf("target %q: http client: %w", t.Name, err)
	}
	if t.HTTPClientConfig.FollowRedirects {
		c.http.CheckRedirect, c.fresh.CheckRedirect = followSafeRedirects, followSafeRedirects
	}
	c.secrets = targetSecrets(t)

	c.plainHeader = http.Header{}
	for k, v := range t.Headers {
		c.plainHeader.Set(k, v)
	}
	c.plainHeader.Set("Content-Type", "application/json")
	c.plainHeader.Set("User-Agent", "llmprobe")
	c.streamHeader = c.plainHeader.Clone()
	c.streamHeader.Set("Accept", "text/event-stream")
	c.plainHeader.Set("Accept", "application/json")

	extras, err := encodeExtras(t.Body)
	if err != nil {
		return nil, fmt.Errorf("target %q: body: %w", t.Name, err)
	}
	c.continuousUsage = t.ContinuousUsageStats
	c.streamPrefix = c.prefix(t.Model, extras, true)
	c.plainPrefix = c.prefix(t.Model, extras, false)
	return c, nil
}

// targetSecrets lists t's credentials by value: inline ones, and those read
// from their files now (a later rotation is still caught by the shape-based
// redaction). Values shorter than 4 bytes would blank out ordinary words.
func targetSecrets(t *config.Target) []string {
	var out []string
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= 4 {
			out = append(out, v)
		}
	}
	file := func(path string) {
		if path == "" {
			return
		}
		if b, err := os.ReadFile(path); err == nil {
			add(string(b))
		}
	}
	hc := &t.HTTPClientConfig
	add(string(hc.BearerToken))
	file(hc.BearerTokenFile)
	if a := hc.Authorization; a != nil {
		add(string(a.Credentials))
		file(a.CredentialsFile)
	}
	if b := hc.BasicAuth; b != nil {
		add(string(b.Password))
		file(b.PasswordFile)
	}
	if o := hc.OAuth2; o != nil {
		add(string(o.ClientSecret))
		file(o.ClientSecretFile)
	}
	if h := hc.HTTPHeaders; h != nil {
		for _, v := range h.Headers {
			for _, s := range v.Secrets {
				add(string(s))
			}
			for _, f := range v.Files {
				file(f)
			}
		}
	}
	for k, v := range t.Headers {
		if !config.ShownHeader(k) {
			add(v)
		}
	}
	if u, err := url.Parse(t.URL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
	}
	return out
}

// apiURL appends the API path to base, without doubling a trailing /v1.
func apiURL(base string, chat bool) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("not an absolute http(s) url")
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, "/v1") {
		p += "/v1"
	}
	if chat {
		p += "/chat/completions"
	} else {
		p += "/completions"
	}
	u.Path, u.RawPath = p, ""
	return u, nil
}

// encodeExtras encodes target body extras as `"k":v,` pairs in key order.
func encodeExtras(body map[string]interface{}) ([]byte, error) {
	keys := make([]string, 0, len(body))
	for k := range body {
		for _, m := range managedBodyFields {
			if k == m {
				return nil, fmt.Errorf("field %q is set by llmprobe", k)
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []byte
	for _, k := range keys {
		v, err := json.Marshal(jsonable(body[k]))
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = append(out, v...)
		out = append(out, ',')
	}
	return out, nil
}

// jsonable converts YAML's map[interface{}]interface{} (which encoding/json
// rejects) into map[string]interface{}, recursively.
func jsonable(v interface{}) interface{} {
	switch v := v.(type) {
	case map[interface{}]interface{}:
		m := make(map[string]interface{}, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]interface{}:
		m := make(map[string]interface{}, len(v))
		for k, e := range v {
			m[k] = jsonable(e)
		}
		return m
	case []interface{}:
		s := make([]interface{}, len(v))
		for i, e := range v {
			s[i] = jsonable(e)
		}
		return s
	}
	return v
}

func (c *Client) prefix(model string, extras []byte, stream bool) []byte {
	b := []byte(`{"model":`)
	b = appendJSONString(b, model)
	b = append(b, ',')
	b = append(b, extras...)
	if stream && c.continuousUsage {
		b = append(b, `"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true},`...)
	} else if stream {
		b = append(b, `"stream":true,"stream_options":{"include_usage":true},`...)
	}
	if c.chat {
		b = append(b, `"messages":[{"role":"user","content":`...)
	} else {
		b = append(b, `"prompt":`...)
	}
	return b
}

// appendBody appends the whole request body for req.
func (c *Client) appendBody(b []byte, req *Request) []byte {
	if req.Stream {
		b = append(b, c.streamPrefix...)
	} else {
		b = append(b, c.plainPrefix...)
	}
	b = appendJSONString(b, req.Prompt)
	if c.chat {
		b = append(b, "}]"...)
	}
	if req.MaxTokens > 0 {
		b = append(b, `,"max_tokens":`...)
		b = strconv.AppendInt(b, int64(req.MaxTokens), 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Close closes idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	c.fresh.CloseIdleConnections()
}

// reqBody is a pooled request body. The transport may read and close the body
// on its own goroutine, even after Do returns, so the buffer goes back to the
// pool only when both Do and every reader handed to the transport let go.
type reqBody struct {
	buf     []byte
	refs    atomic.Int32
	getBody func() (io.ReadCloser, error) // bound once: a method value per request would allocate
}

// bodyReader is one reader over a reqBody. It is never reused (one small
// allocation per request), because net/http may close a body more than once:
// a late second Close must find its own closed flag, not a recycled one.
type bodyReader struct {
	rb     *reqBody
	off    int
	closed atomic.Bool
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.rb.buf) {
		return 0, io.EOF
	}
	n := copy(p, r.rb.buf[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.rb.release()
	}
	return nil
}

// newReader serves GetBody (redirects, HTTP/2 retries): rare, so it may
// allocate.
func (rb *reqBody) newReader() (io.ReadCloser, error) {
	rb.refs.Add(1)
	return &bodyReader{rb: rb}, nil
}

func (rb *reqBody) release() {
	if rb.refs.Add(-1) == 0 {
		bodyPool.Put(rb)
	}
}

var bodyPool = sync.Pool{New: func() any {
	rb := &reqBody{}
	rb.getBody = rb.newReader
	return rb
}}

// doState is per-request scratch, pooled so that a request in steady state
// allocates only what net/http itself does.
type doState struct {
	sent      time.Time
	firstByte atomic.Int64 // ns after sent; 0 until the first response byte
	reused    atomic.Bool  // the attempt went out on a kept-alive connection
	trace     httptrace.ClientTrace
	sse       *SSEReader
	chunk     Chunk
	buf       []byte // non-streamed response body
}

func (st *doState) gotFirstResponseByte() {
	st.firstByte.Store(int64(max(time.Since(st.sent), 1)))
}

func (st *doState) gotConn(info httptrace.GotConnInfo) { st.reused.Store(info.Reused) }

func getState() *doState {
	st := statePool.Get().(*doState)
	st.firstByte.Store(0)
	st.reused.Store(false)
	return st
}

var statePool = sync.Pool{New: func() any {
	st := &doState{sse: NewSSEReader(nil, DefaultMaxEventSize)}
	st.trace.GotFirstResponseByte = st.gotFirstResponseByte
	st.trace.GotConn = st.gotConn
	return st
}}

// Do sends req and measures it into res (reset first). It returns the send
// instant: the moment just before the request was first handed to the HTTP
// client (the load engine's schedule delay is this minus the intended send
// time). Every duration in res counts from that instant, or from the retry's
// when the first attempt failed on a reused connection before any response
// byte: such a request is sent once more on a fresh connection (res.Retry
// says why, res.Resent when), and a failure on a fresh connection never is.
//
// The scenario timeout is ctx's deadline: passing it yields OutcomeTimeout;
// a cancellation of ctx yields OutcomeCanceled.
func (c *Client) Do(ctx context.Context, req Request, res *Result) (sent time.Time) {
	res.Reset()
	res.Stream = req.Stream

	rb := bodyPool.Get().(*reqBody)
	rb.buf = c.appendBody(rb.buf[:0], &req)
	rb.refs.Store(1) // Do's; each attempt adds the transport's
	defer rb.release()
	header := c.plainHeader
	if req.Stream {
		header = c.streamHeader
	}

	st := getState()
	// Timing starts here: everything above is client work, not latency.
	sent = time.Now()
	resp, headersAt, err := c.attempt(ctx, c.http, rb, header, st, sent)
	from := sent
	if err != nil && retryable(ctx, st) {
		// The abandoned state is not pooled: the failed attempt's read
		// loop may still call its trace hooks.
		res.Retry = retryReason(err)
		st = getState()
		from = time.Now()
		res.Resent = from.Sub(sent)
		resp, headersAt, err = c.attempt(ctx, c.fresh, rb, header, st, from)
	}
	if err != nil {
		res.Outcome = classify(ctx, err, false)
		res.E2E = headersAt.Sub(from)
		res.Detail = c.errorDetail(err)
		return sent
	}

	defer statePool.Put(st)
	defer resp.Body.Close()

	res.Status = resp.StatusCode
	// The trace hook runs on the transport's read loop as the first byte
	// arrives, before header parsing and before the hand-off to this
	// goroutine, so it is the more faithful TTFB; Do's return is the
	// fallback.
	if fb := st.firstByte.Load(); fb > 0 {
		res.TTFB = time.Duration(fb)
	} else {
		res.TTFB = headersAt.Sub(from)
	}

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
func (c *Client) attempt(ctx context.Context, hc *http.Client, rb *reqBody, header http.Header, st *doState, from time.Time) (*http.Response, time.Time, error) {
	rb.refs.Add(1) // the transport's
	hreq := (&http.Request{
		Method:        http.MethodPost,
		URL:           c.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          &bodyReader{rb: rb},
		GetBody:       rb.getBody,
		ContentLength: int64(len(rb.buf)),
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

// readStream reads an SSE response and fills res. It returns the error that
// ended the stream, if any, for logging.
func (c *Client) readStream(ctx context.Context, body io.Reader, sent time.Time, res *Result, st *doState) error {
	sse, ch := st.sse, &st.chunk
	sse.Reset(body)
	defer sse.Reset(nil) // do not keep the body reachable from the pool

	var (
		textChunks     int64
		counted        int64
		last           time.Time // stamp of the previous text-bearing event
		continuous     bool      // per-chunk usage from the first text chunk on
		prevCompletion int64
		completion     int64
		endErr         error
		// finished: a chunk carried a finish_reason, so the generation is
		// complete; stopped: the reason was a natural stop, whose EOS token
		// servers count in usage but send no text for.
		finished, stopped bool
	)
	for {
		ev, err := sse.Next()
		if err != nil {
			endErr = err
			end := sse.LastRead()
			switch {
			case errors.Is(err, ErrEventTooLarge):
				res.Outcome = OutcomeProtocolError
			case err == io.EOF && finished:
				// TGI before 2.1 ends a complete stream without [DONE].
				res.Outcome = OutcomeSuccess
			case err == io.EOF:
				res.Outcome = OutcomeTruncated
			default:
				res.Outcome = classify(ctx, err, true)
				end = time.Now() // the failure
			}
			if end.IsZero() {
				end = time.Now()
			}
			res.E2E = end.Sub(sent)
			break
		}
		if ev.Done {
			res.Outcome = OutcomeSuccess
			res.E2E = ev.Time.Sub(sent)
			sse.Drain(maxDoneDrain)
			break
		}
		if err := ParseChunk(ev.Data, ch); err != nil || ch.Error {
			if err == nil {
				err = errors.New("error event in stream")
				res.Detail = c.detail(serverMessage(ev.Data))
			}
			endErr = err
			res.Outcome = OutcomeProtocolError
			res.E2E = ev.Time.Sub(sent)
			break
		}
		if ch.HasServerTTFT {
			res.ServerTTFT = time.Duration(ch.ServerTTFTNs)
		}
		if ch.HasServerQueue {
			res.ServerQueue = time.Duration(ch.ServerQueueNs)
		}
		if ch.HasText() {
			tokens := int64(1)
			if textChunks == 0 {
				res.TTFT = ev.Time.Sub(sent)
				// Per-chunk usage that counts (vLLM's continuous usage
				// stats); Ollama's completions put a zero usage on every
				// chunk, which does not.
				continuous = ch.HasUsage && ch.CompletionTokens > 0
			}
			if continuous && ch.HasUsage {
				// Cumulative usage per chunk: this chunk's share.
				if d := ch.CompletionTokens - prevCompletion; d > 1 {
					tokens = d
				}
			}
			if textChunks > 0 {
				res.Gaps = append(res.Gaps, Gap{Gap: ev.Time.Sub(last), Tokens: int32(tokens)})
			}
			last = ev.Time
			textChunks++
			counted += tokens
			if ch.HasEmit {
				res.GroundTruth = true
				// Wall clock on both sides: the one place wall time is
				// right, since the server's clock is only known as wall.
				res.EmitLags = append(res.EmitLags, time.Duration(ev.Time.UnixNano()-ch.EmitNs))
			}
		}
		if len(ch.FinishReason) > 0 {
			finished = true
			stopped = string(ch.FinishReason) == "stop" || string(ch.FinishReason) == "eos_token"
		}
		if ch.HasUsage {
			res.UsageReported = true
			res.InputTokens = int32(ch.PromptTokens)
			completion = ch.CompletionTokens
			prevCompletion = ch.CompletionTokens
		}
	}

	res.CountedTokens = int32(counted)
	res.OutputTokens = int32(counted)
	if res.UsageReported {
		res.OutputTokens = int32(completion)
		// Servers that batch k tokens per chunk without per-chunk usage:
		// if the total is an exact multiple, every chunk carried k.
		if !continuous && textChunks > 0 && completion > textChunks && completion%textChunks == 0 {
			k := int32(completion / textChunks)
			for i := range res.Gaps {
				res.Gaps[i].Tokens = k
			}
			res.CountedTokens = int32(completion)
		}
		// A natural stop's EOS token is in usage but was sent as no text
		// (vLLM, TGI, llama.cpp): one more than counted is agreement.
		res.UsageMismatch = int64(res.CountedTokens) != completion && !(stopped && completion == int64(res.CountedTokens)+1)
	}
	return endErr
}

var errBodyTooLarge = errors.New("response body too large")

// jsonResponse is what a non-streamed response tells us.
type jsonResponse struct {
	Object string          `json:"object"`
	Error  json.RawMessage `json:"error"`
	Usage  *struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
	ServerTTFTNs  *int64 `json:"llmprobe_ttft_ns"`
	ServerQueueNs *int64 `json:"llmprobe_queue_ns"`
}

// readJSON reads a non-streamed response. E2E is the arrival of its last
// byte; TTFT stays undefined.
func (c *Client) readJSON(ctx context.Context, body io.Reader, sent time.Time, res *Result, st *doState) error {
	if st.buf == nil {
		st.buf = make([]byte, 0, 4<<10)
	}
	b := st.buf[:0]
	var last time.Time
	var err error
	for {
		if len(b) == cap(b) {
			if cap(b) >= maxJSONResponse {
				err = errBodyTooLarge
				break
			}
			b = append(b, 0)[:len(b)]
		}
		var n int
		n, err = body.Read(b[len(b):cap(b)])
		if n > 0 {
			last = time.Now()
			b = b[:len(b)+n]
		}
		if err != nil {
			break
		}
	}
	st.buf = b[:0]
	if err != io.EOF {
		if errors.Is(err, errBodyTooLarge) {
			res.Outcome = OutcomeProtocolError
		} else {
			res.Outcome = classify(ctx, err, true)
		}
		res.E2E = time.Since(sent)
		return err
	}
	if last.IsZero() {
		last = time.Now()
	}
	res.E2E = last.Sub(sent)
	var r jsonResponse
	if err := json.Unmarshal(b, &r); err != nil {
		res.Outcome = OutcomeProtocolError
		return err
	}
	if (len(r.Error) > 0 && string(r.Error) != "null") || r.Object == "error" {
		res.Outcome = OutcomeProtocolError
		res.Detail = c.detail(serverMessage(b))
		return errors.New("error object in response")
	}
	res.Outcome = OutcomeSuccess
	if r.Usage != nil {
		res.UsageReported = true
		res.InputTokens = int32(r.Usage.PromptTokens)
		res.OutputTokens = int32(r.Usage.CompletionTokens)
	}
	if r.ServerTTFTNs != nil {
		res.GroundTruth = true
		res.ServerTTFT = time.Duration(*r.ServerTTFTNs)
	}
	if r.ServerQueueNs != nil {
		res.GroundTruth = true
		res.ServerQueue = time.Duration(*r.ServerQueueNs)
	}
	return nil
}
