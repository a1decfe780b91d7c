package simulator

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the simulator's output")

// Stamps and clock-derived fields vary; everything else in a reply is fixed
// by the config and the request.
var variable = regexp.MustCompile(`"(llmprobe_emit_ns|llmprobe_queue_ns|llmprobe_ttft_ns|created_at|created)":\d+`)

func normalize(b []byte) []byte { return variable.ReplaceAll(b, []byte(`"$1":0`)) }

// TestGoldenWireFormats compares whole replies, byte for byte, with
// transcripts in testdata/golden. Those were checked field by field and
// event by event against the APIs' documented examples: Anthropic's
// "Streaming Messages" (the basic stream, and the extended-thinking one with
// its signature_delta and second block) and Messages response object;
// OpenAI's Responses streaming events and response object, and vLLM's
// (reasoning item, content parts, logprobs on output_text deltas).
func TestGoldenWireFormats(t *testing.T) {
	for _, tc := range []struct {
		file, path, body string
		hdr              map[string]string
		reasoning        int
	}{
		{"messages_stream.sse", "/v1/messages", `{"model":"llmprobe-sim","max_tokens":3,"stream":true,"messages":[{"role":"user","content":"hello there"}]}`, anthropicHeaders, 1},
		{"messages.json", "/v1/messages", `{"model":"llmprobe-sim","max_tokens":3,"messages":[{"role":"user","content":"hello there"}]}`, anthropicHeaders, 0},
		{"messages_error.json", "/v1/messages", `{"model":"llmprobe-sim","messages":[{"role":"user","content":"hello there"}]}`, anthropicHeaders, 0},
		{"responses_stream.sse", "/v1/responses", `{"model":"llmprobe-sim","input":"hello there","max_output_tokens":3,"stream":true}`, nil, 1},
		{"responses_stream_completed.sse", "/v1/responses", `{"model":"llmprobe-sim","input":"hello there","stream":true}`, nil, 0},
		{"responses.json", "/v1/responses", `{"model":"llmprobe-sim","input":[{"role":"user","content":[{"type":"input_text","text":"hello there"}]}],"max_output_tokens":3}`, nil, 1},
		{"chat_stream.sse", "/v1/chat/completions", `{"model":"llmprobe-sim","messages":[{"role":"user","content":"hello there"}],"max_tokens":2,"stream":true,"stream_options":{"include_usage":true}}`, nil, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cfg := fastConfig()
			cfg.DefaultOutputTokens = 2
			cfg.ReasoningTokens = tc.reasoning
			_, ts := newTestServer(t, cfg)
			resp := post(t, ts.URL+tc.path, tc.body, tc.hdr)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got := normalize(b)
			path := filepath.Join("testdata", "golden", tc.file)
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("reply differs from %s\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}
