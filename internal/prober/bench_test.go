package prober

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llmprobe/llmprobe/internal/config"
)

// vllmStream is a realistic vLLM chat stream: a role chunk, n content
// chunks (one token each), a usage chunk and [DONE].
func vllmStream(n int) []byte {
	var b bytes.Buffer
	const head = `data: {"id":"chatcmpl-b6d6a1c0e1a94a8c9f1d2e3f4a5b6c7d","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":`
	b.WriteString(head + `{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	for i := range n {
		fmt.Fprintf(&b, head+`{"content":" tok%d"},"logprobs":null,"finish_reason":null}]}`+"\n\n", i)
	}
	fmt.Fprintf(&b, `data: {"id":"chatcmpl-b6d6a1c0e1a94a8c9f1d2e3f4a5b6c7d","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[],"usage":{"prompt_tokens":128,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 128+n, n)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// chunkedReader hands out at most n bytes per Read, like a socket delivering
// a few events per segment.
type chunkedReader struct {
	r *bytes.Reader
	n int
}

func (c *chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// BenchmarkSSEReader: one op is one event (ns/event, allocs/event), read
// 1500 bytes (one Ethernet MTU) at a time.
func BenchmarkSSEReader(b *testing.B) {
	stream := vllmStream(256)
	br := bytes.NewReader(stream)
	cr := &chunkedReader{r: br, n: 1500}
	s := NewSSEReader(cr, 0)
	b.SetBytes(int64(len(stream) / 259))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Next(); err != nil {
			br.Reset(stream)
			s.Reset(cr)
			i--
		}
	}
}

func BenchmarkParseChunk(b *testing.B) {
	in := []byte(`{"id":"chatcmpl-b6d6a1c0e1a94a8c9f1d2e3f4a5b6c7d","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}]}`)
	var c Chunk
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseChunk(in, &c); err != nil || !c.HasText() {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientDo: one streamed request of 64 tokens against a loopback
// server that writes the whole stream at once; allocs/op is what the client
// side (net/http included) costs per request. traceparent=off is the
// request as it was before trace context; sampled adds the per-request
// traceparent header (a header map of its own: its cost is per request, not
// per token).
func BenchmarkClientDo(b *testing.B) {
	stream := vllmStream(64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(stream)
	}))
	defer srv.Close()
	for _, mode := range []config.Traceparent{config.TraceOff, config.TraceSampled} {
		b.Run("traceparent="+string(mode), func(b *testing.B) {
			c := newTestClient(b, srv.URL, "", func(t *config.Target) { t.Traceparent = mode })
			res := &Result{}
			req := Request{Prompt: "The quick brown fox jumps over the lazy dog. Tell me a story about it.", MaxTokens: 64, Stream: true}
			b.ReportAllocs()
			for b.Loop() {
				c.Do(context.Background(), req, res)
				if res.Outcome != OutcomeSuccess || res.CountedTokens != 64 {
					b.Fatalf("outcome %v tokens %d", res.Outcome, res.CountedTokens)
				}
			}
		})
	}
}

// textEvents is one text-bearing event's data per API, as its servers send it.
var textEvents = map[string][]byte{
	"openai-chat":        []byte(`{"id":"chatcmpl-b6d6a1c0e1a94a8c9f1d2e3f4a5b6c7d","object":"chat.completion.chunk","created":1718000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}]}`),
	"anthropic-messages": []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}`),
	"openai-responses":   []byte(`{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","output_index":0,"content_index":0,"delta":" world","logprobs":[],"obfuscation":"kD9x"}`),
}

// BenchmarkParseEvent: each API's parser on one text event.
func BenchmarkParseEvent(b *testing.B) {
	for name, in := range textEvents {
		a, err := apiFor(config.API(name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			var c Chunk
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := a.parseEvent(in, &c); err != nil || !c.HasText() {
					b.Fatal(err)
				}
			}
		})
	}
}

// Parsing an event runs once per token: it must not allocate, in any API.
func TestParseEventAllocatesNothing(t *testing.T) {
	for name, in := range textEvents {
		a, err := apiFor(config.API(name))
		if err != nil {
			t.Fatal(err)
		}
		var c Chunk
		if n := testing.AllocsPerRun(100, func() { _ = a.parseEvent(in, &c) }); n != 0 {
			t.Errorf("%s: %v allocations per event", name, n)
		}
	}
}
