package simulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestChatStreamFormat(t *testing.T) {
	for _, tc := range []struct {
		name                string
		perEvent, reasoning int
		extra               string
		wantUsage           bool
		maxTokens           int
	}{
		{name: "plain", perEvent: 1, maxTokens: 5},
		{name: "usage", perEvent: 1, maxTokens: 5, extra: `,"stream_options":{"include_usage":true}`, wantUsage: true},
		{name: "k tokens per event", perEvent: 3, maxTokens: 10, extra: `,"stream_options":{"include_usage":true}`, wantUsage: true},
		{name: "reasoning", perEvent: 2, reasoning: 3, maxTokens: 7, extra: `,"stream_options":{"include_usage":true}`, wantUsage: true},
		{name: "one token", perEvent: 1, maxTokens: 1, extra: `,"stream_options":{"include_usage":true}`, wantUsage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.TokensPerEvent, cfg.ReasoningTokens = tc.perEvent, tc.reasoning
			_, ts := newTestServer(t, cfg)
			evs, err := streamRequest(t, ts.URL+"/v1/chat/completions", chatBody(tc.maxTokens, tc.extra), nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := checkStream(t, evs, apiChat, tc.wantUsage)
			if sum.tokens != tc.maxTokens {
				t.Fatalf("got %d tokens, want %d", sum.tokens, tc.maxTokens)
			}
			if sum.reasoning != min(tc.reasoning, tc.maxTokens) {
				t.Fatalf("got %d reasoning tokens, want %d", sum.reasoning, tc.reasoning)
			}
			if sum.usage != nil && sum.usage.PromptTokens != 3 {
				t.Fatalf("prompt_tokens %d, want 3 (words)", sum.usage.PromptTokens)
			}
			// First text event carries one token (prefill), later ones up
			// to k, never straddling the reasoning/content boundary.
			for i, ci := range sum.textEvents {
				ch := sum.chunks[ci].Choices[0].Delta
				text := ""
				if ch.Content != nil {
					text = *ch.Content
				}
				if ch.ReasoningContent != nil {
					text = *ch.ReasoningContent
				}
				n := len(strings.Fields(text))
				if (i == 0 && n != 1) || n > tc.perEvent {
					t.Fatalf("text event %d carries %d tokens (k=%d)", i, n, tc.perEvent)
				}
			}
			if sum.ttftNs < int64(cfg.TTFT) {
				t.Fatalf("server TTFT %dns below the configured %v", sum.ttftNs, cfg.TTFT)
			}
		})
	}
}

func TestCompletionsStreamFormat(t *testing.T) {
	cfg := fastConfig()
	cfg.ReasoningTokens = 2 // chat only: completions carry plain text
	_, ts := newTestServer(t, cfg)
	body := `{"model":"llmprobe-sim","prompt":"a b c d","stream":true,"max_tokens":6,"stream_options":{"include_usage":true}}`
	evs, err := streamRequest(t, ts.URL+"/v1/completions", body, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := checkStream(t, evs, apiCompletions, true)
	if sum.tokens != 6 || sum.usage.PromptTokens != 4 || sum.reasoning != 0 {
		t.Fatalf("tokens %d, prompt %d, reasoning %d", sum.tokens, sum.usage.PromptTokens, sum.reasoning)
	}
	if len(sum.textEvents) != 6 || sum.textEvents[0] != 0 {
		t.Fatalf("completions streams have no role chunk and one token per event: %v", sum.textEvents)
	}
}

func TestNonStreamed(t *testing.T) {
	cfg := fastConfig()
	cfg.ReasoningTokens = 2
	_, ts := newTestServer(t, cfg)
	for _, tc := range []struct {
		path, body, object string
	}{
		{"/v1/chat/completions", `{"model":"llmprobe-sim","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"x y z"},{"type":"image_url","image_url":{"url":"u"}}]}],"max_completion_tokens":5}`, "chat.completion"},
		{"/v1/completions", `{"model":"llmprobe-sim","prompt":["a b c d e"],"max_tokens":5}`, "text_completion"},
	} {
		resp := post(t, ts.URL+tc.path, tc.body, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: status %d %s", tc.path, resp.StatusCode, b)
		}
		var r struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Created int64  `json:"created"`
			Model   string `json:"model"`
			Choices []struct {
				Index   int `json:"index"`
				Message *struct {
					Role             string  `json:"role"`
					Content          string  `json:"content"`
					ReasoningContent *string `json:"reasoning_content"`
				} `json:"message"`
				Text         *string         `json:"text"`
				Logprobs     json.RawMessage `json:"logprobs"`
				FinishReason string          `json:"finish_reason"`
				StopReason   json.RawMessage `json:"stop_reason"`
			} `json:"choices"`
			Usage   usage `json:"usage"`
			EmitNs  int64 `json:"llmprobe_emit_ns"`
			QueueNs int64 `json:"llmprobe_queue_ns"`
			TTFTNs  int64 `json:"llmprobe_ttft_ns"`
		}
		if err := decodeStrict(b, &r); err != nil {
			t.Fatalf("%s: %v: %s", tc.path, err, b)
		}
		if r.Object != tc.object || len(r.Choices) != 1 || r.Choices[0].FinishReason != "length" || r.Usage.CompletionTokens != 5 {
			t.Fatalf("%s: unexpected response %s", tc.path, b)
		}
		if r.EmitNs <= 0 || r.QueueNs < 0 || r.TTFTNs < int64(cfg.TTFT) {
			t.Fatalf("%s: ground truth missing: %s", tc.path, b)
		}
		words := 0
		if m := r.Choices[0].Message; m != nil {
			words = len(strings.Fields(m.Content))
			if m.ReasoningContent == nil || len(strings.Fields(*m.ReasoningContent)) != 2 || m.Role != "assistant" {
				t.Fatalf("chat message: %s", b)
			}
			words += 2
			if r.Usage.PromptTokens != 5 { // "be brief" + "x y z"; image parts count nothing
				t.Fatalf("prompt_tokens %d, want 5", r.Usage.PromptTokens)
			}
		} else {
			words = len(strings.Fields(*r.Choices[0].Text))
		}
		if words != 5 {
			t.Fatalf("%s: %d words of output, want 5", tc.path, words)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	cfg := fastConfig()
	cfg.DefaultOutputTokens = 4
	_, ts := newTestServer(t, cfg)
	for _, tc := range []struct {
		name, path, body string
		status, tokens   int
	}{
		{"bad json", "/v1/chat/completions", `{`, 400, 0},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-x","messages":[{"role":"user","content":"a"}]}`, 404, 0},
		{"no messages", "/v1/chat/completions", `{"model":"llmprobe-sim","messages":[]}`, 400, 0},
		{"no prompt", "/v1/completions", `{"model":"llmprobe-sim"}`, 400, 0},
		{"zero max_tokens", "/v1/completions", `{"prompt":"a","max_tokens":0}`, 400, 0},
		{"min above max", "/v1/completions", `{"prompt":"a","max_tokens":2,"min_tokens":3}`, 400, 0},
		{"too long", "/v1/completions", `{"prompt":"a","max_tokens":100000000}`, 400, 0},
		{"stream_options without stream", "/v1/completions", `{"prompt":"a","stream_options":{"include_usage":true}}`, 400, 0},
		{"n=2", "/v1/completions", `{"prompt":"a","n":2}`, 400, 0},
		{"default length", "/v1/completions", `{"prompt":"a"}`, 200, 4},
		{"min_tokens raises default", "/v1/completions", `{"prompt":"a","min_tokens":6,"ignore_eos":true}`, 200, 6},
		{"max_completion_tokens wins", "/v1/chat/completions", `{"messages":[{"role":"user","content":"a"}],"max_tokens":2,"max_completion_tokens":3}`, 200, 3},
		{"token id prompt", "/v1/completions", `{"prompt":[1,2,3],"max_tokens":1}`, 200, 1},
	} {
		resp := post(t, ts.URL+tc.path, tc.body, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.status, b)
		}
		var r struct {
			Usage usage
			Error *struct {
				Message string
				Type    string
				Code    int
			}
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.status != 200 {
			if r.Error == nil || r.Error.Code != tc.status || r.Error.Message == "" {
				t.Fatalf("%s: want an OpenAI error object, got %s", tc.name, b)
			}
			continue
		}
		if r.Usage.CompletionTokens != tc.tokens {
			t.Fatalf("%s: %d tokens, want %d", tc.name, r.Usage.CompletionTokens, tc.tokens)
		}
	}
	resp, err := http.Get(ts.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET on a POST route: %d", resp.StatusCode)
	}
}

func TestModelsAndMetricsEndpoints(t *testing.T) {
	_, ts := newTestServer(t, fastConfig())
	resp, err := http.Get(ts.URL + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	var models struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	err = json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	if err != nil || models.Object != "list" || len(models.Data) != 1 || models.Data[0].ID != "llmprobe-sim" || models.Data[0].Object != "model" {
		t.Fatalf("models: %+v %v", models, err)
	}

	if _, err := streamRequest(t, ts.URL+"/v1/chat/completions", chatBody(3, ""), nil); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`vllm:time_to_first_token_seconds_count{model_name="llmprobe-sim"} 1`,
		`vllm:request_queue_time_seconds_count{model_name="llmprobe-sim"} 1`,
		`vllm:inter_token_latency_seconds_count{model_name="llmprobe-sim"} 2`,
		`vllm:e2e_request_latency_seconds_count{model_name="llmprobe-sim"} 1`,
		`vllm:num_requests_running{model_name="llmprobe-sim"} 0`,
		`vllm:num_requests_waiting{model_name="llmprobe-sim"} 0`,
		`vllm:generation_tokens_total{model_name="llmprobe-sim"} 3`,
		`vllm:prompt_tokens_total{model_name="llmprobe-sim"} 3`,
		`llmprobe_simulator_emit_lateness_seconds_count{model_name="llmprobe-sim"} 3`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "go_goroutines") {
		t.Errorf("metrics must come from the simulator's own registry, not the global one")
	}
}

// With vLLM's stream_options.continuous_usage_stats every chunk carries the
// cumulative usage, so a client knows how many tokens each chunk brought.
func TestContinuousUsageStats(t *testing.T) {
	cfg := fastConfig()
	cfg.TokensPerEvent = 3
	_, ts := newTestServer(t, cfg)
	evs, err := streamRequest(t, ts.URL+"/v1/chat/completions",
		chatBody(10, `,"stream_options":{"include_usage":true,"continuous_usage_stats":true}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	var completions []int
	for _, ev := range evs {
		if string(ev.data) == "[DONE]" {
			continue
		}
		var c struct {
			Usage *struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(ev.data, &c); err != nil {
			t.Fatal(err)
		}
		if c.Usage == nil {
			t.Fatalf("a chunk without usage: %s", ev.data)
		}
		if c.Usage.PromptTokens != 3 {
			t.Errorf("prompt_tokens %d, want 3", c.Usage.PromptTokens)
		}
		completions = append(completions, c.Usage.CompletionTokens)
	}
	// Role chunk (0), first token (1), then 3 per event, then the final
	// usage chunk repeating the total.
	want := []int{0, 1, 4, 7, 10, 10}
	if fmt.Sprint(completions) != fmt.Sprint(want) {
		t.Errorf("cumulative completion tokens %v, want %v", completions, want)
	}
}
