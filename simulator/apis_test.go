package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apiCase is one of the four APIs as a client calls it.
type apiCase struct {
	name string
	api  apiKind
	path string
	hdr  map[string]string
	// body asks for maxTokens tokens (0: the API's default) of a
	// three-word prompt.
	body func(stream bool, maxTokens int) string
}

var anthropicHeaders = map[string]string{"anthropic-version": "2023-06-01"}

var apiCases = []apiCase{
	{"chat", apiChat, "/v1/chat/completions", nil, func(stream bool, n int) string {
		return fmt.Sprintf(`{"model":"llmprobe-sim","messages":[{"role":"user","content":"one two three"}],"stream":%v%s%s}`,
			stream, maxField("max_tokens", n), usageField(stream))
	}},
	{"completions", apiCompletions, "/v1/completions", nil, func(stream bool, n int) string {
		return fmt.Sprintf(`{"model":"llmprobe-sim","prompt":"one two three","stream":%v%s%s}`, stream, maxField("max_tokens", n), usageField(stream))
	}},
	{"messages", apiMessages, "/v1/messages", anthropicHeaders, func(stream bool, n int) string {
		if n == 0 {
			n = 8 // required by Anthropic
		}
		return fmt.Sprintf(`{"model":"llmprobe-sim","max_tokens":%d,"system":"one","messages":[{"role":"user","content":[{"type":"text","text":"two three"}]}],"stream":%v}`, n, stream)
	}},
	{"responses", apiResponses, "/v1/responses", nil, func(stream bool, n int) string {
		return fmt.Sprintf(`{"model":"llmprobe-sim","instructions":"one","input":[{"role":"user","content":"two three"}],"stream":%v%s}`, stream, maxField("max_output_tokens", n))
	}},
}

func maxField(name string, n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(`,%q:%d`, name, n)
}

func usageField(stream bool) string {
	if !stream {
		return ""
	}
	return `,"stream_options":{"include_usage":true}`
}

// apiSummary is what a lenient client learns from any of the four streams,
// however it ended.
type apiSummary struct {
	events       []sseEvent
	textEvents   []int // indexes into events of the text-bearing ones
	textEmitNs   []int64
	tokens       int // words of generated text, reasoning included
	reasoning    int
	invalid      int  // data payloads that are not JSON
	ended        bool // the API's end marker arrived
	failed       bool // the API's error event arrived
	inputTokens  int  // from usage, -1 if none was seen
	outputTokens int  // from the final usage, -1 if none was seen
	// ttftNs, queueNs: the first text event's stamps for Messages and
	// Responses, the final events' for chat and completions; -1 if absent.
	ttftNs, queueNs int64
	// firstEvent: the first text event carries the queue and TTFT stamps.
	firstEventTruth bool
}

// summarize decodes the events of an api's stream without assuming it
// completed. It fails the test on anything a conforming client would
// reject: an event name that is not the payload's type, token text that is
// not whole words, a text event without its emit stamp, a stamp that goes
// backwards.
func summarize(t *testing.T, api apiKind, evs []sseEvent) apiSummary {
	t.Helper()
	sum := apiSummary{events: evs, inputTokens: -1, outputTokens: -1, ttftNs: -1, queueNs: -1}
	var lastEmit int64
	for i, ev := range evs {
		if string(ev.data) == "[DONE]" && (api == apiChat || api == apiCompletions) {
			sum.ended = true
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.data, &m); err != nil {
			sum.invalid++
			continue
		}
		emit, _ := m["llmprobe_emit_ns"].(float64)
		if emit <= 0 {
			t.Fatalf("event %d has no llmprobe_emit_ns: %s", i, ev.data)
		}
		if int64(emit) < lastEmit {
			t.Fatalf("event %d: emit stamp goes backwards", i)
		}
		lastEmit = int64(emit)
		q, truth := m["llmprobe_queue_ns"].(float64)
		if truth && sum.queueNs < 0 {
			sum.queueNs, sum.ttftNs = int64(q), int64(m["llmprobe_ttft_ns"].(float64))
		}
		typ, _ := m["type"].(string)
		if api == apiMessages || api == apiResponses {
			if ev.name == "" || ev.name != typ {
				t.Fatalf("event %d: SSE name %q, payload type %q", i, ev.name, typ)
			}
		} else if ev.name != "" {
			t.Fatalf("event %d: OpenAI streams name no events, got %q", i, ev.name)
		}
		text, reasoning := "", false
		switch api {
		case apiChat, apiCompletions:
			if _, ok := m["error"]; ok {
				sum.failed = true
			}
			if u, ok := m["usage"].(map[string]any); ok {
				sum.inputTokens, sum.outputTokens = int(u["prompt_tokens"].(float64)), int(u["completion_tokens"].(float64))
			}
			if cs, _ := m["choices"].([]any); len(cs) == 1 {
				c := cs[0].(map[string]any)
				if d, ok := c["delta"].(map[string]any); ok {
					if r, ok := d["reasoning_content"].(string); ok {
						text, reasoning = r, true
					} else {
						text, _ = d["content"].(string)
					}
				} else {
					text, _ = c["text"].(string)
				}
			}
		case apiMessages:
			switch typ {
			case "message_start":
				u := m["message"].(map[string]any)["usage"].(map[string]any)
				sum.inputTokens = int(u["input_tokens"].(float64))
			case "content_block_delta":
				d := m["delta"].(map[string]any)
				switch d["type"] {
				case "text_delta":
					text = d["text"].(string)
				case "thinking_delta":
					text, reasoning = d["thinking"].(string), true
				}
			case "message_delta":
				sum.outputTokens = int(m["usage"].(map[string]any)["output_tokens"].(float64))
			case "message_stop":
				sum.ended = true
			case "error":
				sum.failed = true
			}
		case apiResponses:
			switch typ {
			case "response.output_text.delta":
				text = m["delta"].(string)
			case "response.reasoning_text.delta":
				text, reasoning = m["delta"].(string), true
			case "response.completed", "response.incomplete":
				sum.ended = true
				u := m["response"].(map[string]any)["usage"].(map[string]any)
				sum.inputTokens, sum.outputTokens = int(u["input_tokens"].(float64)), int(u["output_tokens"].(float64))
			case "response.failed", "error":
				sum.failed = true
			}
		}
		if text == "" {
			continue
		}
		if len(sum.textEvents) == 0 {
			sum.firstEventTruth = truth
		}
		for _, w := range strings.SplitAfter(text, " ") {
			if w != "" && w != "tok " && w != "think " {
				t.Fatalf("event %d: token text %q is not one word and a space", i, w)
			}
		}
		n := len(strings.Fields(text))
		sum.tokens += n
		if reasoning {
			sum.reasoning += n
		}
		sum.textEvents = append(sum.textEvents, i)
		sum.textEmitNs = append(sum.textEmitNs, int64(emit))
		if len(sum.textEvents) == 1 && (api == apiMessages || api == apiResponses) {
			if _, ok := m["llmprobe_ttft_ns"]; !ok {
				t.Fatalf("the first text event lacks llmprobe_ttft_ns: %s", ev.data)
			}
		}
	}
	return sum
}

// streamAPI runs one streamed request of an API to its end.
func streamAPI(t *testing.T, url string, c apiCase, maxTokens int, hdr map[string]string) (apiSummary, error) {
	t.Helper()
	h := map[string]string{}
	for k, v := range c.hdr {
		h[k] = v
	}
	for k, v := range hdr {
		h[k] = v
	}
	evs, err := streamRequest(t, url+c.path, c.body(true, maxTokens), h)
	return summarize(t, c.api, evs), err
}

// TestStreamedAPIs: the same engine behind all four APIs: the requested
// tokens, one kind at a time with reasoning first, one token in the first
// event and up to k later, usage agreeing with the text, the end marker,
// and the ground-truth stamps where each API puts them.
func TestStreamedAPIs(t *testing.T) {
	for _, tc := range []struct {
		name                string
		perEvent, reasoning int
		maxTokens           int
	}{
		{"plain", 1, 0, 5},
		{"k tokens per event", 3, 0, 10},
		{"reasoning", 2, 3, 7},
		{"all reasoning", 1, 9, 4},
		{"one token", 1, 0, 1},
	} {
		cfg := fastConfig()
		cfg.TokensPerEvent, cfg.ReasoningTokens = tc.perEvent, tc.reasoning
		_, ts := newTestServer(t, cfg)
		for _, c := range apiCases {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, tc.maxTokens, nil)
				if err != nil {
					t.Fatal(err)
				}
				wantReasoning := min(tc.reasoning, tc.maxTokens)
				if c.api == apiCompletions {
					wantReasoning = 0 // plain text only
				}
				if !sum.ended || sum.failed || sum.invalid > 0 {
					t.Fatalf("ended %v failed %v invalid %d", sum.ended, sum.failed, sum.invalid)
				}
				if sum.tokens != tc.maxTokens || sum.reasoning != wantReasoning {
					t.Fatalf("%d tokens (%d reasoning), want %d (%d)", sum.tokens, sum.reasoning, tc.maxTokens, wantReasoning)
				}
				if sum.inputTokens != 3 || sum.outputTokens != tc.maxTokens {
					t.Fatalf("usage: %d in, %d out; want 3 and %d", sum.inputTokens, sum.outputTokens, tc.maxTokens)
				}
				if sum.ttftNs < int64(cfg.TTFT) || sum.queueNs < 0 {
					t.Fatalf("server TTFT %dns (queue %dns), configured %v", sum.ttftNs, sum.queueNs, cfg.TTFT)
				}
				// Chat and completions stamp the final chunks, which the
				// first is when it is the only one.
				truthFirst := c.api == apiMessages || c.api == apiResponses || len(sum.textEvents) == 1
				if sum.firstEventTruth != truthFirst {
					t.Fatalf("queue and TTFT stamps on the first text event: %v, want %v", sum.firstEventTruth, truthFirst)
				}
				seenContent := false
				for i, ei := range sum.textEvents {
					n := len(strings.Fields(wordsOf(sum.events[ei].data)))
					if (i == 0 && n != 1) || n > tc.perEvent {
						t.Fatalf("text event %d carries %d tokens (k=%d)", i, n, tc.perEvent)
					}
					isReasoning := strings.Contains(string(sum.events[ei].data), "think ")
					if isReasoning && seenContent {
						t.Fatalf("reasoning after content at text event %d", i)
					}
					seenContent = seenContent || !isReasoning
				}
			})
		}
	}
}

// wordsOf is the generated words in one event's payload.
func wordsOf(data []byte) string {
	var b strings.Builder
	for _, w := range strings.Fields(strings.NewReplacer(`"`, " ", `:`, " ", `,`, " ").Replace(string(data))) {
		if w == "tok" || w == "think" {
			b.WriteString(w + " ")
		}
	}
	return b.String()
}

// TestMidStreamFaultsAllAPIs: every mid-stream fault behaves the same way
// in every API, in that API's own terms.
func TestMidStreamFaultsAllAPIs(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.StallDuration = ms(250)
	cfg.Faults.OversizedBytes = 256 << 10
	_, ts := newTestServer(t, cfg)
	const n = 6
	for _, c := range apiCases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("truncate", func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, n, faultHeader("truncate"))
				if err != nil {
					t.Fatalf("a truncated stream ends cleanly, got %v", err)
				}
				if sum.ended || sum.failed || sum.outputTokens != -1 || len(sum.textEvents) != 2 {
					t.Fatalf("ended %v failed %v final usage %d, %d text events; want a bare end after 2", sum.ended, sum.failed, sum.outputTokens, len(sum.textEvents))
				}
			})
			t.Run("reset", func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, n, faultHeader("reset"))
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("want a connection reset, got %v", err)
				}
				if sum.ended || len(sum.textEvents) != 2 {
					t.Fatalf("ended %v after %d text events, want a reset after 2", sum.ended, len(sum.textEvents))
				}
			})
			t.Run("stream_error", func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, n, faultHeader("stream_error"))
				if err != nil {
					t.Fatal(err)
				}
				// vLLM follows its error chunk with [DONE]; the others
				// end at the error.
				wantEnded := c.api == apiChat || c.api == apiCompletions
				if !sum.failed || sum.ended != wantEnded || sum.outputTokens != -1 || len(sum.textEvents) != 2 {
					t.Fatalf("failed %v ended %v usage %d, %d text events", sum.failed, sum.ended, sum.outputTokens, len(sum.textEvents))
				}
				if last := sum.events[len(sum.events)-1]; !wantEnded && !strings.Contains(string(last.data), "error") {
					t.Fatalf("the error is not the last event: %s", last.data)
				}
			})
			t.Run("malformed", func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, n, faultHeader("malformed"))
				if err != nil {
					t.Fatal(err)
				}
				if sum.invalid != 1 || !sum.ended || sum.tokens != n {
					t.Fatalf("%d invalid events, ended %v, %d tokens; want 1, a complete stream of %d", sum.invalid, sum.ended, sum.tokens, n)
				}
				bad := sum.events[sum.textEvents[1]+1]
				if json.Valid(bad.data) || (c.api >= apiMessages && bad.name == "") {
					t.Fatalf("the malformed event follows text event 2, named as the API names events: %q %s", bad.name, bad.data)
				}
			})
			t.Run("oversized", func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, n, faultHeader("oversized"))
				if err != nil {
					t.Fatal(err)
				}
				var long []byte
				for _, ev := range sum.events {
					if len(ev.data) > len(long) {
						long = ev.data
					}
				}
				var m map[string]json.RawMessage
				if json.Unmarshal(long, &m) != nil || m["llmprobe_padding"] == nil {
					t.Fatalf("the long event is not valid JSON with top-level padding")
				}
				longest := len(long)
				if d := longest - cfg.Faults.OversizedBytes; d < -1024 || d > 1024 {
					t.Fatalf("longest event %d bytes, want ≈ %d", longest, cfg.Faults.OversizedBytes)
				}
				if !sum.ended || sum.tokens != n || sum.outputTokens != n {
					t.Fatalf("ended %v, %d tokens, usage %d; want a complete stream of %d", sum.ended, sum.tokens, sum.outputTokens, n)
				}
			})
			t.Run("stall", func(t *testing.T) {
				sum, err := streamAPI(t, ts.URL, c, n, faultHeader("stall"))
				if err != nil {
					t.Fatal(err)
				}
				if !sum.ended || sum.tokens != n {
					t.Fatalf("a stalled stream completes: ended %v, %d tokens", sum.ended, sum.tokens)
				}
				// The endpoint's own emit stamps, with the margin of
				// TestStallFault for a late previous emit.
				var longest time.Duration
				at := -1
				for i := 1; i < len(sum.textEmitNs); i++ {
					if g := time.Duration(sum.textEmitNs[i] - sum.textEmitNs[i-1]); g > longest {
						longest, at = g, i
					}
				}
				if longest < 200*time.Millisecond || at != 2 {
					t.Fatalf("longest silence %v before text event %d, want ≥200ms before event 2", longest, at)
				}
			})
			t.Run("drip", func(t *testing.T) {
				resp := post(t, ts.URL+c.path, c.body(true, 1), mergeHeaders(c.hdr, faultHeader("drip")))
				defer resp.Body.Close()
				var reads, total int
				var data []byte
				buf := make([]byte, 64<<10)
				for {
					k, err := resp.Body.Read(buf)
					if k > 0 {
						reads++
						total += k
						data = append(data, buf[:k]...)
					}
					if err != nil {
						break
					}
				}
				if reads < total/4 {
					t.Fatalf("%d bytes came in %d reads: not dripped", total, reads)
				}
				evs, err := readSSE(bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if sum := summarize(t, c.api, evs); !sum.ended || sum.tokens != 1 {
					t.Fatalf("dripped stream: ended %v, %d tokens", sum.ended, sum.tokens)
				}
			})
		})
	}
}

func mergeHeaders(hs ...map[string]string) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		for k, v := range h {
			m[k] = v
		}
	}
	return m
}

// apiError is any of the error shapes: OpenAI's (as vLLM writes it) and
// Anthropic's.
type apiError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    *int   `json:"code"`
	} `json:"error"`
}

// checkErrorShape asserts the API's error body for status.
func checkErrorShape(t *testing.T, api apiKind, status int, body []byte, wantType string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an error object: %s", body)
	}
	if api == apiMessages {
		if e.Type != "error" || e.Error.Code != nil || e.Error.Type != wantType {
			t.Fatalf("want Anthropic's {type:error, error:{type:%s}}: %s", wantType, body)
		}
		return
	}
	if e.Type != "" || e.Error.Code == nil || *e.Error.Code != status {
		t.Fatalf("want OpenAI's {error:{message,type,param,code:%d}}: %s", status, body)
	}
}

func TestHTTPFaultsAllAPIs(t *testing.T) {
	cfg := fastConfig()
	cfg.Faults.RetryAfter = ms(1500)
	_, ts := newTestServer(t, cfg)
	for _, c := range apiCases {
		for _, tc := range []struct {
			kind, anthropicType string
			status              int
			retryAfter          string
		}{
			{"rate_limit", "rate_limit_error", 429, "2"},
			{"server_error", "api_error", 500, ""},
			{"unavailable", "overloaded_error", 503, "2"},
		} {
			for _, stream := range []bool{true, false} {
				resp := post(t, ts.URL+c.path, c.body(stream, 3), mergeHeaders(c.hdr, faultHeader(tc.kind)))
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := tc.status
				if c.api == apiMessages && want == 503 {
					want = 529 // Anthropic's overloaded status
				}
				if resp.StatusCode != want {
					t.Fatalf("%s %s: status %d, want %d", c.name, tc.kind, resp.StatusCode, want)
				}
				checkErrorShape(t, c.api, want, b, tc.anthropicType)
				if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("%s %s: Retry-After %q, want %q", c.name, tc.kind, got, tc.retryAfter)
				}
			}
		}
	}
}

// wholeReply is what a client reads from any API's non-streamed body.
type wholeReply struct {
	tokens, reasoning, input, output int
	emitNs, queueNs, ttftNs          int64
	padding                          bool
}

func decodeWhole(t *testing.T, api apiKind, b []byte) wholeReply {
	t.Helper()
	var r struct {
		Choices []struct {
			Text    string `json:"text"`
			Message struct {
				Content          string `json:"content"`
				ReasoningContent string `json:"reasoning_content"`
			} `json:"message"`
		} `json:"choices"`
		Content []struct {
			Type, Text, Thinking string
		} `json:"content"`
		Output []struct {
			Type    string `json:"type"`
			Content []struct{ Type, Text string }
		} `json:"output"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			InputTokens      int `json:"input_tokens"`
			OutputTokens     int `json:"output_tokens"`
		} `json:"usage"`
		EmitNs  int64           `json:"llmprobe_emit_ns"`
		QueueNs int64           `json:"llmprobe_queue_ns"`
		TTFTNs  int64           `json:"llmprobe_ttft_ns"`
		Padding json.RawMessage `json:"llmprobe_padding"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %.300s", err, b)
	}
	w := wholeReply{emitNs: r.EmitNs, queueNs: r.QueueNs, ttftNs: r.TTFTNs, padding: r.Padding != nil}
	count := func(s string, reasoning bool) {
		n := len(strings.Fields(s))
		w.tokens += n
		if reasoning {
			w.reasoning += n
		}
	}
	switch api {
	case apiChat, apiCompletions:
		c := r.Choices[0]
		count(c.Text+c.Message.Content, false)
		count(c.Message.ReasoningContent, true)
		w.input, w.output = r.Usage.PromptTokens, r.Usage.CompletionTokens
	case apiMessages:
		for _, c := range r.Content {
			count(c.Text, false)
			count(c.Thinking, true)
		}
		w.input, w.output = r.Usage.InputTokens, r.Usage.OutputTokens
	case apiResponses:
		for _, o := range r.Output {
			for _, c := range o.Content {
				count(c.Text, o.Type == "reasoning")
			}
		}
		w.input, w.output = r.Usage.InputTokens, r.Usage.OutputTokens
	}
	return w
}

func TestNonStreamedAPIs(t *testing.T) {
	cfg := fastConfig()
	cfg.ReasoningTokens = 2
	cfg.Faults.OversizedBytes = 100 << 10
	_, ts := newTestServer(t, cfg)
	for _, c := range apiCases {
		t.Run(c.name, func(t *testing.T) {
			resp := post(t, ts.URL+c.path, c.body(false, 5), c.hdr)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %s", resp.StatusCode, b)
			}
			w := decodeWhole(t, c.api, b)
			wantReasoning := 2
			if c.api == apiCompletions {
				wantReasoning = 0
			}
			if w.tokens != 5 || w.reasoning != wantReasoning || w.input != 3 || w.output != 5 {
				t.Fatalf("%+v: want 5 tokens (%d reasoning), usage 3 in 5 out: %s", w, wantReasoning, b)
			}
			if w.emitNs <= 0 || w.queueNs < 0 || w.ttftNs < int64(cfg.TTFT) || w.padding {
				t.Fatalf("ground truth: %+v", w)
			}

			resp = post(t, ts.URL+c.path, c.body(false, 5), mergeHeaders(c.hdr, faultHeader("oversized")))
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if w := decodeWhole(t, c.api, b); !w.padding || w.tokens != 5 || len(b) < cfg.Faults.OversizedBytes {
				t.Fatalf("oversized: padding %v, %d tokens, %d bytes", w.padding, w.tokens, len(b))
			}

			resp = post(t, ts.URL+c.path, c.body(false, 5), mergeHeaders(c.hdr, faultHeader("truncate")))
			_, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncate: want unexpected EOF, got %v", err)
			}

			resp = post(t, ts.URL+c.path, c.body(false, 5), mergeHeaders(c.hdr, faultHeader("malformed")))
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || json.Valid(b) {
				t.Fatalf("malformed: status %d, err %v, valid %v", resp.StatusCode, err, json.Valid(b))
			}

			resp = post(t, ts.URL+c.path, c.body(false, 5), mergeHeaders(c.hdr, faultHeader("stream_error")))
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 500 {
				t.Fatalf("stream_error: status %d, want 500", resp.StatusCode)
			}
			checkErrorShape(t, c.api, 500, b, "api_error")

			req, _ := http.NewRequest("POST", ts.URL+c.path, strings.NewReader(c.body(false, 5)))
			for k, v := range mergeHeaders(c.hdr, faultHeader("reset")) {
				req.Header.Set(k, v)
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("reset: got status %d, want no response", resp.StatusCode)
			}
		})
	}
}

// TestNewAPIValidation: the errors Anthropic and OpenAI give for the
// requests they refuse, with their statuses and shapes.
func TestNewAPIValidation(t *testing.T) {
	cfg := fastConfig()
	cfg.DefaultOutputTokens = 4
	_, ts := newTestServer(t, cfg)
	msgs := `"messages":[{"role":"user","content":"a"}]`
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
		body       string
		status     int
		errType    string // Anthropic's; empty for OpenAI's shape
		tokens     int
	}{
		{"no anthropic-version", "/v1/messages", nil, `{"model":"llmprobe-sim","max_tokens":2,` + msgs + `}`, 400, "invalid_request_error", 0},
		{"unknown model", "/v1/messages", anthropicHeaders, `{"model":"claude-x","max_tokens":2,` + msgs + `}`, 404, "not_found_error", 0},
		{"no model", "/v1/messages", anthropicHeaders, `{"max_tokens":2,` + msgs + `}`, 400, "invalid_request_error", 0},
		{"no max_tokens", "/v1/messages", anthropicHeaders, `{"model":"llmprobe-sim",` + msgs + `}`, 400, "invalid_request_error", 0},
		{"no messages", "/v1/messages", anthropicHeaders, `{"model":"llmprobe-sim","max_tokens":2,"messages":[]}`, 400, "invalid_request_error", 0},
		{"system role", "/v1/messages", anthropicHeaders, `{"model":"llmprobe-sim","max_tokens":2,"messages":[{"role":"system","content":"a"}]}`, 400, "invalid_request_error", 0},
		{"too long", "/v1/messages", anthropicHeaders, `{"model":"llmprobe-sim","max_tokens":100000000,` + msgs + `}`, 400, "invalid_request_error", 0},
		{"budget not below max", "/v1/messages", anthropicHeaders, `{"model":"llmprobe-sim","max_tokens":4,"thinking":{"type":"enabled","budget_tokens":4},` + msgs + `}`, 400, "invalid_request_error", 0},
		{"bad json", "/v1/messages", anthropicHeaders, `{`, 400, "invalid_request_error", 0},
		{"messages ok", "/v1/messages", anthropicHeaders, `{"model":"llmprobe-sim","max_tokens":3,` + msgs + `}`, 200, "", 3},
		{"responses unknown model", "/v1/responses", nil, `{"model":"gpt-x","input":"a"}`, 404, "", 0},
		{"responses no input", "/v1/responses", nil, `{"model":"llmprobe-sim"}`, 400, "", 0},
		{"responses zero cap", "/v1/responses", nil, `{"input":"a","max_output_tokens":0}`, 400, "", 0},
		{"responses too long", "/v1/responses", nil, `{"input":"a","max_output_tokens":100000000}`, 400, "", 0},
		{"responses default length", "/v1/responses", nil, `{"input":"a"}`, 200, "", 4},
	} {
		resp := post(t, ts.URL+tc.path, tc.body, tc.hdr)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.status, b)
		}
		api := apiResponses
		if tc.path == "/v1/messages" {
			api = apiMessages
		}
		if tc.status != 200 {
			checkErrorShape(t, api, tc.status, b, tc.errType)
			continue
		}
		if w := decodeWhole(t, api, b); w.output != tc.tokens || w.tokens != tc.tokens {
			t.Fatalf("%s: %d tokens (usage %d), want %d", tc.name, w.tokens, w.output, tc.tokens)
		}
	}
}

// TestAnthropicThinkingRequest: thinking follows the configured reasoning,
// capped by budget_tokens, and "disabled" turns it off.
func TestAnthropicThinkingRequest(t *testing.T) {
	cfg := fastConfig()
	cfg.ReasoningTokens = 5
	_, ts := newTestServer(t, cfg)
	for _, tc := range []struct {
		thinking string
		want     int
	}{
		{"", 5},
		{`,"thinking":{"type":"enabled","budget_tokens":3}`, 3},
		{`,"thinking":{"type":"enabled","budget_tokens":7}`, 5},
		{`,"thinking":{"type":"disabled"}`, 0},
	} {
		body := `{"model":"llmprobe-sim","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"a"}]` + tc.thinking + `}`
		evs, err := streamRequest(t, ts.URL+"/v1/messages", body, anthropicHeaders)
		if err != nil {
			t.Fatal(err)
		}
		if sum := summarize(t, apiMessages, evs); sum.reasoning != tc.want || sum.tokens != 8 {
			t.Fatalf("%s: %d thinking tokens of %d, want %d of 8", tc.thinking, sum.reasoning, sum.tokens, tc.want)
		}
	}
}

// TestResponsesStatus: with max_output_tokens the output stops at the cap,
// which OpenAI reports as incomplete; without it, at the model's own end.
func TestResponsesStatus(t *testing.T) {
	cfg := fastConfig()
	cfg.DefaultOutputTokens = 3
	_, ts := newTestServer(t, cfg)
	for _, tc := range []struct {
		cap, want, reason string
	}{
		{`,"max_output_tokens":2`, "response.incomplete", `{"reason":"max_output_tokens"}`},
		{"", "response.completed", "null"},
	} {
		for _, stream := range []bool{true, false} {
			body := fmt.Sprintf(`{"input":"a","stream":%v%s}`, stream, tc.cap)
			var resp struct {
				Status            string          `json:"status"`
				IncompleteDetails json.RawMessage `json:"incomplete_details"`
				Output            []struct {
					Status string `json:"status"`
				} `json:"output"`
			}
			if stream {
				evs, err := streamRequest(t, ts.URL+"/v1/responses", body, nil)
				if err != nil {
					t.Fatal(err)
				}
				last := evs[len(evs)-1]
				if last.name != tc.want {
					t.Fatalf("%s: last event %q, want %q", tc.cap, last.name, tc.want)
				}
				var ev struct{ Response json.RawMessage }
				if err := json.Unmarshal(last.data, &ev); err != nil || json.Unmarshal(ev.Response, &resp) != nil {
					t.Fatalf("%s: %s", tc.cap, last.data)
				}
			} else {
				r := post(t, ts.URL+"/v1/responses", body, nil)
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				if err := json.Unmarshal(b, &resp); err != nil {
					t.Fatal(err)
				}
			}
			status := strings.TrimPrefix(tc.want, "response.")
			if resp.Status != status || string(resp.IncompleteDetails) != tc.reason || len(resp.Output) != 1 || resp.Output[0].Status != status {
				t.Fatalf("%s stream=%v: status %q, details %s, output %+v", tc.cap, stream, resp.Status, resp.IncompleteDetails, resp.Output)
			}
		}
	}
}

// TestMetricsCountEveryAPI: the endpoint's vLLM-named metrics count
// Messages and Responses requests as they count chat ones.
func TestMetricsCountEveryAPI(t *testing.T) {
	_, ts := newTestServer(t, fastConfig())
	for _, c := range apiCases {
		if _, err := streamAPI(t, ts.URL, c, 3, nil); err != nil {
			t.Fatal(err)
		}
		resp := post(t, ts.URL+c.path, c.body(false, 3), c.hdr)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// 4 APIs × (streamed + non-streamed) requests of 3 tokens and 3 prompt
	// words; streamed ones observe 2 ITLs each, non-streamed ones 2 too.
	for _, want := range []string{
		`vllm:time_to_first_token_seconds_count{model_name="llmprobe-sim"} 8`,
		`vllm:request_queue_time_seconds_count{model_name="llmprobe-sim"} 8`,
		`vllm:e2e_request_latency_seconds_count{model_name="llmprobe-sim"} 8`,
		`vllm:inter_token_latency_seconds_count{model_name="llmprobe-sim"} 16`,
		`vllm:generation_tokens_total{model_name="llmprobe-sim"} 24`,
		`vllm:prompt_tokens_total{model_name="llmprobe-sim"} 24`,
		`llmprobe_simulator_emit_lateness_seconds_count{model_name="llmprobe-sim"} 12`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestStreamErrorFaultFromConfig: stream_error is drawn from its YAML
// probability like the others, and being last in the order, configuring it
// leaves every request's draw of the other kinds as it was.
func TestStreamErrorFaultFromConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte("faults: {stream_error: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TTFT, cfg.ITL = ms(1), ms(1)
	_, ts := newTestServer(t, cfg)
	sum, err := streamAPI(t, ts.URL, apiCases[2], 4, nil)
	if err != nil || !sum.failed || sum.ended {
		t.Fatalf("stream_error probability 1: failed %v ended %v err %v", sum.failed, sum.ended, err)
	}

	before := newLatencyModel(&Config{Seed: 5, Faults: Faults{Reset: 0.2, Drip: 0.1}})
	after := newLatencyModel(&Config{Seed: 5, Faults: Faults{Reset: 0.2, Drip: 0.1, StreamError: 0.3}})
	for seq := uint64(1); seq <= 5000; seq++ {
		b, a := before.pickFault(before.rng(seq)), after.pickFault(after.rng(seq))
		if b != faultNone && a != b || b == faultNone && a != faultNone && a != faultStreamError {
			t.Fatalf("request %d: %s without stream_error, %s with it", seq, b, a)
		}
	}
}
