package worker

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The books balance once a pool has shut down: every arrival was either
// dropped or sent, and every sent request has exactly one outcome.
func TestBooksBalanceAfterShutdown(t *testing.T) {
	ep := newEndpoint(t, 20*time.Millisecond, 2*time.Millisecond)
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 100*time.Millisecond)
			// 400 req/s into 4 slots held ~30 ms each: plenty sent, plenty dropped.
			if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 400, max_in_flight: 4}")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			h.pool.Shutdown()
			scheduled := sumOver(h, t, "llmprobe_requests_scheduled_total")
			dropped := sumOver(h, t, "llmprobe_requests_dropped_total")
			outcomes := sumOver(h, t, "llmprobe_requests_total")
			inFlight := sumOver(h, t, "llmprobe_requests_in_flight")
			lost := sumOver(h, t, "llmprobe_worker_lost_requests_total")
			if dropped == 0 || outcomes == 0 {
				t.Fatalf("the load did not exercise both sides: %v dropped, %v sent", dropped, outcomes)
			}
			if scheduled != outcomes+dropped || inFlight != 0 || lost != 0 {
				t.Errorf("scheduled %v ≠ outcomes %v + dropped %v (in flight %v, lost %v)", scheduled, outcomes, dropped, inFlight, lost)
			}
		})
	}
}

// What only a worker would find out (here: a TLS CA file that is not there)
// fails the reload in the supervisor, before any worker starts.
func TestApplyRejectsWhatWorkersCouldNotRun(t *testing.T) {
	h := newPool(t, 2, 100*time.Millisecond)
	cfg := loadConfig(t, "http://127.0.0.1:1", "{mode: open, rate: 1}")
	cfg.Targets[0].HTTPClientConfig.TLSConfig.CAFile = "/nonexistent/ca.pem"
	err := h.pool.Apply(cfg)
	if err == nil {
		t.Fatal("Apply accepted a target whose CA file does not exist")
	}
	if want := `target "ref": http client: unable to read CA cert`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if n := len(childPIDs(t)); n != 0 {
		t.Errorf("%d worker processes started for a rejected configuration", n)
	}
}
