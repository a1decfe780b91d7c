package prober

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/llmprobe/llmprobe/internal/config"
)

// The fixtures in testdata/streams are byte-exact transcripts of what each
// server llmprobe supports sends, built from the servers' own serializers
// (testdata/streams/README.md names the source and version of each). These
// tests replay them and check that every one yields the same measurement.

// streamCase is one fixture and the figures Client.Do must take from it.
type streamCase struct {
	name  string // testdata/streams/<name>.sse (and <name>.json, if plain)
	api   config.API
	model string // what the target asks for; servers echo it differently

	outcome    Outcome
	textChunks int // events carrying generated text: TTFT at the first, one gap per later one
	output     int32
	counted    int32
	input      int32
	usage      bool
	mismatch   bool

	plain      bool    // a non-streamed <name>.json body exists
	continuous bool    // the target asks for vLLM's continuous_usage_stats
	gapTokens  []int32 // tokens per gap when not all 1
	// lateHeaders: the server sends its response headers only with the
	// first event (Ollama writes them on its first chunk; SGLang awaits the
	// first chunk before answering), so TTFB is not "request accepted".
	lateHeaders bool
	// noDone: the server ends a complete stream without [DONE].
	noDone bool
}

var streamCases = []streamCase{
	{name: "vllm-chat", api: config.APIOpenAIChat, model: "meta-llama/Llama-3.1-8B-Instruct",
		textChunks: 5, output: 5, counted: 5, input: 42, usage: true, plain: true},
	{name: "vllm-completions", api: config.APIOpenAICompletions, model: "meta-llama/Llama-3.1-8B-Instruct",
		textChunks: 5, output: 5, counted: 5, input: 4, usage: true, plain: true},
	// continuous_usage_stats: usage on every chunk, the role chunk too;
	// speculative decoding put 2 tokens in the third text chunk.
	{name: "vllm-chat-continuous", api: config.APIOpenAIChat, model: "meta-llama/Llama-3.1-8B-Instruct", continuous: true,
		textChunks: 4, output: 5, counted: 5, input: 42, usage: true, gapTokens: []int32{1, 2, 1}},
	// A natural stop: the EOS step is a "content":"" chunk with
	// finish_reason "stop", and usage counts the EOS token (see tgi-chat).
	{name: "vllm-chat-eos", api: config.APIOpenAIChat, model: "meta-llama/Llama-3.1-8B-Instruct",
		textChunks: 5, output: 6, counted: 5, input: 42, usage: true},
	{name: "sglang-chat", api: config.APIOpenAIChat, model: "Qwen/Qwen2.5-7B-Instruct", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 30, usage: true, plain: true},
	// Before msgspec: pydantic dumps every field, so deltas are full of nulls.
	{name: "sglang-legacy-chat", api: config.APIOpenAIChat, model: "Qwen/Qwen2.5-7B-Instruct", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 30, usage: true},
	{name: "sglang-completions", api: config.APIOpenAICompletions, model: "Qwen/Qwen2.5-7B-Instruct", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 3, usage: true, plain: true},
	{name: "llamacpp-chat", api: config.APIOpenAIChat, model: "local",
		textChunks: 5, output: 5, counted: 5, input: 24, usage: true, plain: true},
	{name: "llamacpp-completions", api: config.APIOpenAICompletions, model: "local",
		textChunks: 5, output: 5, counted: 5, input: 3, usage: true, plain: true},
	// Before the usage chunk was split out (b6097), usage and timings rode on the finish chunk.
	{name: "llamacpp-legacy-chat", api: config.APIOpenAIChat, model: "local",
		textChunks: 5, output: 5, counted: 5, input: 24, usage: true},
	// TGI stops at EOS (it has no ignore_eos): the EOS token is generated,
	// counted in usage, and sent as a chunk with "content":"" and the
	// finish_reason. Usage says 6, the stream shows 5 texts: a mismatch
	// by one that is the server's accounting, not a lost chunk.
	{name: "tgi-chat", api: config.APIOpenAIChat, model: "tgi",
		textChunks: 5, output: 6, counted: 5, input: 42, usage: true, plain: true},
	{name: "tgi-completions", api: config.APIOpenAICompletions, model: "tgi",
		textChunks: 5, output: 5, counted: 5, input: 4, usage: true, plain: true},
	// TGI <= 2.0.4 writes "data:" without a space, sends no usage and never
	// sends [DONE]: the stream just ends, after a chunk with a finish_reason,
	// so the generation is complete.
	{name: "tgi-legacy-chat", api: config.APIOpenAIChat, model: "tgi", noDone: true,
		textChunks: 5, output: 5, counted: 5},
	{name: "ollama-chat", api: config.APIOpenAIChat, model: "llama3.2:3b", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 31, usage: true, plain: true},
	// Ollama's completions put a zero usage object on every chunk when
	// include_usage is set, then the real one in a choices:[] chunk.
	{name: "ollama-completions", api: config.APIOpenAICompletions, model: "llama3.2:3b", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 27, usage: true, plain: true},
	// Captured, not built: Ollama v0.17.4 (the engine tools/ollama builds)
	// serving the tiny test model. This older writer repeats the role in
	// every delta and ends with a "content":"" chunk carrying finish_reason.
	{name: "ollama-v0.17-chat", api: config.APIOpenAIChat, model: "tiny", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 21, usage: true, plain: true},
	{name: "ollama-v0.17-completions", api: config.APIOpenAICompletions, model: "tiny", lateHeaders: true,
		textChunks: 5, output: 5, counted: 5, input: 12, usage: true, plain: true},
	{name: "openai-chat", api: config.APIOpenAIChat, model: "gpt-4o-mini",
		textChunks: 5, output: 5, counted: 5, input: 12, usage: true, plain: true},
	{name: "openai-completions", api: config.APIOpenAICompletions, model: "gpt-3.5-turbo-instruct",
		textChunks: 5, output: 5, counted: 5, input: 3, usage: true, plain: true},
	// Anthropic's typed events; message_stop ends the stream (no [DONE]).
	{name: "anthropic-messages", api: config.APIAnthropicMessages, model: "claude-sonnet-4-5", noDone: true,
		textChunks: 5, output: 5, counted: 5, input: 14, usage: true, plain: true},
	// Extended thinking: two thinking_deltas (text for TTFT, as reasoning
	// is in the OpenAI APIs), a signature_delta (not text), then the text
	// block; end_turn is a natural stop.
	{name: "anthropic-thinking", api: config.APIAnthropicMessages, model: "claude-sonnet-4-5", noDone: true,
		textChunks: 7, output: 7, counted: 7, input: 14, usage: true},
	// Responses: max_output_tokens reached, so the stream ends with
	// response.incomplete; usage is only in that last event.
	{name: "openai-responses", api: config.APIOpenAIResponses, model: "gpt-4.1-mini", noDone: true,
		textChunks: 5, output: 5, counted: 5, input: 13, usage: true, plain: true},
	// vLLM's /v1/responses with a reasoning parser: reasoning_text deltas
	// first, then output_text; a natural stop whose EOS token usage counts.
	{name: "vllm-responses", api: config.APIOpenAIResponses, model: "Qwen/Qwen3-8B", noDone: true,
		textChunks: 7, output: 8, counted: 7, input: 13, usage: true},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "streams", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitEvents cuts a transcript after each blank line ("\n\n" or
// "\r\n\r\n"), keeping the terminators, so each piece is one event as the
// server wrote it. Bytes after the last blank line form a last piece.
func splitEvents(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i, n := bytes.Index(b, []byte("\n\n")), 2
		if j := bytes.Index(b, []byte("\r\n\r\n")); j >= 0 && (i < 0 || j < i) {
			i, n = j, 4
		}
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+n])
		b = b[i+n:]
	}
	return out
}

// eventPause separates events so that each arrives in its own read and the
// gaps are real; the assertions never depend on its size.
const eventPause = 3 * time.Millisecond

// fixtureServer serves events one by one with a flush and a pause between
// them, or body as one JSON response when events is nil. It checks the
// request path and that stream matches what the client asked.
func fixtureServer(t *testing.T, api config.API, events [][]byte, body []byte, lateHeaders bool) *httptest.Server {
	t.Helper()
	a, err := apiFor(api)
	if err != nil {
		t.Fatal(err)
	}
	wantPath := "/v1" + a.path()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("request body: %v", err)
		}
		if r.URL.Path != wantPath {
			t.Errorf("path %q, want %q", r.URL.Path, wantPath)
		}
		if req.Stream != (events != nil) {
			t.Errorf("request stream=%v, fixture streamed=%v", req.Stream, events != nil)
		}
		if events == nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		f := w.(http.Flusher)
		if !lateHeaders {
			f.Flush()
		}
		for i, ev := range events {
			if i > 0 {
				select {
				case <-time.After(eventPause):
				case <-r.Context().Done():
					return
				}
			}
			_, _ = w.Write(ev)
			f.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func fixtureClient(t *testing.T, url string, c streamCase) *Client {
	t.Helper()
	tg := &config.Target{Name: c.name, URL: url, API: c.api, Model: c.model, HTTPClientConfig: promconfig.DefaultHTTPClientConfig,
		ContinuousUsageStats: c.continuous}
	cl, err := NewClient(tg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func fixtureDo(t *testing.T, cl *Client, stream bool) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := &Result{}
	cl.Do(ctx, Request{Prompt: "Why is the sky blue?", MaxTokens: 5, Stream: stream}, res)
	return res
}

func TestStreamFixtures(t *testing.T) {
	for _, c := range streamCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			events := splitEvents(readFixture(t, c.name+".sse"))
			srv := fixtureServer(t, c.api, events, nil, c.lateHeaders)
			res := fixtureDo(t, fixtureClient(t, srv.URL, c), true)

			if res.Outcome != c.outcome {
				t.Fatalf("outcome %v, want %v (detail %q)", res.Outcome, c.outcome, res.Detail)
			}
			if res.Status != http.StatusOK || !res.Stream {
				t.Errorf("status %d stream %v", res.Status, res.Stream)
			}
			// Ordering, not timing: headers, then the first text, then the end.
			if res.TTFB <= 0 || res.TTFT <= 0 || res.TTFB > res.TTFT || res.TTFT > res.E2E {
				t.Errorf("want 0 < TTFB %v <= TTFT %v <= E2E %v", res.TTFB, res.TTFT, res.E2E)
			}
			if got, want := len(res.Gaps), c.textChunks-1; got != want {
				t.Errorf("%d gaps, want %d (text-bearing chunks - 1)", got, want)
			}
			var sum time.Duration
			for i, g := range res.Gaps {
				want := int32(1)
				if c.gapTokens != nil && i < len(c.gapTokens) {
					want = c.gapTokens[i]
				}
				if g.Gap < 0 || g.Tokens != want {
					t.Errorf("gap %d: %v over %d tokens, want >= 0 over %d", i, g.Gap, g.Tokens, want)
				}
				sum += g.Gap
			}
			if sum > res.E2E-res.TTFT {
				t.Errorf("gaps sum to %v, more than E2E-TTFT %v", sum, res.E2E-res.TTFT)
			}
			if res.OutputTokens != c.output || res.CountedTokens != c.counted || res.InputTokens != c.input {
				t.Errorf("tokens out/counted/in %d/%d/%d, want %d/%d/%d",
					res.OutputTokens, res.CountedTokens, res.InputTokens, c.output, c.counted, c.input)
			}
			if res.UsageReported != c.usage || res.UsageMismatch != c.mismatch {
				t.Errorf("usage reported %v mismatch %v, want %v %v", res.UsageReported, res.UsageMismatch, c.usage, c.mismatch)
			}
			if res.GroundTruth || len(res.EmitLags) != 0 {
				t.Errorf("ground truth from a real server's stream: %v %v", res.GroundTruth, res.EmitLags)
			}
		})
	}
}

func TestPlainFixtures(t *testing.T) {
	for _, c := range streamCases {
		if !c.plain {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			body := readFixture(t, c.name+".json")
			var u struct {
				Usage struct {
					PromptTokens     int32 `json:"prompt_tokens"`
					CompletionTokens int32 `json:"completion_tokens"`
					InputTokens      int32 `json:"input_tokens"`
					OutputTokens     int32 `json:"output_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(body, &u); err != nil {
				t.Fatal(err)
			}
			if c.api == config.APIAnthropicMessages || c.api == config.APIOpenAIResponses {
				u.Usage.PromptTokens, u.Usage.CompletionTokens = u.Usage.InputTokens, u.Usage.OutputTokens
			}
			srv := fixtureServer(t, c.api, nil, body, false)
			res := fixtureDo(t, fixtureClient(t, srv.URL, c), false)
			if res.Outcome != OutcomeSuccess || res.Stream {
				t.Fatalf("outcome %v stream %v, want success, not streamed", res.Outcome, res.Stream)
			}
			if !res.UsageReported || res.InputTokens != c.input || res.OutputTokens != u.Usage.CompletionTokens || u.Usage.PromptTokens != c.input {
				t.Errorf("usage %v in/out %d/%d, want in %d out %d", res.UsageReported, res.InputTokens, res.OutputTokens, c.input, u.Usage.CompletionTokens)
			}
			if res.E2E <= 0 || res.TTFB <= 0 || res.TTFB > res.E2E {
				t.Errorf("want 0 < TTFB %v <= E2E %v", res.TTFB, res.E2E)
			}
			if len(res.Gaps) != 0 {
				t.Errorf("gaps in a non-streamed reply: %v", res.Gaps)
			}
		})
	}
}

// TestStreamFixturesWellFormed keeps the transcripts honest: SSE framing as
// the servers write it, and every chunk read by ParseChunk the way
// encoding/json reads it, so a quirk is never mis-counted as text.
func TestStreamFixturesWellFormed(t *testing.T) {
	for _, c := range streamCases {
		t.Run(c.name, func(t *testing.T) {
			raw := readFixture(t, c.name+".sse")
			if bytes.ContainsRune(raw, '\r') {
				t.Error("no server here sends CR line ends")
			}
			events := splitEvents(raw)
			api, err := apiFor(c.api)
			if err != nil {
				t.Fatal(err)
			}
			typed := c.api == config.APIAnthropicMessages || c.api == config.APIOpenAIResponses
			var done, ends, texts int
			for i, ev := range events {
				// Typed APIs name each event on an event: line, as its
				// JSON's "type" also does; the OpenAI APIs send data only.
				lines := 2
				if typed {
					lines = 3
				}
				if !bytes.HasSuffix(ev, []byte("\n\n")) || bytes.Count(ev, []byte("\n")) != lines {
					t.Fatalf("event %d is not %d lines and a blank line: %q", i, lines-1, ev)
				}
				line := strings.TrimSuffix(string(ev), "\n\n")
				var name string
				if typed {
					var ok bool
					if name, line, ok = strings.Cut(strings.TrimPrefix(line, "event: "), "\n"); !ok {
						t.Fatalf("event %d has no event: line: %q", i, ev)
					}
				}
				data, ok := strings.CutPrefix(line, "data: ")
				if !ok {
					data, ok = strings.CutPrefix(line, "data:")
				}
				if !ok {
					t.Fatalf("event %d has no data field: %q", i, line)
				}
				if data == "[DONE]" {
					done++
					if i != len(events)-1 {
						t.Errorf("[DONE] at event %d of %d", i, len(events))
					}
					continue
				}
				var ch Chunk
				if err := api.parseEvent([]byte(data), &ch); err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				var want refChunk
				switch c.api {
				case config.APIAnthropicMessages:
					want = referenceAnthropicEvent(t, name, data)
				case config.APIOpenAIResponses:
					want = referenceResponsesEvent(t, name, data)
				default:
					want = referenceChunk(t, data)
				}
				if ch.HasText() != want.text || ch.HasUsage != want.usage || ch.Choices != want.choices ||
					ch.PromptTokens != want.prompt || ch.CompletionTokens != want.completion || ch.Error || ch.Done != want.done {
					t.Errorf("event %d: parsed text=%v usage=%v(%d/%d) choices=%d error=%v done=%v; encoding/json text=%v usage=%v(%d/%d) choices=%d done=%v",
						i, ch.HasText(), ch.HasUsage, ch.PromptTokens, ch.CompletionTokens, ch.Choices, ch.Error, ch.Done,
						want.text, want.usage, want.prompt, want.completion, want.choices, want.done)
				}
				if ch.HasText() {
					texts++
				}
				if ch.Done {
					ends++
					if i != len(events)-1 {
						t.Errorf("end event at %d of %d", i, len(events))
					}
				}
			}
			if typed && c.outcome == OutcomeSuccess && ends != 1 {
				t.Errorf("%d end events (message_stop, response.completed/incomplete), want 1", ends)
			}
			// A successful stream ends with [DONE], or (TGI before 2.1)
			// without one after a finish_reason.
			if wantDone := c.outcome == OutcomeSuccess && !c.noDone; (done == 1) != wantDone {
				t.Errorf("%d [DONE] events, fixture expects outcome %v (noDone %v)", done, c.outcome, c.noDone)
			}
			if texts != c.textChunks {
				t.Errorf("%d text-bearing chunks, the table says %d", texts, c.textChunks)
			}
		})
	}
}

type refChunk struct {
	text, usage, done  bool
	choices            int
	prompt, completion int64
}

// referenceChunk reads a chunk with encoding/json by the rules in
// README.md: text is a non-empty string in choices[0].delta.content,
// .reasoning_content, .reasoning, or choices[0].text; usage is a non-null
// object.
func referenceChunk(t *testing.T, data string) refChunk {
	t.Helper()
	var v struct {
		Choices *[]struct {
			Text  any `json:"text"`
			Delta *struct {
				Content          any `json:"content"`
				ReasoningContent any `json:"reasoning_content"`
				Reasoning        any `json:"reasoning"`
			} `json:"delta"`
		} `json:"choices"`
		Usage *struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	nonEmpty := func(x any) bool { s, ok := x.(string); return ok && s != "" }
	r := refChunk{choices: -1}
	if v.Choices != nil {
		r.choices = len(*v.Choices)
		if r.choices > 0 {
			c := (*v.Choices)[0]
			r.text = nonEmpty(c.Text)
			if d := c.Delta; d != nil {
				r.text = r.text || nonEmpty(d.Content) || nonEmpty(d.ReasoningContent) || nonEmpty(d.Reasoning)
			}
		}
	}
	if v.Usage != nil {
		r.usage, r.prompt, r.completion = true, v.Usage.PromptTokens, v.Usage.CompletionTokens
	}
	return r
}

// referenceAnthropicEvent reads an Anthropic event with encoding/json:
// text is a non-empty delta.text or delta.thinking; usage is an output
// token count (message_start's message.usage, message_delta's usage), with
// the input count where the event has one; message_stop ends the stream.
func referenceAnthropicEvent(t *testing.T, name, data string) refChunk {
	t.Helper()
	type usage struct {
		InputTokens  *int64 `json:"input_tokens"`
		OutputTokens *int64 `json:"output_tokens"`
	}
	var v struct {
		Type  string `json:"type"`
		Delta *struct {
			Text     string `json:"text"`
			Thinking string `json:"thinking"`
		} `json:"delta"`
		Message *struct {
			Usage *usage `json:"usage"`
		} `json:"message"`
		Usage *usage `json:"usage"`
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if v.Type != name {
		t.Errorf("event: %s carries type %q", name, v.Type)
	}
	r := refChunk{choices: -1, done: v.Type == "message_stop"}
	r.text = v.Delta != nil && (v.Delta.Text != "" || v.Delta.Thinking != "")
	u := v.Usage
	if v.Message != nil && v.Message.Usage != nil {
		u = v.Message.Usage
	}
	if u != nil {
		if u.OutputTokens != nil {
			r.usage, r.completion = true, *u.OutputTokens
		}
		if u.InputTokens != nil {
			r.prompt = *u.InputTokens
		}
	}
	return r
}

// referenceResponsesEvent reads a Responses event with encoding/json: text
// is the delta of response.output_text.delta or response.reasoning_text.delta;
// usage is the response's, when not null; response.completed and
// response.incomplete end the stream.
func referenceResponsesEvent(t *testing.T, name, data string) refChunk {
	t.Helper()
	var v struct {
		Type     string `json:"type"`
		Delta    any    `json:"delta"`
		Response *struct {
			Usage *struct {
				InputTokens  int64 `json:"input_tokens"`
				OutputTokens int64 `json:"output_tokens"`
			} `json:"usage"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if v.Type != name {
		t.Errorf("event: %s carries type %q", name, v.Type)
	}
	r := refChunk{choices: -1, done: v.Type == "response.completed" || v.Type == "response.incomplete"}
	if d, ok := v.Delta.(string); ok && d != "" {
		r.text = v.Type == "response.output_text.delta" || v.Type == "response.reasoning_text.delta"
	}
	if v.Response != nil && v.Response.Usage != nil {
		r.usage, r.prompt, r.completion = true, v.Response.Usage.InputTokens, v.Response.Usage.OutputTokens
	}
	return r
}

// The fixtures end where the servers end: nothing after the last event.
func TestStreamFixturesEndClean(t *testing.T) {
	for _, c := range streamCases {
		raw := readFixture(t, c.name+".sse")
		events := splitEvents(raw)
		if last := events[len(events)-1]; !bytes.HasSuffix(last, []byte("\n\n")) {
			t.Errorf("%s: trailing bytes after the last event: %q", c.name, last)
		}
		if !bytes.Equal(bytes.Join(events, nil), raw) {
			t.Errorf("%s: splitting into events lost bytes", c.name)
		}
	}
}
