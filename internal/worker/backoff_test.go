package worker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// A target that answers 429 with Retry-After, with honor_retry_after on: no
// request reaches it for the time it asked, the arrivals meanwhile are
// counted as backed off (not as drops), the back-off shows on a gauge, the
// load resumes afterwards, and the books balance throughout.
func TestRetryAfterBackOff(t *testing.T) {
	for _, workers := range []int{0, 1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			ep := newEndpoint(t, 2*time.Millisecond, time.Millisecond)
			var mu sync.Mutex
			var hits []time.Time
			var limited time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits = append(hits, time.Now())
				first := limited.IsZero() && len(hits) == 5
				if first {
					limited = time.Now()
				}
				mu.Unlock()
				if first {
					w.Header().Set("Retry-After", "2")
					http.Error(w, `{"error":{"message":"Rate limit reached for requests"}}`, http.StatusTooManyRequests)
					return
				}
				ep.Config.Handler.ServeHTTP(w, r)
			}))
			defer srv.Close()
			cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: saas, url: %q, model: m, honor_retry_after: true, max_retry_after: 1m}]
scenarios:
  - name: s
    load: {mode: open, arrival: constant, rate: 40}
    workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}
probes: [{targets: [saas], scenarios: [s]}]
`, srv.URL)), "")
			if err != nil {
				t.Fatal(err)
			}
			h := newPool(t, workers, 100*time.Millisecond)
			if err := h.pool.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			probe := map[string]string{"target": "saas", "scenario": "s"}
			eventually(t, 10*time.Second, "the back-off showing", func() bool {
				return h.value(t, "llmprobe_retry_after_backoff_workers", probe) == 1
			})
			eventually(t, 10*time.Second, "the load resuming after the back-off", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return !limited.IsZero() && len(hits) > 0 && hits[len(hits)-1].After(limited.Add(2*time.Second))
			})
			eventually(t, 5*time.Second, "the back-off gauge back at 0", func() bool {
				return h.value(t, "llmprobe_retry_after_backoff_workers", probe) == 0
			})
			h.pool.Shutdown()
			mu.Lock()
			defer mu.Unlock()
			// The client learns of the 429 a moment after the server sent it;
			// from 300 ms on, and for the rest of the 2 s, nothing may come.
			for _, at := range hits {
				if d := at.Sub(limited); d > 300*time.Millisecond && d < 1900*time.Millisecond {
					t.Errorf("a request arrived %v after the 429 asked for 2s of quiet", d.Round(time.Millisecond))
				}
			}
			backedOff := h.value(t, "llmprobe_requests_backed_off_total", probe)
			if backedOff < 40 { // about 80 arrivals in 2 s at 40/s
				t.Errorf("%v arrivals counted as backed off over a 2s back-off at 40/s", backedOff)
			}
			if d := h.value(t, "llmprobe_requests_dropped_total", probe); d != 0 {
				t.Errorf("%v drops: backed-off arrivals are not drops", d)
			}
			scheduled := h.value(t, "llmprobe_requests_scheduled_total", probe)
			outcomes := sumOver(h, t, "llmprobe_requests_total")
			if scheduled != outcomes+backedOff {
				t.Errorf("scheduled %v ≠ outcomes %v + backed off %v", scheduled, outcomes, backedOff)
			}
		})
	}
}
