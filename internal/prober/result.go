package prober

import "time"

// Outcome classifies how one request ended. Values are stable: they travel in
// worker records and label llmprobe_requests_total.
type Outcome uint8

const (
	OutcomeSuccess               Outcome = iota // complete response ([DONE] for streams)
	OutcomeHTTP4xx                              // 4xx other than 429
	OutcomeHTTP429                              // rate limited
	OutcomeHTTP5xx                              // 5xx
	OutcomeTimeout                              // scenario timeout passed
	OutcomeConnectError                         // no response: dial, TLS or reset before headers
	OutcomeProtocolError                        // bad SSE/JSON, an error event, or reset mid-stream
	OutcomeTruncated                            // stream ended without [DONE]
	OutcomeCanceled                             // canceled by shutdown or reload, not by the server
	OutcomeHTTP3xx                              // a redirect not followed (inference requests follow only 307/308)
	OutcomeUnexpectedContentType                // a 2xx that is not what was asked for: HTML, or JSON to a streamed request
	OutcomeEncodingUnsupported                  // a 2xx with a Content-Encoding (gzip …): bytes cannot be timed as they arrive
	OutcomeClientConfigError                    // never sent: the client could not build the request (a credentials file missing …)
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{
	"success", "http_4xx", "http_429", "http_5xx", "timeout",
	"connect_error", "protocol_error", "truncated", "canceled",
	"http_3xx", "unexpected_content_type", "encoding_unsupported", "client_config_error",
}

func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// RetryReason says why a request was sent a second time, on a fresh
// connection: its first attempt failed on a reused keep-alive connection
// before any response byte arrived (a server that closes connections it
// advertised as kept alive, or closes idle ones without saying so). Values are
// stable: they travel in worker records and label
// llmprobe_connection_retries_total.
type RetryReason uint8

const (
	RetryNone       RetryReason = iota // sent once
	RetryEOF                           // the reused connection was closed (EOF, or Go's "server closed idle connection")
	RetryReset                         // the reused connection was reset
	RetryBrokenPipe                    // writing to the reused connection failed
	RetryOther                         // any other transport error on the reused connection
	NumRetryReasons
)

var retryNames = [NumRetryReasons]string{"", "eof", "reset", "broken_pipe", "other"}

func (r RetryReason) String() string {
	if r < NumRetryReasons {
		return retryNames[r]
	}
	return "unknown"
}

// Gap is the time between two consecutive chunks that carry generated text,
// and how many tokens the later chunk carried. ITL = Gap / Tokens, counted
// Tokens times.
type Gap struct {
	Gap    time.Duration
	Tokens int32
}

// Result is one request measured. Every duration is on the monotonic clock
// and counted from the actual send: right before the write syscall of the
// request's last byte where the connection is stamped (netstamp), else the
// moment the request is handed to the HTTP transport. Undefined durations are
// -1.
type Result struct {
	Outcome Outcome
	Status  int // HTTP status, 0 when no response arrived
	Stream  bool

	// Retry is why the request was sent again on a fresh connection
	// (RetryNone when it was not); every duration below then counts from the
	// retry's send, and Resent is how long after the first send that was.
	Retry  RetryReason
	Resent time.Duration

	// TraceID is the W3C trace id the request carried in its traceparent
	// (all zero when the target sends none): the latency histograms'
	// exemplars name it, so a slow request can be found in the engine's
	// traces.
	TraceID TraceID

	TTFB time.Duration // response headers received
	TTFT time.Duration // first chunk with generated text (content or reasoning); -1 unless streamed and seen
	E2E  time.Duration // last byte of the response (or the failure)

	// Gaps between chunks with generated text, in order. Reused across
	// requests: copy before keeping.
	Gaps []Gap

	InputTokens   int32 // from usage; 0 if unknown
	OutputTokens  int32 // from usage, else counted
	CountedTokens int32 // text-bearing chunks counted (per-chunk usage where sent)
	UsageReported bool  // the server sent usage
	UsageMismatch bool  // usage disagrees with the counted tokens

	// Ground truth, present only when the endpoint stamps its events (the
	// reference endpoint does: llmprobe_emit_ns, llmprobe_ttft_ns).
	GroundTruth bool
	ServerTTFT  time.Duration // server's own request-arrival → first-token emit; -1 if absent
	ServerQueue time.Duration // server-side queue wait; -1 if absent
	// EmitLags: for each text-bearing event, receive wall time − the
	// server's emit wall time. Reused across requests.
	EmitLags []time.Duration

	// KernelStamps: the response's times are the kernel's receive stamps
	// (netstamp); false when they are user-space stamps (the target's
	// timestamps: user, a connection that refused the option, HTTP/2, no
	// response).
	KernelStamps bool
	// Connect is the connection set-up (dial, TLS) before the send, on a
	// fresh connection; -1 on a reused one. The send instant follows it when
	// stamped at the socket, so it is not in TTFB or TTFT.
	Connect time.Duration
	// SendSpan is how long the request's first write syscall (its headers,
	// which net/http flushes before a body) preceded the one with its last
	// byte, the send instant; 0 when not stamped at the socket. A server
	// that starts its clock at the headers counts it in its own TTFT.
	SendSpan time.Duration
	// ReadLags: for each text-bearing event with a kernel stamp, the
	// user-space time its read returned − the kernel's receive time: the
	// delay the client itself would have added to it. Reused across
	// requests.
	ReadLags []time.Duration
	// Coalesced counts text-bearing events that arrived in one read with
	// another: such a read counts as one chunk of their tokens.
	Coalesced int32
	// ClockSteps counts reads whose kernel stamp was not used because the
	// wall clock stepped since the send (their user-space stamp was).
	ClockSteps int32

	// RetryAfter is what a 429 or 503 asked for in its Retry-After header
	// (seconds, or an HTTP date), 0 when it asked for nothing. It is used
	// where the request was measured (the load engine's back-off) and does
	// not travel in worker records.
	RetryAfter time.Duration

	// Detail says why a request failed, for the logs: the server's own error
	// message (from an error body or an error event) or the transport's
	// error, truncated to MaxDetail bytes with secrets redacted. Empty on
	// success. It is logged where the request was measured, and travels in
	// worker records to the supervisor's status page.
	Detail string
}

// Reset clears r for reuse, keeping slice capacity.
func (r *Result) Reset() {
	gaps, lags, rlags := r.Gaps[:0], r.EmitLags[:0], r.ReadLags[:0]
	*r = Result{TTFB: -1, TTFT: -1, E2E: -1, ServerTTFT: -1, ServerQueue: -1, Connect: -1, Gaps: gaps, EmitLags: lags, ReadLags: rlags}
}
