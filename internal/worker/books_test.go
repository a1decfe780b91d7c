package worker

import (
	"fmt"
	"strings"
	"syscall"
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
			lost := sumOver(h, t, "llmprobe_requests_lost_total")
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
	for _, want := range []string{`target "ref"`, "ca_file", "/nonexistent/ca.pem"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := len(childPIDs(t)); n != 0 {
		t.Errorf("%d worker processes started for a rejected configuration", n)
	}
}

// The books balance at every scrape of a loaded pool, not only at the end:
// scheduled = Σ outcomes + in flight + dropped + lost, while requests are
// sent, dropped and finished, and across a worker SIGKILLed and a worker
// hung (SIGSTOP, then killed by the supervisor) with requests in flight.
func TestBooksBalanceAtEveryScrape(t *testing.T) {
	ep := newEndpoint(t, 30*time.Millisecond, 2*time.Millisecond)
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 100*time.Millisecond)
			if err := h.pool.Apply(loadConfig(t, ep.URL, "{mode: open, rate: 300, max_in_flight: 8}")); err != nil {
				t.Fatal(err)
			}
			scrapes, worst := 0, 0.0
			check := func() {
				mfs, err := h.reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				v := map[string]float64{}
				for _, mf := range mfs {
					for _, m := range mf.Metric {
						v[mf.GetName()] += metricValue(m)
					}
				}
				scrapes++
				residual := v["llmprobe_requests_scheduled_total"] - (v["llmprobe_requests_total"] + v["llmprobe_requests_in_flight"] +
					v["llmprobe_requests_dropped_total"] + v["llmprobe_requests_lost_total"] + v["llmprobe_requests_backed_off_total"])
				if residual != 0 && worst == 0 {
					t.Errorf("scrape %d: books off by %v: %v", scrapes, residual, v)
				}
				worst = max(worst, residual, -residual)
			}
			scrapeFor := func(d time.Duration) {
				for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
					check()
				}
			}
			scrapeFor(time.Second)
			if workers > 0 {
				pids := childPIDs(t)
				if len(pids) != 2 {
					t.Fatalf("%d worker processes, want 2", len(pids))
				}
				syscall.Kill(pids[0], syscall.SIGKILL)
				syscall.Kill(pids[1], syscall.SIGSTOP)
				scrapeFor(1500 * time.Millisecond) // the hung one is killed after 5 silent intervals
				if lost := sumOver(h, t, "llmprobe_requests_lost_total"); lost == 0 {
					t.Errorf("no request counted lost after killing two workers with requests in flight")
				}
				if r := sumOver(h, t, "llmprobe_worker_restarts_total"); r < 2 {
					t.Errorf("%v worker restarts, want 2", r)
				}
				scrapeFor(time.Second)
			}
			h.pool.Shutdown()
			check()
			if in := sumOver(h, t, "llmprobe_requests_in_flight"); in != 0 {
				t.Errorf("%v requests in flight after shutdown", in)
			}
			if sumOver(h, t, "llmprobe_requests_dropped_total") == 0 || sumOver(h, t, "llmprobe_requests_total") == 0 {
				t.Errorf("the load did not exercise both sends and drops")
			}
			t.Logf("%d scrapes, largest residual %v, lost %v", scrapes, worst, sumOver(h, t, "llmprobe_requests_lost_total"))
		})
	}
}
