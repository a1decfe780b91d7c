package prober

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseChunk(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Chunk
	}{
		{
			name: "vllm role-only first chunk",
			in:   `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
			want: Chunk{Content: []byte{}, Choices: 1},
		},
		{
			name: "content",
			in:   `{"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}`,
			want: Chunk{Content: []byte("Hello"), Choices: 1},
		},
		{
			name: "escapes kept raw",
			in:   `{"choices":[{"delta":{"content":"a\"b\\c\n\u00e9\/"}}]}`,
			want: Chunk{Content: []byte(`a\"b\\c\n\u00e9\/`), Choices: 1},
		},
		{
			name: "reasoning_content",
			in:   `{"choices":[{"delta":{"reasoning_content":"think","content":null}}]}`,
			want: Chunk{Reasoning: []byte("think"), Choices: 1},
		},
		{
			name: "reasoning",
			in:   `{"choices":[{"delta":{"reasoning":"hmm"}}]}`,
			want: Chunk{Reasoning: []byte("hmm"), Choices: 1},
		},
		{
			name: "completions text and finish_reason",
			in:   `{"id":"cmpl","object":"text_completion","choices":[{"index":0,"text":" tok","logprobs":null,"finish_reason":"length","stop_reason":null}]}`,
			want: Chunk{Text: []byte(" tok"), FinishReason: []byte("length"), Choices: 1},
		},
		{
			name: "usage-only final chunk",
			in:   `{"id":"c","choices":[],"usage":{"prompt_tokens":12,"total_tokens":20,"completion_tokens":8,"prompt_tokens_details":null}}`,
			want: Chunk{Choices: 0, HasUsage: true, PromptTokens: 12, CompletionTokens: 8},
		},
		{
			name: "continuous usage per chunk",
			in:   `{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
			want: Chunk{Content: []byte("x"), Choices: 1, HasUsage: true, PromptTokens: 3, CompletionTokens: 4},
		},
		{
			name: "null usage",
			in:   `{"choices":[{"delta":{"content":"x"}}],"usage":null}`,
			want: Chunk{Content: []byte("x"), Choices: 1},
		},
		{
			name: "only choices[0] counts",
			in:   `{"choices":[{"index":0,"delta":{}},{"index":1,"delta":{"content":"other"}}]}`,
			want: Chunk{Choices: 2},
		},
		{
			name: "nested unknown fields skipped",
			in: `{"x":{"a":[1,-2.5e+3,{"b":[[],{}]},true,false,null,"s\"}]"]},"choices":[{"logprobs":{"content":[{"token":"a","logprob":-0.1,"bytes":[97],"top_logprobs":[]}]},` +
				`"delta":{"tool_calls":[{"id":"t","function":{"arguments":"{\"k\":1}"}}],"content":"y"}}],"z":[]}`,
			want: Chunk{Content: []byte("y"), Choices: 1},
		},
		{
			name: "content given as parts is not text",
			in:   `{"choices":[{"delta":{"content":[{"type":"text","text":"a"}]}}]}`,
			want: Chunk{Choices: 1},
		},
		{
			name: "vllm mid-stream error",
			in:   `{"error":{"object":"error","message":"boom","type":"InternalServerError","param":null,"code":500}}`,
			want: Chunk{Choices: -1, Error: true},
		},
		{
			name: "older error object",
			in:   `{"object":"error","message":"boom","code":400}`,
			want: Chunk{Choices: -1, Error: true},
		},
		{
			name: "null error is no error",
			in:   `{"error":null,"choices":[]}`,
			want: Chunk{Choices: 0},
		},
		{
			name: "ground truth",
			in:   ` {"choices":[{"delta":{"content":"t"}}],"llmprobe_emit_ns":1700000000123456789,"llmprobe_ttft_ns":2500000,"llmprobe_queue_ns":0} `,
			want: Chunk{Content: []byte("t"), Choices: 1, HasEmit: true, EmitNs: 1700000000123456789, HasServerTTFT: true, ServerTTFTNs: 2500000, HasServerQueue: true},
		},
		{
			name: "whitespace everywhere",
			in:   "{ \"choices\" :\n[ { \"delta\" : { \"content\" : \"a\" } } ] ,\t\"usage\" : { \"completion_tokens\" : 1 } }",
			want: Chunk{Content: []byte("a"), Choices: 1, HasUsage: true, CompletionTokens: 1},
		},
		{
			name: "escaped key is not matched",
			in:   `{"choices":[{"delta":{"\u0063ontent":"a"}}]}`,
			want: Chunk{Choices: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Chunk
			if err := ParseChunk([]byte(tc.in), &got); err != nil {
				t.Fatalf("error: %v", err)
			}
			if !chunkEqual(&got, &tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if !json.Valid([]byte(tc.in)) {
				t.Fatalf("test input is not valid JSON")
			}
		})
	}
}

func chunkEqual(a, b *Chunk) bool {
	bs := func(x, y []byte) bool { return (x == nil) == (y == nil) && string(x) == string(y) }
	return bs(a.Content, b.Content) && bs(a.Reasoning, b.Reasoning) && bs(a.Text, b.Text) && bs(a.FinishReason, b.FinishReason) &&
		a.Choices == b.Choices && a.HasUsage == b.HasUsage && a.PromptTokens == b.PromptTokens && a.CompletionTokens == b.CompletionTokens &&
		a.Error == b.Error && a.HasEmit == b.HasEmit && a.EmitNs == b.EmitNs && a.HasServerTTFT == b.HasServerTTFT &&
		a.ServerTTFTNs == b.ServerTTFTNs && a.HasServerQueue == b.HasServerQueue && a.ServerQueueNs == b.ServerQueueNs
}

func TestChunkHasText(t *testing.T) {
	for in, want := range map[string]bool{
		`{"choices":[{"delta":{"role":"assistant"}}]}`:                 false,
		`{"choices":[{"delta":{"role":"assistant","content":""}}]}`:    false,
		`{"choices":[{"delta":{"content":null,"reasoning":""}}]}`:      false,
		`{"choices":[],"usage":{"completion_tokens":5}}`:               false,
		`{"choices":[{"delta":{"content":" "}}]}`:                      true,
		`{"choices":[{"delta":{"reasoning_content":"x"}}]}`:            true,
		`{"choices":[{"text":"x"}]}`:                                   true,
		`{"choices":[{"text":""}]}`:                                    false,
		`{"choices":[{"delta":{"content":"\n"}}]}`:                     true,
		`{"choices":[{"delta":{"content":"x"}}],"llmprobe_emit_ns":1}`: true,
	} {
		var c Chunk
		if err := ParseChunk([]byte(in), &c); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if c.HasText() != want {
			t.Errorf("%s: HasText = %v, want %v", in, c.HasText(), want)
		}
	}
}

// Both reasoning names in one delta, as servers that declare both fields and
// dump them all send: the text is in one, null or "" in the other, and the
// order must not matter.
func TestParseChunkBothReasoningNames(t *testing.T) {
	for in, want := range map[string]string{
		`{"choices":[{"delta":{"content":null,"reasoning_content":"think","reasoning":null}}]}`: "think",
		`{"choices":[{"delta":{"content":null,"reasoning":null,"reasoning_content":"think"}}]}`: "think",
		`{"choices":[{"delta":{"reasoning":"think","reasoning_content":""}}]}`:                  "think",
		`{"choices":[{"delta":{"reasoning":"a","reasoning_content":"a"}}]}`:                     "a",
		`{"choices":[{"delta":{"reasoning":"","reasoning_content":null}}]}`:                     "",
	} {
		var c Chunk
		if err := ParseChunk([]byte(in), &c); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(c.Reasoning) != want || c.HasText() != (want != "") {
			t.Errorf("%s: Reasoning %q HasText %v, want %q", in, c.Reasoning, c.HasText(), want)
		}
	}
}

func TestParseChunkRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		``, ` `, `null`, `[]`, `"s"`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{,}`,
		`{"a":"unterminated}`, `{"a":"bad \x escape"}`, `{"a":"\u12g4"}`, `{"a":"\u12"}`, "{\"a\":\"ctl\x01\"}",
		`{"a":tru}`, `{"a":nul}`, `{"a":-}`, `{"a":01}`, `{"a":1.}`, `{"a":1e}`, `{"a":.5}`, `{"a":+1}`,
		`{"a":[1,]}`, `{"a":[1 2]}`, `{"a":{"b":1]}`, `{"a":1}}`, `{"a":1} x`, `{"a":1}{}`, `{'a':1}`,
		`{"choices":[{"delta":{"content":"x"}}]`, `{"choices":[{"delta":{"content":"x"}]}`,
		`{"usage":{"completion_tokens":99999999999999999999}}`,
		`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
	} {
		var c Chunk
		if err := ParseChunk([]byte(in), &c); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseChunkAllocatesNothing(t *testing.T) {
	in := []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":2}}`)
	var c Chunk
	if a := testing.AllocsPerRun(100, func() { _ = ParseChunk(in, &c) }); a != 0 {
		t.Fatalf("%v allocations, want 0", a)
	}
}

func FuzzParseChunk(f *testing.F) {
	for _, s := range []string{
		`{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"content":"a\"b\u00e9"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
		`{"choices":[],"usage":{"completion_tokens":8}}`,
		`{"error":{"message":"x","code":500}}`,
		`{"x":[1,-2.5e+3,{"b":[[],{}]},true,false,null],"choices":[{"text":"t"}],"llmprobe_emit_ns":17}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Chunk
		err := ParseChunk(in, &c)
		var v any
		jerr := json.Unmarshal(in, &v)
		obj, isObj := v.(map[string]any)
		if err == nil && jerr != nil {
			t.Fatalf("accepted what encoding/json rejects (%v): %q", jerr, in)
		}
		if err != nil {
			// Allowed only where encoding/json also rejects, or for inputs
			// outside what a chunk is: not an object, nested too deep,
			// numbers out of range for the fields we read.
			if jerr == nil && isObj && err != errJSONDepth && err != errJSONNumber {
				t.Fatalf("rejected valid JSON object (%v): %q", err, in)
			}
			return
		}
		if !isObj {
			t.Fatalf("accepted a non-object: %q", in)
		}
		// Cross-check extracted strings against encoding/json where the raw
		// form equals the decoded form (no escapes, valid UTF-8).
		if strings.ContainsRune(string(in), '\\') || !utf8.Valid(in) {
			return
		}
		str := func(path ...string) (string, bool) {
			var cur any = obj
			for _, p := range path {
				switch m := cur.(type) {
				case map[string]any:
					cur = m[p]
				case []any:
					if len(m) == 0 {
						return "", false
					}
					cur = m[0]
				default:
					return "", false
				}
			}
			s, ok := cur.(string)
			return s, ok
		}
		check := func(raw []byte, path ...string) {
			want, ok := str(path...)
			if ok != (raw != nil) || want != string(raw) {
				t.Fatalf("%v: got %q (present %v), encoding/json %q (present %v): %q", path, raw, raw != nil, want, ok, in)
			}
		}
		check(c.Content, "choices", "0", "delta", "content")
		check(c.Text, "choices", "0", "text")
		check(c.FinishReason, "choices", "0", "finish_reason")
	})
}
