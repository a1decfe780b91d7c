package prober

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	promconfig "github.com/prometheus/common/config"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/netstamp"
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

// Client sends measured requests to one target. It is safe for concurrent
// use.
type Client struct {
	target string
	// bodyHint is the largest request body so far: a new body's buffer
	// starts that large and is not grown while it is written.
	bodyHint atomic.Int64
	http     *http.Client
	// fresh never reuses a connection: a request whose reused connection
	// failed before any response byte is sent again on it, once.
	fresh *http.Client
	url   *url.URL
	api   wireAPI
	// trace: send a traceparent; traceSampled: with the sampled flag.
	trace, traceSampled bool
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
	// stamps dials both clients' connections: kernel receive stamps where
	// the target's timestamps mode and the socket allow.
	stamps *netstamp.Dialer
	// loggedSource is the timestamp source last logged (Source+1), so that
	// the log says it at the first connection and again only if it changes.
	loggedSource atomic.Uint32
}

// TimestampSource is the source of the latest connection dialed (ok false
// before the first), for llmprobe_timestamp_source.
func (c *Client) TimestampSource() (netstamp.Source, bool) { return c.stamps.LastSource() }

// onConn logs a connection's timestamp source the first time, and when it
// differs from the one logged last: a fallback to user-space stamps at info
// (the figures then include the client's own delays), kernel stamps, the
// expected case, at debug.
func (c *Client) onConn(src netstamp.Source, why error) {
	if c.loggedSource.Swap(uint32(src)+1) == uint32(src)+1 {
		return
	}
	switch {
	case src == netstamp.SourceKernel:
		c.logger.Debug("timestamps from the kernel", "target", c.target, "mode", c.stamps.Mode)
	case why != nil:
		c.logger.Info("timestamps from user space", "target", c.target, "mode", c.stamps.Mode, "reason", why.Error())
	default: // timestamps: user, as configured
		c.logger.Debug("timestamps from user space", "target", c.target, "mode", c.stamps.Mode)
	}
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
	api, err := apiFor(t.API)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	c := &Client{target: t.Name, logger: logger, api: api}
	switch t.TraceSampling() {
	case config.TraceSampled:
		c.trace, c.traceSampled = true, true
	case config.TraceUnsampled:
		c.trace = true
	}
	u, err := apiURL(t.URL, api.path())
	if err != nil {
		// The parse error would quote the URL, which may hold a password.
		return nil, fmt.Errorf("target %q: invalid url", t.Name)
	}
	c.url = u
	// Config validation has checked http_client_config (and the body
	// extras below): a client is built from a validated target.
	hcc := t.HTTPClientConfig
	if m, ok := api.(credentialMover); ok {
		m.moveCredentials(&hcc)
	}
	mode, err := netstamp.ParseMode(t.Timestamps)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	c.stamps = &netstamp.Dialer{Mode: mode, OnConn: c.onConn}
	dial := promconfig.WithDialContextFunc(c.stamps.DialContext)
	hc, err := promconfig.NewClientFromConfig(hcc, "llmprobe", dial)
	if err != nil {
		return nil, fmt.Errorf("target %q: http client: %w", t.Name, err)
	}
	c.http = hc
	if c.fresh, err = promconfig.NewClientFromConfig(hcc, "llmprobe", dial, promconfig.WithKeepAlivesDisabled()); err != nil {
		return nil, fmt.Errorf("target %q: http client: %w", t.Name, err)
	}
	if hcc.FollowRedirects {
		c.http.CheckRedirect, c.fresh.CheckRedirect = followSafeRedirects, followSafeRedirects
	}
	c.secrets = targetSecrets(t)

	c.plainHeader = http.Header{}
	api.header(c.plainHeader) // a target's own headers may override the API's defaults
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
	pa := prefixArgs{Model: t.Model, Extras: extras, Body: t.Body, ContinuousUsage: t.ContinuousUsageStats}
	c.plainPrefix = api.prefix(&pa)
	pa.Stream = true
	c.streamPrefix = api.prefix(&pa)
	return c, nil
}

// credentialMover is a wireAPI that sends credentials its own way (not as
// Authorization: Bearer).
type credentialMover interface {
	moveCredentials(*promconfig.HTTPClientConfig)
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

// apiURL appends /v1 and the API's path to base, without doubling a
// trailing /v1.
func apiURL(base, path string) (*url.URL, error) {
	// Config validation has checked the scheme and host.
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, "/v1") {
		p += "/v1"
	}
	u.Path, u.RawPath = p+path, ""
	return u, nil
}

// Close closes idle connections.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
	c.fresh.CloseIdleConnections()
}
