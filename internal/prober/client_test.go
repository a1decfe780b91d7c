package prober

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/llmprobe/llmprobe/internal/config"
)

func newTestClient(t testing.TB, url string, api config.API, mutate func(*config.Target)) *Client {
	t.Helper()
	tg := &config.Target{Name: "test", URL: url, API: api, Model: "m", HTTPClientConfig: promconfig.DefaultHTTPClientConfig}
	if mutate != nil {
		mutate(tg)
	}
	c, err := NewClient(tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// sse writes one event per element, flushing each, sleeping before those
// given a delay.
type step struct {
	delay time.Duration
	data  string
}

func streamHandler(steps ...step) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serveSteps(w, r, func() { w.(http.Flusher).Flush() }, steps)
	}
}

// handler is streamHandler in lock step with the client's reads.
func (ls *lockstep) handler(steps ...step) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		serveSteps(w, r, func() { ls.flush(w, r) }, steps)
	}
}

func serveSteps(w http.ResponseWriter, r *http.Request, flush func(), steps []step) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flush()
	for _, s := range steps {
		if s.delay > 0 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "data: %s\n\n", s.data)
		flush()
	}
}

func content(s string) string {
	return `{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"` + s + `"},"finish_reason":null}]}`
}

const roleChunk = `{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`

func usage(prompt, completion int) string {
	return fmt.Sprintf(`{"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`, prompt, completion, prompt+completion)
}

func do(t testing.TB, c *Client, req Request, timeout time.Duration) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res := &Result{}
	c.Do(ctx, req, res)
	return res
}

func TestClientChatStreamSuccess(t *testing.T) {
	const prompt = "say \"hi\"\n\tback\\ é \x01"
	var body map[string]any
	var hdr http.Header
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, hdr = r.URL.Path, r.Header.Clone()
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("request body: %v", err)
		}
		streamHandler(
			step{0, roleChunk}, // role-only: must not end TTFT
			step{60 * time.Millisecond, content("Hello")},
			step{30 * time.Millisecond, content(" big")},
			step{30 * time.Millisecond, content(" world")},
			step{0, usage(7, 3)},
			step{0, "[DONE]"},
		)(w, r)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/", config.APIOpenAIChat, func(tg *config.Target) {
		tg.Headers = map[string]string{"x-team": "llm"}
		tg.Body = map[string]interface{}{"ignore_eos": true, "extra": map[string]interface{}{"k": []interface{}{1, "v"}}}
	})
	res := &Result{}
	sent := c.Do(context.Background(), Request{Prompt: prompt, MaxTokens: 3, Stream: true}, res)

	if sent.IsZero() || time.Since(sent) < res.E2E {
		t.Errorf("send instant %v inconsistent with E2E %v", sent, res.E2E)
	}
	if path != "/v1/chat/completions" {
		t.Errorf("path %q", path)
	}
	if hdr.Get("Content-Type") != "application/json" || hdr.Get("Accept") != "text/event-stream" || hdr.Get("X-Team") != "llm" {
		t.Errorf("headers %v", hdr)
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["content"] != strings.ToValidUTF8(prompt, "\ufffd") || msgs[0].(map[string]any)["role"] != "user" {
		t.Errorf("messages %v", body["messages"])
	}
	so, _ := body["stream_options"].(map[string]any)
	if body["model"] != "m" || body["stream"] != true || so["include_usage"] != true || body["max_tokens"] != 3.0 || body["ignore_eos"] != true {
		t.Errorf("body %v", body)
	}
	if ex, _ := body["extra"].(map[string]any); ex == nil || fmt.Sprint(ex["k"]) != "[1 v]" {
		t.Errorf("extra %v", body["extra"])
	}

	if res.Outcome != OutcomeSuccess || res.Status != 200 || !res.Stream {
		t.Fatalf("outcome %v status %d", res.Outcome, res.Status)
	}
	// Server-side sleeps bound durations from the send from below exactly
	// (the clock starts before the server sees the request). A gap between
	// two receive stamps has no such bound: it comes out shorter than the
	// sleep when the earlier chunk was read late, by as much as a busy
	// machine delays a read, so gaps are checked for their structure only.
	if res.TTFB <= 0 || res.TTFB > res.TTFT {
		t.Errorf("TTFB %v, TTFT %v", res.TTFB, res.TTFT)
	}
	if res.TTFT < 60*time.Millisecond {
		t.Errorf("TTFT %v ended before the first content chunk (role-only chunk counted?)", res.TTFT)
	}
	if len(res.Gaps) != 2 {
		t.Fatalf("gaps %v", res.Gaps)
	}
	var gaps time.Duration
	for _, g := range res.Gaps {
		if g.Gap <= 0 || g.Tokens != 1 {
			t.Errorf("gap %+v", g)
		}
		gaps += g.Gap
	}
	if res.E2E < 120*time.Millisecond || res.TTFT+gaps > res.E2E {
		t.Errorf("E2E %v, TTFT %v, gaps %v: want E2E ≥ 120ms (the server's sleeps) and TTFT + gaps ≤ E2E", res.E2E, res.TTFT, gaps)
	}
	if res.InputTokens != 7 || res.OutputTokens != 3 || res.CountedTokens != 3 || !res.UsageReported || res.UsageMismatch {
		t.Errorf("tokens %+v", res)
	}
	if res.GroundTruth || res.ServerTTFT != -1 || res.ServerQueue != -1 || len(res.EmitLags) != 0 {
		t.Errorf("ground truth without stamps: %+v", res)
	}
}

func TestClientReasoningEndsTTFT(t *testing.T) {
	srv := httptest.NewServer(streamHandler(
		step{0, roleChunk},
		step{0, `{"choices":[{"delta":{"reasoning_content":"think"}}]}`},
		step{80 * time.Millisecond, `{"choices":[{"delta":{"reasoning":"more"}}]}`},
		step{80 * time.Millisecond, content("answer")},
		step{0, "[DONE]"},
	))
	defer srv.Close()
	res := do(t, newTestClient(t, srv.URL, "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeSuccess || len(res.Gaps) != 2 || res.CountedTokens != 3 {
		t.Fatalf("outcome %v gaps %v counted %d", res.Outcome, res.Gaps, res.CountedTokens)
	}
	// TTFT ended at the first reasoning chunk: three text chunks, so two
	// gaps (checked above), which end the stream no earlier than the
	// server's two pauses.
	if res.TTFT+res.Gaps[0].Gap+res.Gaps[1].Gap > res.E2E || res.E2E < 160*time.Millisecond {
		t.Errorf("TTFT %v, gaps %v, E2E %v", res.TTFT, res.Gaps, res.E2E)
	}
	if res.UsageReported || res.OutputTokens != 3 {
		t.Errorf("tokens %+v", res)
	}
}

func TestClientCompletions(t *testing.T) {
	var body map[string]any
	var path string
	ls := newLockstep()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		_ = json.NewDecoder(r.Body).Decode(&body)
		ls.handler(
			step{0, `{"object":"text_completion","choices":[{"index":0,"text":"tok ","finish_reason":null}]}`},
			step{0, `{"object":"text_completion","choices":[{"index":0,"text":"tok ","finish_reason":"length"}]}`},
			step{0, usage(2, 2)},
			step{0, "[DONE]"},
		)(w, r)
	}))
	defer srv.Close()
	// A base URL already ending in /v1 is not doubled.
	c := lockstepClient(t, ls, srv.URL+"/v1", config.APIOpenAICompletions, nil)
	res := do(t, c, Request{Prompt: "a b", MaxTokens: 2, Stream: true}, 5*time.Second)
	if path != "/v1/completions" || body["prompt"] != "a b" || body["max_tokens"] != 2.0 || body["messages"] != nil {
		t.Errorf("path %q body %v", path, body)
	}
	if res.Outcome != OutcomeSuccess || res.CountedTokens != 2 || res.OutputTokens != 2 || len(res.Gaps) != 1 || res.TTFT < 0 {
		t.Errorf("%+v", res)
	}
}

func TestClientTokenAccounting(t *testing.T) {
	withUsage := func(s string, completion int) string {
		return `{"choices":[{"delta":{"content":"` + s + `"}}],"usage":{"prompt_tokens":1,"completion_tokens":` + fmt.Sprint(completion) + `}}`
	}
	for _, tc := range []struct {
		name       string
		steps      []step
		gapTokens  []int32
		counted    int32
		output     int32
		reported   bool
		mismatched bool
	}{
		{
			name:      "continuous usage: per-chunk deltas",
			steps:     []step{{0, `{"choices":[{"delta":{"role":"assistant"}}],"usage":{"prompt_tokens":1,"completion_tokens":0}}`}, {0, withUsage("a", 1)}, {0, withUsage("bc", 3)}, {0, withUsage("d", 4)}, {0, usage(1, 4)}, {0, "[DONE]"}},
			gapTokens: []int32{2, 1}, counted: 4, output: 4, reported: true,
		},
		{
			name:      "k tokens per chunk spread from final usage",
			steps:     []step{{0, content("ab")}, {0, content("cd")}, {0, content("ef")}, {0, usage(1, 6)}, {0, "[DONE]"}},
			gapTokens: []int32{2, 2}, counted: 6, output: 6, reported: true,
		},
		{
			name:      "usage disagrees",
			steps:     []step{{0, content("a")}, {0, content("b")}, {0, content("c")}, {0, usage(1, 4)}, {0, "[DONE]"}},
			gapTokens: []int32{1, 1}, counted: 3, output: 4, reported: true, mismatched: true,
		},
		{
			name:      "usage only on the last text chunk is a total, not a delta",
			steps:     []step{{0, content("a")}, {0, content("b")}, {0, withUsage("c", 3)}, {0, "[DONE]"}},
			gapTokens: []int32{1, 1}, counted: 3, output: 3, reported: true,
		},
		{
			name:      "no usage: counted",
			steps:     []step{{0, content("a")}, {0, content("b")}, {0, "[DONE]"}},
			gapTokens: []int32{1}, counted: 2, output: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newLockstep()
			srv := httptest.NewServer(ls.handler(tc.steps...))
			defer srv.Close()
			c := lockstepClient(t, ls, srv.URL, "", nil)
			res := do(t, c, Request{Prompt: "p", Stream: true}, 5*time.Second)
			if res.Outcome != OutcomeSuccess {
				t.Fatalf("outcome %v", res.Outcome)
			}
			var got []int32
			for _, g := range res.Gaps {
				got = append(got, g.Tokens)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.gapTokens) || res.CountedTokens != tc.counted || res.OutputTokens != tc.output ||
				res.UsageReported != tc.reported || res.UsageMismatch != tc.mismatched {
				t.Errorf("gap tokens %v counted %d output %d reported %v mismatch %v", got, res.CountedTokens, res.OutputTokens, res.UsageReported, res.UsageMismatch)
			}
		})
	}
}

func TestClientGroundTruth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			if i > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t \"}}],\"llmprobe_emit_ns\":%d,\"llmprobe_ttft_ns\":1500000,\"llmprobe_queue_ns\":250000}\n\n", time.Now().UnixNano())
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	res := do(t, newTestClient(t, srv.URL, "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeSuccess || !res.GroundTruth || res.ServerTTFT != 1500*time.Microsecond || res.ServerQueue != 250*time.Microsecond {
		t.Fatalf("%+v", res)
	}
	if len(res.EmitLags) != 3 {
		t.Fatalf("lags %v", res.EmitLags)
	}
	for _, l := range res.EmitLags {
		// Same host, same wall clock: the lag is the loopback delivery
		// time, non-negative and far below the request's length.
		if l < 0 || l > res.E2E {
			t.Errorf("lag %v (E2E %v)", l, res.E2E)
		}
	}
}

func TestClientOutcomes(t *testing.T) {
	big := strings.Repeat("x", DefaultMaxEventSize+10)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		stream  bool
		timeout time.Duration
		want    Outcome
		status  int
	}{
		{"429", statusHandler(429), true, 5 * time.Second, OutcomeHTTP429, 429},
		{"404", statusHandler(404), true, 5 * time.Second, OutcomeHTTP4xx, 404},
		{"500", statusHandler(500), true, 5 * time.Second, OutcomeHTTP5xx, 500},
		{"503", statusHandler(503), false, 5 * time.Second, OutcomeHTTP5xx, 503},
		{"302 not followed", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/x", http.StatusFound) }, true, 5 * time.Second, OutcomeHTTP3xx, 302},
		{"html page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "<html><body>Sign in</body></html>")
		}, true, 5 * time.Second, OutcomeUnexpectedContentType, 200},
		{"json to a streamed request", jsonHandler(`{"choices":[{"message":{"content":"hi"}}]}`), true, 5 * time.Second, OutcomeUnexpectedContentType, 200},
		{"stream to a plain request", streamHandler(step{0, content("a")}, step{0, "[DONE]"}), false, 5 * time.Second, OutcomeUnexpectedContentType, 200},
		{"gzip stream", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0})
		}, true, 5 * time.Second, OutcomeEncodingUnsupported, 200},
		{"truncated", streamHandler(step{0, content("a")}, step{0, content("b")}), true, 5 * time.Second, OutcomeTruncated, 200},
		{"malformed event", streamHandler(step{0, content("a")}, step{0, `{"choices":[`}, step{0, "[DONE]"}), true, 5 * time.Second, OutcomeProtocolError, 200},
		{"error event", streamHandler(step{0, content("a")}, step{0, `{"error":{"object":"error","message":"boom","code":500}}`}), true, 5 * time.Second, OutcomeProtocolError, 200},
		{"oversized event", streamHandler(step{0, content("a")}, step{0, `{"choices":[{"delta":{"content":"` + big + `"}}]}`}, step{0, "[DONE]"}), true, 5 * time.Second, OutcomeProtocolError, 200},
		{"stall beyond timeout", streamHandler(step{0, content("a")}, step{10 * time.Second, "[DONE]"}), true, 150 * time.Millisecond, OutcomeTimeout, 200},
		{"timeout before headers", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			}
		}, true, 100 * time.Millisecond, OutcomeTimeout, 0},
		{"reset mid-stream", resetHandler(true), true, 5 * time.Second, OutcomeProtocolError, 200},
		{"reset before headers", resetHandler(false), true, 5 * time.Second, OutcomeConnectError, 0},
		{"json success", jsonHandler(`{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":4,"completion_tokens":9}}`), false, 5 * time.Second, OutcomeSuccess, 200},
		{"json malformed", jsonHandler(`{"choices":[`), false, 5 * time.Second, OutcomeProtocolError, 200},
		{"json error object", jsonHandler(`{"error":{"message":"bad"}}`), false, 5 * time.Second, OutcomeProtocolError, 200},
		{"json stall beyond timeout", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, false, 100 * time.Millisecond, OutcomeTimeout, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c := newTestClient(t, srv.URL, "", func(tg *config.Target) { tg.HTTPClientConfig.FollowRedirects = false })
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			res := &Result{}
			sent := c.Do(ctx, Request{Prompt: "p", Stream: tc.stream}, res)
			cancel()
			if res.Outcome != tc.want || res.Status != tc.status {
				t.Fatalf("outcome %v status %d, want %v %d", res.Outcome, res.Status, tc.want, tc.status)
			}
			if res.E2E <= 0 || res.E2E > time.Since(start) {
				t.Errorf("E2E %v", res.E2E)
			}
			// E2E counts from the send at the socket, after the dial; the
			// deadline runs from before Do.
			if tc.want == OutcomeTimeout && res.E2E+sent.Sub(start) < tc.timeout {
				t.Errorf("timeout E2E %v + send %v after the start, before the deadline %v", res.E2E, sent.Sub(start), tc.timeout)
			}
			if (res.Status == 0) != (res.TTFB == -1) {
				t.Errorf("TTFB %v with status %d", res.TTFB, res.Status)
			}
			if !tc.stream && res.TTFT != -1 {
				t.Errorf("TTFT %v for a non-streamed request", res.TTFT)
			}
			if tc.name == "json success" && (res.OutputTokens != 9 || res.InputTokens != 4 || !res.UsageReported) {
				t.Errorf("tokens %+v", res)
			}
			if tc.name == "truncated" && (res.CountedTokens != 2 || res.TTFT < 0) {
				t.Errorf("truncated stream lost what it showed: %+v", res)
			}
		})
	}
}

// Redirects: 307 and 308 keep the method and the body and are followed
// (when follow_redirects is on, the default); 301, 302 and 303 would turn the
// POST into a body-less GET and are counted as http_3xx instead.
func TestClientRedirects(t *testing.T) {
	var gets, posts atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/found/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved/v1/chat/completions?key=SECRETKEY", http.StatusFound)
	})
	mux.HandleFunc("/temp/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/moved/v1/chat/completions", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/moved/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodGet {
			gets.Add(1)
		} else if bytes.Contains(b, []byte(`"messages"`)) {
			posts.Add(1)
		}
		streamHandler(step{0, content("a")}, step{0, "[DONE]"})(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res := do(t, newTestClient(t, srv.URL+"/found", "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeHTTP3xx || res.Status != 302 {
		t.Errorf("302: outcome %v status %d, want http_3xx 302", res.Outcome, res.Status)
	}
	if want := "redirected to /moved/v1/chat/completions (only 307 and 308 are followed)"; res.Detail != want {
		t.Errorf("302 detail %q, want %q (no query: it may hold a key)", res.Detail, want)
	}
	res = do(t, newTestClient(t, srv.URL+"/temp", "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeSuccess {
		t.Errorf("307: outcome %v, want success (followed with the body)", res.Outcome)
	}
	if gets.Load() != 0 || posts.Load() != 1 {
		t.Errorf("the redirected path saw %d GETs and %d POSTs with the body, want 0 and 1", gets.Load(), posts.Load())
	}
}

// A credentials file that is not there: the request is never sent, and the
// outcome says it is llmprobe's configuration, not the network.
func TestClientConfigError(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := newTestClient(t, srv.URL, "", func(tg *config.Target) {
		tg.HTTPClientConfig.Authorization = &promconfig.Authorization{Type: "Bearer", CredentialsFile: "/nonexistent/llmprobe-key"}
	})
	res := do(t, c, Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeClientConfigError || hits.Load() != 0 {
		t.Fatalf("outcome %v with %d requests at the server, want client_config_error and none", res.Outcome, hits.Load())
	}
	if !strings.Contains(res.Detail, "/nonexistent/llmprobe-key") {
		t.Errorf("detail %q does not name the missing file", res.Detail)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "30": 30 * time.Second, " 2 ": 2 * time.Second, "0": 0, "-5": 0, "soon": 0, "1.5": 0,
		"Tue, 01 Dec 2026 12:01:00 GMT": time.Minute, "Tue, 01 Dec 2026 11:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, `{"error":{"message":"Rate limit reached"}}`, http.StatusTooManyRequests)
	}))
	defer srv.Close()
	res := do(t, newTestClient(t, srv.URL, "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeHTTP429 || res.RetryAfter != 7*time.Second || res.Detail != "Rate limit reached" {
		t.Errorf("outcome %v, RetryAfter %v, detail %q; want http_429, 7s, the server's message", res.Outcome, res.RetryAfter, res.Detail)
	}
}

// An oauth2 token endpoint that refuses the client's credentials: nothing
// reaches the target, and the outcome says it is llmprobe's configuration.
func TestClientOAuth2TokenRefused(t *testing.T) {
	const secret = "oauth-client-secret-5ec7e7"
	var hits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client","error_description":"bad client secret"}`)
	})
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := newTestClient(t, srv.URL, "", func(tg *config.Target) {
		tg.HTTPClientConfig.OAuth2 = &promconfig.OAuth2{ClientID: "c", ClientSecret: secret, TokenURL: srv.URL + "/token"}
	})
	res := do(t, c, Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeClientConfigError || hits.Load() != 0 {
		t.Fatalf("outcome %v (%s) with %d requests at the target, want client_config_error and none", res.Outcome, res.Detail, hits.Load())
	}
	if !strings.Contains(res.Detail, "invalid_client") || strings.Contains(res.Detail, secret) {
		t.Errorf("detail %q: want the token endpoint's answer, never the secret", res.Detail)
	}
}

func statusHandler(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"nope"}}`, code)
	}
}

func jsonHandler(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

// resetHandler hijacks the connection and resets it (RST, via linger 0),
// after the headers and one event or before anything.
func resetHandler(afterHeaders bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		if afterHeaders {
			ev := "data: " + content("a") + "\n\n"
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(ev), ev)
			buf.Flush()
			// Let the client take the headers before the reset: an RST
			// drops data still unread in the client's socket.
			time.Sleep(200 * time.Millisecond)
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
}

func TestClientConnectError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res := do(t, newTestClient(t, "http://"+addr, "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeConnectError || res.Status != 0 || res.TTFB != -1 || res.E2E < 0 {
		t.Fatalf("%+v", res)
	}
}

func TestClientCanceled(t *testing.T) {
	srv := httptest.NewServer(streamHandler(step{0, content("a")}, step{10 * time.Second, "[DONE]"}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	// A scenario timeout (deadline) under the canceled parent: the parent's
	// cancellation is what ended the request.
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
	defer tcancel()
	res := &Result{}
	c.Do(tctx, Request{Prompt: "p", Stream: true}, res)
	if res.Outcome != OutcomeCanceled || res.CountedTokens != 1 {
		t.Fatalf("%+v", res)
	}
}

func TestClientReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(streamHandler(step{0, content("a")}, step{0, content("b")}, step{0, usage(1, 2)}, step{0, "[DONE]"}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newTestClient(t, srv.URL, "", nil)
	for range 10 {
		if res := do(t, c, Request{Prompt: "p", Stream: true}, 5*time.Second); res.Outcome != OutcomeSuccess {
			t.Fatalf("outcome %v", res.Outcome)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 10 sequential requests, want 1 (body not drained after [DONE]?)", n)
	}
}

func TestClientConcurrent(t *testing.T) {
	ls := newLockstep()
	srv := httptest.NewServer(ls.handler(step{0, roleChunk}, step{0, content("a")}, step{time.Millisecond, content("b")}, step{0, usage(1, 2)}, step{0, "[DONE]"}))
	defer srv.Close()
	c := lockstepClient(t, ls, srv.URL, "", func(tg *config.Target) { tg.Headers = map[string]string{"X-A": "b"} })
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &Result{}
			for i := range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				c.Do(ctx, Request{Prompt: fmt.Sprint("p", g, i), MaxTokens: 2, Stream: i%2 == 0}, res)
				cancel()
				// Non-streamed requests get a stream back: not what they asked for.
				if res.Outcome != OutcomeSuccess && !(i%2 == 1 && res.Outcome == OutcomeUnexpectedContentType) {
					failed.Add(1)
				}
				if i%2 == 0 && (res.CountedTokens != 2 || len(res.Gaps) != 1) {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d bad results", n)
	}
}

func TestClientSecretsStayOut(t *testing.T) {
	const token, password = "tok-SuperSecret-123", "pw-Hunter2-456"
	var gotAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		// A server that echoes what it was sent, credentials included.
		http.Error(w, `{"error":{"message":"down; you sent `+r.Header.Get("Authorization")+` and the key `+token+`"}}`, 500)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mk := func(url string) (*Client, error) {
		tg := &config.Target{Name: "t", URL: url, Model: "m", HTTPClientConfig: promconfig.DefaultHTTPClientConfig}
		tg.HTTPClientConfig.Authorization = &promconfig.Authorization{Type: "Bearer", Credentials: token}
		return NewClient(tg, logger)
	}
	c, err := mk(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res := do(t, c, Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeHTTP5xx {
		t.Fatalf("outcome %v", res.Outcome)
	}
	if !strings.HasPrefix(res.Detail, "down; you sent") {
		t.Errorf("detail %q does not carry the server's message", res.Detail)
	}
	logs.WriteString(res.Detail + "\n")
	if gotAuth.Load() != "Bearer "+token {
		t.Fatalf("authorization not sent: %q", gotAuth.Load())
	}
	// A connect error, with a password in the URL's userinfo.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c2, err := mk("http://user:" + password + "@" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	res = do(t, c2, Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeConnectError {
		t.Fatalf("outcome %v", res.Outcome)
	}
	if !strings.Contains(res.Detail, "refused") {
		t.Errorf("detail %q does not say the connection was refused", res.Detail)
	}
	logs.WriteString(res.Detail + "\n")
	// Construction errors.
	_, err1 := mk("http://user:" + password + "@[::1")
	tg := &config.Target{Name: "t", URL: srv.URL, Model: "m"}
	tg.HTTPClientConfig.BasicAuth = &promconfig.BasicAuth{Username: "u", Password: promconfig.Secret(password)}
	tg.HTTPClientConfig.TLSConfig.CAFile = "/nonexistent/ca.pem"
	_, err2 := NewClient(tg, logger)
	for _, e := range []error{err1, err2} {
		if e == nil {
			t.Fatal("expected an error")
		}
		logs.WriteString(e.Error())
	}
	for _, s := range []string{token, password} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("secret %q leaked: %s", s, logs.String())
		}
	}
}

func TestNewClientRejects(t *testing.T) {
	for name, tg := range map[string]config.Target{
		"bad api":        {Name: "t", URL: "http://127.0.0.1:1", API: "grpc", Model: "m"},
		"unparsable url": {Name: "t", URL: "http://[::1", Model: "m"},
	} {
		if _, err := NewClient(&tg, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\n\r\t\x00\x1f\x7f", "é€😀", "bad\xffutf8\xc3", "\u2028<>&"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: %s: %v", s, got, err)
		}
		if back != strings.ToValidUTF8(s, "\ufffd") {
			t.Errorf("%q round-tripped to %q", s, back)
		}
	}
}
