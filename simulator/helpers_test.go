package simulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func ms(n float64) model.Duration { return model.Duration(n * float64(time.Millisecond)) }

// fastConfig is a quick engine for functional tests.
func fastConfig() Config {
	c := DefaultConfig()
	c.TTFT = ms(5)
	c.ITL = ms(1)
	c.DefaultOutputTokens = 8
	c.Faults.StallDuration = ms(300)
	c.Faults.DripInterval = model.Duration(20 * time.Microsecond)
	c.Faults.OversizedBytes = 2 << 20
	return c
}

func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); ts.Close() })
	return s, ts
}

func post(t testing.TB, url, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// sseEvent is one `data:` payload, its `event:` name if it had one, and
// when the client read it.
type sseEvent struct {
	name string
	data []byte
	recv time.Time
}

// readSSE reads a text/event-stream body the way the official OpenAI and
// Anthropic clients do: lines, an optional `event: ` name and a `data: `
// payload, ended by a blank line. It returns the events read and the error
// that ended the body (nil at a clean EOF).
func readSSE(body io.Reader) ([]sseEvent, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	var evs []sseEvent
	var cur []byte
	var name string
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			if len(line) > 0 || cur != nil {
				return evs, fmt.Errorf("partial event at end of stream: %w", io.ErrUnexpectedEOF)
			}
			if err == io.EOF {
				return evs, nil
			}
			return evs, err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if cur != nil {
				evs = append(evs, sseEvent{name: name, data: cur, recv: time.Now()})
				cur, name = nil, ""
			} else if name != "" {
				return evs, fmt.Errorf("event %q without data", name)
			}
		case bytes.HasPrefix(line, []byte("event: ")):
			if name != "" || cur != nil {
				return evs, fmt.Errorf("event line %.80q out of place", line)
			}
			name = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			if cur != nil {
				return evs, fmt.Errorf("two data lines in one event")
			}
			cur = append([]byte{}, line[len("data: "):]...)
		default:
			return evs, fmt.Errorf("unexpected SSE line %.80q", line)
		}
	}
}

// chunk is a streamed chunk as a strict client decodes it.
type chunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []chunkChoice   `json:"choices"`
	Usage   *usage          `json:"usage"`
	EmitNs  int64           `json:"llmprobe_emit_ns"`
	QueueNs *int64          `json:"llmprobe_queue_ns"`
	TTFTNs  *int64          `json:"llmprobe_ttft_ns"`
	Padding json.RawMessage `json:"llmprobe_padding"`
}

type chunkChoice struct {
	Index int `json:"index"`
	Delta *struct {
		Role             *string `json:"role"`
		Content          *string `json:"content"`
		ReasoningContent *string `json:"reasoning_content"`
	} `json:"delta"`
	Text         *string         `json:"text"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
	StopReason   json.RawMessage `json:"stop_reason"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// decodeStrict decodes one chunk, refusing unknown fields at every level:
// a field the simulator adds by mistake fails the test.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after JSON object")
	}
	return nil
}

// streamSummary is what checkStream learned from a conforming stream.
type streamSummary struct {
	chunks      []chunk
	events      []sseEvent // the JSON events, [DONE] excluded
	textEvents  []int      // indexes into chunks of text-bearing chunks
	tokens      int        // words of generated text (content + reasoning)
	reasoning   int        // words of reasoning text
	usage       *usage
	queueNs     int64
	ttftNs      int64
	finishCount int
}

// checkStream asserts the OpenAI streaming format, as vLLM emits it, on a
// complete stream, and summarises it.
func checkStream(t *testing.T, evs []sseEvent, api apiKind, wantUsage bool) streamSummary {
	t.Helper()
	var sum streamSummary
	if len(evs) == 0 || string(evs[len(evs)-1].data) != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]")
	}
	wantObject := "chat.completion.chunk"
	if api == apiCompletions {
		wantObject = "text_completion"
	}
	sum.queueNs, sum.ttftNs = -1, -1
	contentStarted := false
	for i, ev := range evs {
		if ev.name != "" {
			t.Fatalf("event %d: OpenAI streams name no events, got %q", i, ev.name)
		}
	}
	for i, ev := range evs[:len(evs)-1] {
		var c chunk
		if err := decodeStrict(ev.data, &c); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, ev.data)
		}
		if c.Object != wantObject || c.Model != "llmprobe-sim" || c.Created == 0 || c.ID == "" {
			t.Fatalf("event %d: bad header fields: %s", i, ev.data)
		}
		if i > 0 && c.ID != sum.chunks[0].ID {
			t.Fatalf("event %d: id %q differs from %q", i, c.ID, sum.chunks[0].ID)
		}
		if c.EmitNs <= 0 {
			t.Fatalf("event %d: no llmprobe_emit_ns: %s", i, ev.data)
		}
		if sum.usage != nil {
			t.Fatalf("event %d after the usage chunk", i)
		}
		if c.QueueNs != nil {
			sum.queueNs, sum.ttftNs = *c.QueueNs, *c.TTFTNs
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || !bytes.Contains(ev.data, []byte(`"choices":[]`)) {
				t.Fatalf("usage chunk must have empty choices: %s", ev.data)
			}
			sum.usage = c.Usage
			sum.chunks, sum.events = append(sum.chunks, c), append(sum.events, ev)
			continue
		}
		if len(c.Choices) != 1 || c.Choices[0].Index != 0 {
			t.Fatalf("event %d: want one choice with index 0: %s", i, ev.data)
		}
		ch := c.Choices[0]
		if sum.finishCount > 0 {
			t.Fatalf("event %d: choice after finish_reason", i)
		}
		if ch.FinishReason != nil {
			if *ch.FinishReason != "length" {
				t.Fatalf("finish_reason %q", *ch.FinishReason)
			}
			sum.finishCount++
		}
		var text string
		if api == apiChat {
			if ch.Delta == nil || ch.Text != nil {
				t.Fatalf("event %d: chat chunk needs delta and no text: %s", i, ev.data)
			}
			if (i == 0) != (ch.Delta.Role != nil) {
				t.Fatalf("event %d: role must be in the first chunk only: %s", i, ev.data)
			}
			if ch.Delta.Role != nil && *ch.Delta.Role != "assistant" {
				t.Fatalf("role %q", *ch.Delta.Role)
			}
			if ch.Delta.ReasoningContent != nil {
				if contentStarted {
					t.Fatalf("event %d: reasoning after content", i)
				}
				text = *ch.Delta.ReasoningContent
				sum.reasoning += len(strings.Fields(text))
			}
			if ch.Delta.Content != nil && *ch.Delta.Content != "" {
				if ch.Delta.ReasoningContent != nil {
					t.Fatalf("event %d mixes reasoning and content", i)
				}
				contentStarted = true
				text = *ch.Delta.Content
			}
		} else {
			if ch.Delta != nil || ch.Text == nil {
				t.Fatalf("event %d: completions chunk needs text and no delta: %s", i, ev.data)
			}
			text = *ch.Text
		}
		if text != "" {
			for _, w := range strings.SplitAfter(text, " ") {
				if w != "" && w != "tok " && w != "think " {
					t.Fatalf("event %d: token text %q is not one word and a space", i, w)
				}
			}
			sum.textEvents = append(sum.textEvents, len(sum.chunks))
			sum.tokens += len(strings.Fields(text))
		}
		sum.chunks, sum.events = append(sum.chunks, c), append(sum.events, ev)
	}
	if sum.finishCount != 1 {
		t.Fatalf("want exactly one finish_reason, got %d", sum.finishCount)
	}
	if fin := sum.chunks[sum.textEvents[len(sum.textEvents)-1]]; fin.Choices[0].FinishReason == nil {
		t.Fatalf("finish_reason must be on the last text chunk")
	}
	if wantUsage != (sum.usage != nil) {
		t.Fatalf("usage chunk present=%v, want %v", sum.usage != nil, wantUsage)
	}
	if sum.usage != nil {
		if sum.usage.CompletionTokens != sum.tokens || sum.usage.TotalTokens != sum.usage.PromptTokens+sum.usage.CompletionTokens {
			t.Fatalf("usage %+v disagrees with %d counted tokens", *sum.usage, sum.tokens)
		}
	}
	if sum.ttftNs <= 0 || sum.queueNs < 0 {
		t.Fatalf("final chunk lacks llmprobe_ttft_ns/llmprobe_queue_ns")
	}
	// Emit stamps are wall times taken in order.
	for i := 1; i < len(sum.chunks); i++ {
		if sum.chunks[i].EmitNs < sum.chunks[i-1].EmitNs {
			t.Fatalf("emit stamps go backwards at event %d", i)
		}
	}
	return sum
}

// streamRequest posts body and reads the whole SSE stream.
func streamRequest(t *testing.T, url, body string, hdr map[string]string) ([]sseEvent, error) {
	t.Helper()
	resp := post(t, url, body, hdr)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	return readSSE(resp.Body)
}

func chatBody(maxTokens int, extra string) string {
	return fmt.Sprintf(`{"model":"llmprobe-sim","messages":[{"role":"user","content":"one two three"}],"stream":true,"max_tokens":%d%s}`, maxTokens, extra)
}

// percentile of sorted-on-demand durations, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}
