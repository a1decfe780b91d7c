package prober

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// piecesReader returns one piece per Read, like a network delivering
// segments.
type piecesReader struct {
	pieces []string
	reads  int
}

func (r *piecesReader) Read(p []byte) (int, error) {
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces[0] = r.pieces[0][n:]
	if r.pieces[0] == "" {
		r.pieces = r.pieces[1:]
	}
	r.reads++
	return n, nil
}

// readAll returns the data of every event until the stream's end, with
// "[DONE]" events marked by a "DONE:" prefix.
func readAll(t testing.TB, s *SSEReader) ([]string, error) {
	var out []string
	for {
		ev, err := s.Next()
		if err != nil {
			return out, err
		}
		if ev.Done != (string(ev.Data) == "[DONE]") {
			t.Fatalf("Done=%v for data %q", ev.Done, ev.Data)
		}
		if ev.Done {
			out = append(out, "DONE:")
		} else {
			out = append(out, string(ev.Data))
		}
	}
}

// referenceSSE is a deliberately naive reading of the SSE spec (whole input
// at once), against which the streaming reader is checked.
func referenceSSE(in string) []string {
	in = strings.TrimPrefix(in, "\ufeff")
	in = strings.ReplaceAll(in, "\r\n", "\n")
	in = strings.ReplaceAll(in, "\r", "\n")
	lines := strings.Split(in, "\n")
	lines = lines[:len(lines)-1] // the last piece is unterminated (or empty)
	var out []string
	var data []string
	has := false
	for _, l := range lines {
		if l == "" {
			if has {
				d := strings.Join(data, "\n")
				if d == "[DONE]" {
					d = "DONE:"
				}
				out = append(out, d)
			}
			data, has = nil, false
			continue
		}
		if strings.HasPrefix(l, ":") {
			continue
		}
		name, value, found := strings.Cut(l, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		if name == "data" {
			data = append(data, value)
			has = true
		}
	}
	return out
}

const vllmChatStream = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":"length","stop_reason":null}]}

data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"total_tokens":7,"completion_tokens":2}}

data: [DONE]

`

func TestSSEReaderVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"vllm chat", vllmChatStream, referenceSSE(vllmChatStream)},
		{"no space after data", "data:{\"a\":1}\n\ndata:[DONE]\n\n", []string{`{"a":1}`, "DONE:"}},
		{"only one space stripped", "data:  x\n\n", []string{" x"}},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\ndata: [DONE]\r\n\r\n", []string{"a", "b", "DONE:"}},
		{"lone CR", "data: a\r\rdata: b\r\r", []string{"a", "b"}},
		{"mixed endings", "data: a\r\n\ndata: b\r\rdata: c\n\r\n", []string{"a", "b", "c"}},
		{"keep-alive comments", ": ping\n\n: keep-alive\ndata: a\n: inside\n\n:\n\n", []string{"a"}},
		{"multi-line data", "data: a\ndata: b\ndata:c\n\n", []string{"a\nb\nc"}},
		{"empty data lines", "data\ndata: x\n\ndata:\n\n", []string{"\nx", ""}},
		{"ignored fields", "event: message\nid: 5\nretry: 100\ndata: a\nfoo: bar\ndata : not data\n\n", []string{"a"}},
		{"blank lines without data", "\n\n\nevent: x\n\n", nil},
		{"incomplete event at EOF discarded", "data: a\n\ndata: b\n", []string{"a"}},
		{"unterminated line at EOF", "data: a\n\ndata: b", []string{"a"}},
		{"BOM", "\ufeffdata: a\n\n", []string{"a"}},
		{"usage-only chunk", `data: {"choices":[],"usage":{"completion_tokens":3}}` + "\n\ndata: [DONE]\n\n",
			[]string{`{"choices":[],"usage":{"completion_tokens":3}}`, "DONE:"}},
		{"DONE only as whole data", "data: [DONE] \n\ndata: x[DONE]\n\n", []string{"[DONE] ", "x[DONE]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ref := referenceSSE(tc.in); !equalStrings(ref, tc.want) {
				t.Fatalf("reference disagrees with the table: %q vs %q", ref, tc.want)
			}
			readers := map[string]io.Reader{
				"whole":    strings.NewReader(tc.in),
				"one byte": iotest.OneByteReader(strings.NewReader(tc.in)),
				"halves":   iotest.HalfReader(strings.NewReader(tc.in)),
				"data+EOF": iotest.DataErrReader(strings.NewReader(tc.in)),
			}
			for rn, r := range readers {
				got, err := readAll(t, NewSSEReader(r, 0))
				if err != io.EOF {
					t.Errorf("%s: err = %v, want EOF", rn, err)
				}
				if !equalStrings(got, tc.want) {
					t.Errorf("%s: got %q, want %q", rn, got, tc.want)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fakeClock returns base + n seconds on its n-th call (n from 1), so a stamp
// names the read that took it.
func fakeClock() (func() time.Time, time.Time) {
	base := time.Unix(1000, 0)
	n := 0
	return func() time.Time { n++; return base.Add(time.Duration(n) * time.Second) }, base
}

func TestSSEReaderStampIsTheReadThatCompletedTheEvent(t *testing.T) {
	r := &piecesReader{pieces: []string{
		"da", "ta: {\"a\"", ":1}\n", "\n", // event 1 completes on read 4
		"data: b\n\ndata: c\n\n",           // events 2 and 3 on read 5
		": keep-alive\n\n",                 // read 6, no event
		"data: [DO", "NE]\r", "\n", "\r\n", // CR then LF split across reads: [DONE] on read 10
	}}
	s := NewSSEReader(r, 0)
	now, base := fakeClock()
	s.now = now
	want := []struct {
		data string
		read int
	}{{`{"a":1}`, 4}, {"b", 5}, {"c", 5}, {"[DONE]", 10}}
	for _, w := range want {
		ev, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Data) != w.data {
			t.Fatalf("data %q, want %q", ev.Data, w.data)
		}
		if got := int(ev.Time.Sub(base) / time.Second); got != w.read {
			t.Errorf("event %q stamped by read %d, want %d", w.data, got, w.read)
		}
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
	if got := int(s.LastRead().Sub(base) / time.Second); got != 10 {
		t.Errorf("LastRead from read %d, want 10", got)
	}
}

func TestSSEReaderEventSizeCap(t *testing.T) {
	big := strings.Repeat("x", 100)
	for _, tc := range []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{"under the cap", "data: " + big[:50] + "\n\n", []string{big[:50]}, io.EOF},
		{"single line over", "data: ok\n\ndata: " + big + "\n\n", []string{"ok"}, ErrEventTooLarge},
		{"multi-line over", strings.Repeat("data: "+big[:30]+"\n", 4) + "\n", nil, ErrEventTooLarge},
		{"unterminated line over", "data: ok\n\n" + big + big, []string{"ok"}, ErrEventTooLarge},
		// Comment lines between events do not accumulate.
		{"many comments", strings.Repeat(": "+big[:40]+"\n", 1000) + "data: a\n\n", []string{"a"}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := readAll(t, NewSSEReader(r, 64))
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
				if !equalStrings(got, tc.want) {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			}
		})
	}
}

func TestSSEReaderLargeEventGrowsBuffer(t *testing.T) {
	data := strings.Repeat("y", 300<<10)
	got, err := readAll(t, NewSSEReader(iotest.HalfReader(strings.NewReader("data: a\n\ndata: "+data+"\n\ndata: b\n\n")), 0))
	if err != io.EOF || len(got) != 3 || got[1] != data || got[2] != "b" {
		t.Fatalf("err=%v, %d events", err, len(got))
	}
}

func TestSSEReaderErrorsAreSticky(t *testing.T) {
	boom := errors.New("boom")
	s := NewSSEReader(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)), 0)
	got, err := readAll(t, s)
	if !equalStrings(got, []string{"a"}) || err != boom {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := s.Next(); err != boom {
		t.Fatalf("second call: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestSSEReaderNoProgress(t *testing.T) {
	if _, err := NewSSEReader(zeroReader{}, 0).Next(); err != io.ErrNoProgress {
		t.Fatalf("err = %v, want ErrNoProgress", err)
	}
}

func TestSSEReaderSteadyStateAllocatesNothing(t *testing.T) {
	stream := []byte(strings.Repeat(vllmChatStream, 20))
	br := bytes.NewReader(stream)
	s := NewSSEReader(br, 0)
	run := func() {
		br.Reset(stream)
		s.Reset(br)
		for {
			if _, err := s.Next(); err != nil {
				return
			}
		}
	}
	run() // first use sizes the buffer
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Fatalf("%v allocations per stream, want 0", a)
	}
}

// splitReader cuts its input into pieces whose sizes come from a seed, to
// exercise every way a network can split a stream.
type splitReader struct {
	data []byte
	seed uint32
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	r.seed = r.seed*1664525 + 1013904223
	n := min(int(r.seed>>24)%17+1, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		vllmChatStream,
		"data:x\r\rdata: y\r\n\r\n",
		": ping\n\ndata: a\ndata: b\n\n",
		"\ufeffdata: [DONE]\n\n",
		"event: e\nid: 1\nretry: 5\ndata\n\n",
	} {
		f.Add([]byte(s), uint32(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint32) {
		want := referenceSSE(string(in))
		got, err := readAll(t, NewSSEReader(&splitReader{data: in, seed: seed}, 0))
		if err != io.EOF {
			t.Fatalf("err = %v", err)
		}
		if !equalStrings(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		// With a tiny cap: no panic, events within the cap, a prefix of the
		// reference.
		got, err = readAll(t, NewSSEReader(&splitReader{data: in, seed: seed}, 16))
		if err != io.EOF && err != ErrEventTooLarge {
			t.Fatalf("capped: err = %v", err)
		}
		if len(got) > len(want) {
			t.Fatalf("capped: %d events, reference %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] && !(got[i] == "DONE:" && want[i] == "DONE:") {
				t.Fatalf("capped: event %d = %q, want %q", i, got[i], want[i])
			}
		}
	})
}
