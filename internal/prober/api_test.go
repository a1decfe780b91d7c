package prober

import (
	"context"
	"encoding/json"
	"io"
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

// Every API config validation accepts has a wire protocol here, and every
// wire protocol here is an API config knows.
func TestEveryConfigAPIHasAWireAPI(t *testing.T) {
	for _, name := range config.APIs {
		if _, err := apiFor(name); err != nil {
			t.Errorf("config.APIs names %q, which no api_*.go registers", name)
		}
	}
	if len(wireAPIs) != len(config.APIs) {
		t.Errorf("%d wire APIs registered, config.APIs lists %d", len(wireAPIs), len(config.APIs))
	}
}

// TestRequestPerAPI checks each API's path, headers and body as the server
// receives them.
func TestRequestPerAPI(t *testing.T) {
	type want struct {
		path   string
		prompt func(body map[string]any) any // where the prompt sits
		cap    string                        // the token cap's field
	}
	wants := map[config.API]want{
		config.APIOpenAIChat: {"/v1/chat/completions", func(b map[string]any) any {
			return b["messages"].([]any)[0].(map[string]any)["content"]
		}, "max_tokens"},
		config.APIOpenAICompletions: {"/v1/completions", func(b map[string]any) any { return b["prompt"] }, "max_tokens"},
		config.APIOpenAIResponses:   {"/v1/responses", func(b map[string]any) any { return b["input"] }, "max_output_tokens"},
		config.APIAnthropicMessages: {"/v1/messages", func(b map[string]any) any {
			return b["messages"].([]any)[0].(map[string]any)["content"]
		}, "max_tokens"},
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("sk-ant-secret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, api := range config.APIs {
		for _, stream := range []bool{true, false} {
			t.Run(string(api)+map[bool]string{true: "/stream", false: "/plain"}[stream], func(t *testing.T) {
				w := wants[api]
				var got struct {
					path string
					hdr  http.Header
					body map[string]any
				}
				srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					got.path, got.hdr = r.URL.Path, r.Header.Clone()
					if err := json.NewDecoder(r.Body).Decode(&got.body); err != nil {
						t.Errorf("request body: %v", err)
					}
					rw.WriteHeader(http.StatusTeapot)
				}))
				defer srv.Close()
				c := newTestClient(t, srv.URL, api, func(tg *config.Target) {
					tg.Body = map[string]interface{}{"temperature": 0.5}
					tg.HTTPClientConfig.Authorization = &promconfig.Authorization{Type: "Bearer", CredentialsFile: keyFile}
				})
				res := &Result{}
				c.Do(context.Background(), Request{Prompt: "why?", MaxTokens: 7, Stream: stream}, res)
				if res.Status != http.StatusTeapot {
					t.Fatalf("status %d (outcome %v, %s)", res.Status, res.Outcome, res.Detail)
				}
				if got.path != w.path {
					t.Errorf("path %q, want %q", got.path, w.path)
				}
				if p := w.prompt(got.body); p != "why?" {
					t.Errorf("prompt at the wrong place: %v in %v", p, got.body)
				}
				if got.body[w.cap] != 7.0 || got.body["model"] != "m" || got.body["temperature"] != 0.5 {
					t.Errorf("body %v: want %s 7, model m, temperature 0.5", got.body, w.cap)
				}
				if s, _ := got.body["stream"].(bool); s != stream {
					t.Errorf("stream %v in %v", got.body["stream"], got.body)
				}
				_, opts := got.body["stream_options"]
				isOpenAI := api == config.APIOpenAIChat || api == config.APIOpenAICompletions
				if opts != (stream && isOpenAI) {
					t.Errorf("stream_options in the body: %v, want only for a streamed OpenAI request", opts)
				}
				if api == config.APIOpenAIResponses && got.body["store"] != false {
					t.Errorf("responses body %v: want store false", got.body)
				}
				if api == config.APIAnthropicMessages {
					if got.hdr.Get("anthropic-version") != anthropicVersion || got.hdr.Get("x-api-key") != "sk-ant-secret-key" || got.hdr.Get("Authorization") != "" {
						t.Errorf("anthropic headers: version %q x-api-key %q Authorization %q",
							got.hdr.Get("anthropic-version"), got.hdr.Get("x-api-key"), got.hdr.Get("Authorization"))
					}
				} else if got.hdr.Get("Authorization") != "Bearer sk-ant-secret-key" || got.hdr.Get("x-api-key") != "" {
					t.Errorf("%s: Authorization %q x-api-key %q", api, got.hdr.Get("Authorization"), got.hdr.Get("x-api-key"))
				}
				wantAccept := "application/json"
				if stream {
					wantAccept = "text/event-stream"
				}
				if got.hdr.Get("Accept") != wantAccept {
					t.Errorf("Accept %q, want %q", got.hdr.Get("Accept"), wantAccept)
				}
			})
		}
	}
}

// Anthropic requires max_tokens: a request without a cap gets the default;
// a target's own anthropic-version header wins over llmprobe's.
func TestAnthropicDefaults(t *testing.T) {
	var body map[string]any
	var version string
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		version = r.Header.Get("anthropic-version")
		_ = json.NewDecoder(r.Body).Decode(&body)
		rw.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, config.APIAnthropicMessages, func(tg *config.Target) {
		tg.Headers = map[string]string{"anthropic-version": "2024-01-01"}
	})
	c.Do(context.Background(), Request{Prompt: "p", Stream: true}, &Result{})
	if body["max_tokens"] != float64(anthropicDefaultMaxTokens) || version != "2024-01-01" {
		t.Errorf("max_tokens %v, version %q", body["max_tokens"], version)
	}
}

// Each API's way of failing mid-stream or in a reply is a protocol_error with
// the server's message as the detail; each API's end event is a success.
func TestAPIEndsAndErrors(t *testing.T) {
	type tc struct {
		api     config.API
		events  []string // data of each event, typed APIs with their event: line
		plain   string   // a non-streamed body instead
		outcome Outcome
		detail  string
		output  int32
	}
	anthropicStart := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}"
	anthropicText := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}"
	responsesText := "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}"
	cases := map[string]tc{
		"anthropic overloaded mid-stream": {api: config.APIAnthropicMessages, events: []string{anthropicStart, anthropicText,
			"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}"},
			outcome: OutcomeProtocolError, detail: "Overloaded"},
		"anthropic ends without message_stop": {api: config.APIAnthropicMessages, events: []string{anthropicStart, anthropicText},
			outcome: OutcomeTruncated},
		"anthropic complete": {api: config.APIAnthropicMessages, events: []string{anthropicStart, anthropicText,
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}",
			"event: message_stop\ndata: {\"type\":\"message_stop\"}"},
			outcome: OutcomeSuccess, output: 2},
		"anthropic error reply": {api: config.APIAnthropicMessages,
			plain:   `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`,
			outcome: OutcomeProtocolError, detail: "Internal server error"},
		"responses failed": {api: config.APIOpenAIResponses, events: []string{responsesText,
			"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"The model crashed\"}}}"},
			outcome: OutcomeProtocolError, detail: "The model crashed"},
		"responses error event": {api: config.APIOpenAIResponses, events: []string{responsesText,
			"event: error\ndata: {\"type\":\"error\",\"code\":\"ERR_SOMETHING\",\"message\":\"Something went wrong\",\"param\":null,\"sequence_number\":1}"},
			outcome: OutcomeProtocolError, detail: "Something went wrong"},
		"responses ends without completed": {api: config.APIOpenAIResponses, events: []string{responsesText},
			outcome: OutcomeTruncated},
		"responses failed reply": {api: config.APIOpenAIResponses,
			plain:   `{"object":"response","status":"failed","error":{"code":"server_error","message":"The model crashed"},"usage":null}`,
			outcome: OutcomeProtocolError, detail: "The model crashed"},
		"responses reply": {api: config.APIOpenAIResponses,
			plain:   `{"object":"response","status":"completed","error":null,"usage":{"input_tokens":3,"output_tokens":4}}`,
			outcome: OutcomeSuccess, output: 4},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				if c.events == nil {
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, c.plain)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				for _, ev := range c.events {
					_, _ = io.WriteString(w, ev+"\n\n")
					w.(http.Flusher).Flush()
				}
			}))
			defer srv.Close()
			cl := newTestClient(t, srv.URL, c.api, nil)
			res := do(t, cl, Request{Prompt: "p", Stream: c.events != nil}, 10*time.Second)
			if res.Outcome != c.outcome || !strings.Contains(res.Detail, c.detail) {
				t.Errorf("outcome %v detail %q, want %v with %q", res.Outcome, res.Detail, c.outcome, c.detail)
			}
			if c.outcome == OutcomeSuccess && res.OutputTokens != c.output {
				t.Errorf("output tokens %d, want %d", res.OutputTokens, c.output)
			}
			if c.events != nil && res.TTFT <= 0 {
				t.Errorf("TTFT %v: the text event came first", res.TTFT)
			}
		})
	}
}
