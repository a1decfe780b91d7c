package simulator

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// newServedServer serves a Server the way Serve does (stamped listener,
// ConnContext), after setup has set its test hooks.
func newServedServer(t testing.TB, cfg Config, setup func(*Server)) (*Server, string) {
	t.Helper()
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, stop, err := s.serve(context.Background(), ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s, addr
}

type arrivalTrace struct {
	arrival, handlerNow time.Time
	kernel              bool
}

// arrivalRecorder collects traceArrival calls.
type arrivalRecorder struct {
	mu sync.Mutex
	tr []arrivalTrace
}

func (a *arrivalRecorder) record(arrival, handlerNow time.Time, kernel bool) {
	a.mu.Lock()
	a.tr = append(a.tr, arrivalTrace{arrival, handlerNow, kernel})
	a.mu.Unlock()
}

func (a *arrivalRecorder) last(t *testing.T, n int) arrivalTrace {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.tr) != n {
		t.Fatalf("%d arrivals traced, want %d", len(a.tr), n)
	}
	return a.tr[n-1]
}

// rawRequest is a whole non-streamed chat request, written in one Write so
// that its last byte goes out in one known syscall.
func rawRequest(maxTokens int) []byte {
	body := `{"model":"llmprobe-sim","messages":[{"role":"user","content":"one two three"}],"max_tokens":` + strconv.Itoa(maxTokens) + `}`
	return []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// ttftOf reads one response from br and returns its llmprobe_ttft_ns.
func ttftOf(t *testing.T, br *bufio.Reader) time.Duration {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, err %v: %s", resp.StatusCode, err, b)
	}
	var v struct {
		TTFT int64 `json:"llmprobe_ttft_ns"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.TTFT == 0 {
		t.Fatalf("no llmprobe_ttft_ns in %s (%v)", b, err)
	}
	return time.Duration(v.TTFT)
}

// TestArrivalNotAfterHandlerClock: through Serve's listener, a request's
// arrival (where its TTFT starts) is never after the handler's own clock
// reading, on whatever platform and stamp source.
func TestArrivalNotAfterHandlerClock(t *testing.T) {
	var rec arrivalRecorder
	_, addr := newServedServer(t, fastConfig(), func(s *Server) { s.traceArrival = rec.record })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	for i := 1; i <= 5; i++ {
		if _, err := conn.Write(rawRequest(2)); err != nil {
			t.Fatal(err)
		}
		ttftOf(t, br)
		tr := rec.last(t, i)
		if tr.arrival.After(tr.handlerNow) {
			t.Errorf("request %d: arrival %v after the handler's clock", i, tr.arrival.Sub(tr.handlerNow))
		}
	}
}
