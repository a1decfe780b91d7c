package worker

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A server that holds every request: no response ever comes back, yet the
// client's schedule delay of every request it sent is already counted, in
// process and in worker mode.
func TestScheduleDelayIsCountedAtSend(t *testing.T) {
	release := make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hold.Close()
	defer close(release)
	for _, workers := range []int{0, 1} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 200*time.Millisecond)
			if err := h.pool.Apply(loadConfig(t, hold.URL, "{mode: open, arrival: constant, rate: 20, max_in_flight: 1000}")); err != nil {
				t.Fatal(err)
			}
			probe := map[string]string{"target": "ref", "scenario": "s"}
			eventually(t, 10*time.Second, "10 schedule delays observed", func() bool {
				return h.value(t, "llmprobe_schedule_delay_seconds", probe) >= 10
			})
			if done := sumOver(h, t, "llmprobe_requests_total"); done != 0 {
				t.Fatalf("%v requests ended against a server that answers none", done)
			}
			if n := h.value(t, "llmprobe_worker_schedule_delay_seconds", map[string]string{"worker": "0"}); n < 10 {
				t.Errorf("worker schedule delay count %v, want ≥ 10 like the probe's", n)
			}
		})
	}
}
