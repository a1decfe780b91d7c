package prober

import (
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober/probertest"
)

func closingServer(t *testing.T, mode probertest.Mode, idle time.Duration) *probertest.ClosingServer {
	t.Helper()
	s, err := probertest.Start(mode, idle, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// A server that keeps connections open but closes one, unanswered, when the
// next request arrives on it: every request that goes out on a reused
// connection fails before any response byte. Each is sent again on a fresh
// connection, measured from that send, and succeeds.
func TestClientRetriesOnAReusedConnectionThatFails(t *testing.T) {
	for _, stream := range []bool{true, false} {
		s := closingServer(t, probertest.CloseOnNextRequest, 0)
		c := newTestClient(t, s.URL, config.APIOpenAIChat, nil)
		const n = 20
		retried := 0
		for i := 0; i < n; i++ {
			res := do(t, c, Request{Prompt: "p", Stream: stream}, 5*time.Second)
			if res.Outcome != OutcomeSuccess {
				t.Fatalf("stream %v, request %d: outcome %v (%s), want success", stream, i, res.Outcome, res.Detail)
			}
			if res.OutputTokens != 4 {
				t.Errorf("stream %v, request %d: %d output tokens, want 4", stream, i, res.OutputTokens)
			}
			switch res.Retry {
			case RetryNone:
				if res.Resent != 0 {
					t.Errorf("request %d: Resent %v without a retry", i, res.Resent)
				}
			case RetryEOF:
				retried++
				if res.Resent <= 0 || res.E2E <= 0 {
					t.Errorf("request %d: Resent %v, E2E %v: want both > 0", i, res.Resent, res.E2E)
				}
			default:
				t.Errorf("request %d: retry reason %v, want eof (the server closed the connection)", i, res.Retry)
			}
		}
		s.Close() // its connection goroutines done: its counts are final
		// The first request dials; afterwards a retry's fresh connection
		// closes after its one answer, so the next request dials too, and the
		// one after it goes out on a kept-alive connection the server closes.
		if retried == 0 {
			t.Errorf("stream %v: no request was retried; the server closed %d of %d requests' connections unanswered", stream, s.Requests.Load()-s.Answered.Load(), s.Requests.Load())
		}
		if got, want := s.Requests.Load()-s.Answered.Load(), int64(retried); got > want {
			t.Errorf("stream %v: the server left %d requests unanswered, the client retried %d", stream, got, want)
		}
		if s.Answered.Load() != n {
			t.Errorf("stream %v: the server answered %d requests, want %d (one per request)", stream, s.Answered.Load(), n)
		}
	}
}

// A failure on a fresh connection is never retried: the server saw the
// request, and a second send would double the load it asked for.
func TestClientNeverRetriesAFreshConnection(t *testing.T) {
	s := closingServer(t, probertest.CloseAlways, 0)
	c := newTestClient(t, s.URL, config.APIOpenAIChat, nil)
	for i := 0; i < 3; i++ {
		res := do(t, c, Request{Prompt: "p", Stream: true}, 5*time.Second)
		if res.Outcome != OutcomeConnectError || res.Retry != RetryNone {
			t.Fatalf("request %d: outcome %v, retry %v; want connect_error, no retry", i, res.Outcome, res.Retry)
		}
		if res.Detail != "EOF" {
			t.Errorf("request %d: detail %q, want EOF", i, res.Detail)
		}
	}
	s.Close()
	if got := s.Requests.Load(); got != 3 {
		t.Errorf("the server read %d requests, want 3 (one per request, none resent)", got)
	}
}

// Servers that close after every reply (llama-server) or when a connection
// has been idle a moment: back-to-back requests never fail on a dead
// connection.
func TestClientSurvivesServersThatClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode probertest.Mode
		idle time.Duration
	}{
		{"after every response", probertest.CloseAfterResponse, 0},
		{"when idle 2ms", probertest.CloseWhenIdle, 2 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := closingServer(t, tc.mode, tc.idle)
			c := newTestClient(t, s.URL, config.APIOpenAIChat, nil)
			retries := 0
			for i := 0; i < 100; i++ {
				res := do(t, c, Request{Prompt: "p", Stream: i%2 == 0}, 5*time.Second)
				if res.Outcome != OutcomeSuccess {
					t.Fatalf("request %d: outcome %v (%s), want success", i, res.Outcome, res.Detail)
				}
				if res.Retry != RetryNone {
					retries++
				}
				if i%10 == 9 {
					time.Sleep(3 * time.Millisecond) // past the idle limit
				}
			}
			t.Logf("%d of 100 requests retried; %d connections", retries, s.Conns.Load())
		})
	}
}

// A server that says Connection: close is taken at its word: no connection
// is reused, so nothing fails and nothing is resent.
func TestClientHonoursConnectionClose(t *testing.T) {
	s := closingServer(t, probertest.CloseAnnounced, 0)
	c := newTestClient(t, s.URL, config.APIOpenAIChat, nil)
	const n = 30
	for i := 0; i < n; i++ {
		res := do(t, c, Request{Prompt: "p", Stream: i%2 == 0}, 5*time.Second)
		if res.Outcome != OutcomeSuccess || res.Retry != RetryNone {
			t.Fatalf("request %d: outcome %v, retry %v; want success, no retry", i, res.Outcome, res.Retry)
		}
	}
	s.Close()
	if s.Conns.Load() != n || s.Requests.Load() != n {
		t.Errorf("%d connections for %d requests read, want %d of each", s.Conns.Load(), s.Requests.Load(), n)
	}
}
