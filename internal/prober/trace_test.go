package prober

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/llmprobe/llmprobe/internal/config"
)

var traceparentForm = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$`)

func TestTraceparent(t *testing.T) {
	for _, mode := range []config.Traceparent{config.TraceSampled, config.TraceUnsampled, config.TraceOff} {
		t.Run(string(mode), func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				mu.Lock()
				got = append(got, r.Header.Get("traceparent"))
				mu.Unlock()
				w.WriteHeader(http.StatusTeapot)
			}))
			defer srv.Close()
			c := newTestClient(t, srv.URL, config.APIOpenAIChat, func(tg *config.Target) { tg.Traceparent = mode })
			var ids []TraceID
			for range 20 {
				res := &Result{}
				c.Do(context.Background(), Request{Prompt: "p", Stream: true}, res)
				ids = append(ids, res.TraceID)
			}
			seen := map[string]bool{}
			for i, tp := range got {
				if mode == config.TraceOff {
					if tp != "" || !ids[i].IsZero() {
						t.Fatalf("off: header %q, trace id %v", tp, ids[i])
					}
					continue
				}
				m := traceparentForm.FindStringSubmatch(tp)
				if m == nil {
					t.Fatalf("traceparent %q is not W3C version 00", tp)
				}
				if m[1] != ids[i].String() {
					t.Errorf("header trace id %s, result's %s", m[1], ids[i])
				}
				if want := map[config.Traceparent]string{config.TraceSampled: "01", config.TraceUnsampled: "00"}[mode]; m[3] != want {
					t.Errorf("flags %s, want %s", m[3], want)
				}
				if m[1] == "00000000000000000000000000000000" || m[2] == "0000000000000000" || seen[m[1]] {
					t.Errorf("trace id %s: zero or repeated", m[1])
				}
				seen[m[1]] = true
			}
		})
	}
}

// A request resent on a fresh connection is the same request to the
// engine's traces: one trace id for both attempts.
func TestTraceparentSurvivesTheRetry(t *testing.T) {
	var mu sync.Mutex
	var got []string
	first := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Get("traceparent"))
		kill := first && len(got) == 2
		if kill {
			first = false
		}
		mu.Unlock()
		if kill {
			// The second request's reused connection dies before any
			// response byte: the client sends it again, fresh.
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, config.APIOpenAIChat, func(tg *config.Target) { tg.Traceparent = config.TraceSampled })
	c.Do(context.Background(), Request{Prompt: "p"}, &Result{})
	res := &Result{}
	c.Do(context.Background(), Request{Prompt: "p"}, res)
	if res.Retry == RetryNone || len(got) != 3 {
		t.Fatalf("retry %v after %d requests seen: the test needs the second request resent", res.Retry, len(got))
	}
	if got[1] != got[2] || got[0] == got[1] {
		t.Errorf("traceparents %q: the resent request should carry its first attempt's, and differ from the first request's", got)
	}
}
