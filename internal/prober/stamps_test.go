package prober

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// TestClientCoalescedReadIsOneChunk: two text events that one read delivers
// are one chunk of two tokens (one gap, spread over both), not a gap of zero,
// and are counted.
func TestClientCoalescedReadIsOneChunk(t *testing.T) {
	ls := newLockstep()
	srv := httptest.NewServer(ls.handler(
		step{0, content("a")},
		step{0, content("b") + "\n\ndata: " + content("c")}, // one write, one read
		step{0, usage(1, 3)},
		step{0, "[DONE]"},
	))
	defer srv.Close()
	res := do(t, lockstepClient(t, ls, srv.URL, "", nil), Request{Prompt: "p", Stream: true}, 5*time.Second)
	if res.Outcome != OutcomeSuccess || len(res.Gaps) != 1 || res.Gaps[0].Tokens != 2 || res.Coalesced != 2 ||
		res.CountedTokens != 3 || res.OutputTokens != 3 || res.UsageMismatch {
		t.Errorf("gaps %v, coalesced %d, counted %d, output %d, mismatch %v: want one gap of 2 tokens, 2 coalesced, 3 tokens",
			res.Gaps, res.Coalesced, res.CountedTokens, res.OutputTokens, res.UsageMismatch)
	}
}

// TestClientStampSources: with kernel stamps, a request says so, has a read
// lag per text event, and a fresh connection's set-up apart from its
// latency; with user stamps none of the kernel's figures appear; HTTP/2
// (many requests on one connection) always uses user-space stamps.
func TestClientStampSources(t *testing.T) {
	steps := []step{{0, roleChunk}, {5 * time.Millisecond, content("a")}, {5 * time.Millisecond, content("b")}, {0, usage(1, 2)}, {0, "[DONE]"}}
	req := Request{Prompt: "p", MaxTokens: 2, Stream: true}

	t.Run("kernel", func(t *testing.T) {
		srv := httptest.NewServer(streamHandler(steps...))
		defer srv.Close()
		c := newTestClient(t, srv.URL, "", func(tg *config.Target) { tg.Timestamps = "kernel" })
		if runtime.GOOS != "linux" {
			// Kernel stamps insisted on where there are none: the
			// connection is refused, not silently user-stamped.
			if res := do(t, c, req, 5*time.Second); res.Outcome != OutcomeConnectError {
				t.Errorf("timestamps: kernel off Linux: outcome %v, want connect_error", res.Outcome)
			}
			return
		}
		for i := range 3 {
			res := do(t, c, req, 5*time.Second)
			if res.Outcome != OutcomeSuccess || !res.KernelStamps || res.ClockSteps != 0 {
				t.Fatalf("request %d: outcome %v kernel %v steps %d", i, res.Outcome, res.KernelStamps, res.ClockSteps)
			}
			if i == 0 && res.Connect <= 0 || i > 0 && res.Connect != -1 {
				t.Errorf("request %d: connect %v: want > 0 on the fresh connection, -1 once reused", i, res.Connect)
			}
			if res.TTFB <= 0 || res.TTFB > res.TTFT || res.TTFT > res.E2E {
				t.Errorf("request %d: TTFB %v TTFT %v E2E %v", i, res.TTFB, res.TTFT, res.E2E)
			}
			// A small request is one write syscall, headers and body
			// together (a body net/http does not know to be in memory is
			// flushed apart: two writes, a span between them).
			if res.SendSpan != 0 {
				t.Errorf("request %d: send span %v: the request took more than one write", i, res.SendSpan)
			}
			// The first request may lose its first reads' stamps while the
			// kernel turns stamping on; later ones have them all.
			if i > 0 && len(res.ReadLags) != 2 {
				t.Errorf("request %d: read lags %v, want one per text event", i, res.ReadLags)
			}
			for _, l := range res.ReadLags {
				if l < 0 {
					t.Errorf("request %d: negative read lag %v", i, l)
				}
			}
		}
		if src, ok := c.TimestampSource(); !ok || src.String() != "kernel" {
			t.Errorf("timestamp source %v %v", src, ok)
		}
	})
	t.Run("user", func(t *testing.T) {
		srv := httptest.NewServer(streamHandler(steps...))
		defer srv.Close()
		c := newTestClient(t, srv.URL, "", func(tg *config.Target) { tg.Timestamps = "user" })
		res := do(t, c, req, 5*time.Second)
		if res.Outcome != OutcomeSuccess || res.KernelStamps || len(res.ReadLags) != 0 || res.CountedTokens != 2 {
			t.Errorf("outcome %v kernel %v read lags %v tokens %d", res.Outcome, res.KernelStamps, res.ReadLags, res.CountedTokens)
		}
		if src, ok := c.TimestampSource(); !ok || src.String() != "user" {
			t.Errorf("timestamp source %v %v", src, ok)
		}
	})
	t.Run("http2", func(t *testing.T) {
		var proto atomic.Int32
		sh := streamHandler(steps...)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			proto.Store(int32(r.ProtoMajor))
			sh(w, r)
		}))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		defer srv.Close()
		c := newTestClient(t, srv.URL, "", func(tg *config.Target) {
			tg.HTTPClientConfig.TLSConfig.InsecureSkipVerify = true
			tg.HTTPClientConfig.EnableHTTP2 = true
		})
		res := do(t, c, req, 5*time.Second)
		if proto.Load() != 2 {
			t.Fatalf("the request went over HTTP/%d", proto.Load())
		}
		if res.Outcome != OutcomeSuccess || res.KernelStamps || len(res.ReadLags) != 0 || res.CountedTokens != 2 {
			t.Errorf("HTTP/2: outcome %v kernel %v read lags %v tokens %d: want user-space stamps", res.Outcome, res.KernelStamps, res.ReadLags, res.CountedTokens)
		}
	})
}
