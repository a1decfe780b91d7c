package worker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/llmprobe/llmprobe/internal/config"
)

// A reload restarts only what changed: the unchanged probe keeps running
// untouched (same worker processes, its warm-up not restarted: its
// measurements go on right through the reload), the changed one starts
// again (its warm-up with it), a removed one stops and leaves /metrics, and
// the books balance at every scrape throughout.
func TestReloadRestartsOnlyWhatChanged(t *testing.T) {
	ep := newEndpoint(t, 2*time.Millisecond, time.Millisecond)
	cfgFor := func(rateB string, withB bool) *config.Config {
		probes := "[s1]"
		if withB {
			probes = "[s1, s2]"
		}
		cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
targets: [{name: ref, url: %q, model: m}]
scenarios:
  - {name: s1, load: {mode: open, rate: 40, warmup: 2s}, workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}}
  - {name: s2, load: {mode: open, rate: %s, warmup: 2s}, workload: {input_tokens: {value: 8}, output_tokens: {value: 4}}}
probes: [{targets: [ref], scenarios: %s}]
`, ep.URL, rateB, probes)), "")
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, workers := range []int{0, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			h := newPool(t, workers, 100*time.Millisecond)
			ttft := func(sc string) float64 {
				return h.value(t, "llmprobe_time_to_first_token_seconds", map[string]string{"target": "ref", "scenario": sc})
			}
			balanced := func(when string) {
				t.Helper()
				mfs, err := h.reg.Gather() // one scrape
				if err != nil {
					t.Fatal(err)
				}
				sums := map[string]float64{}
				for _, mf := range mfs {
					for _, m := range mf.Metric {
						sums[mf.GetName()] += metricValue(m)
					}
				}
				v := func(name string) float64 { return sums[name] }
				residual := v("llmprobe_requests_scheduled_total") - (v("llmprobe_requests_total") + v("llmprobe_requests_in_flight") +
					v("llmprobe_requests_dropped_total") + v("llmprobe_requests_lost_total") + v("llmprobe_requests_backed_off_total"))
				if residual != 0 {
					t.Errorf("%s: books off by %v", when, residual)
				}
			}
			if err := h.pool.Apply(cfgFor("40", true)); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "both probes past their warm-up", func() bool { return ttft("s1") > 5 && ttft("s2") > 5 })
			pids := childPIDs(t)

			// s2's rate changes: s1 runs on, s2 starts again.
			if err := h.pool.Apply(cfgFor("30", true)); err != nil {
				t.Fatal(err)
			}
			before1 := ttft("s1")
			// The old run of s2 stops once its worker has the new
			// assignment (a moment, longer on a loaded machine); from then on
			// its new run sits in its 2 s warm-up.
			for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				balanced("during the reload")
			}
			before2 := ttft("s2")
			for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				balanced("during the reload")
			}
			// Within s2's new warm-up (1 s): s1 still measures, s2 does not.
			// About 36 requests at 40/s; a restarted probe would measure only
			// the one or two its old run had in flight.
			if got := ttft("s1"); got < before1+8 {
				t.Errorf("the unchanged probe s1 measured %v in 0.9s after the reload: it was restarted (into its warm-up)", got-before1)
			}
			if got := ttft("s2"); got > before2+1 {
				t.Errorf("the changed probe s2 measured %v more from 0.3s to 0.9s after the reload, inside its new 2s warm-up: it was not restarted", got-before2)
			}
			if got := childPIDs(t); !slices.Equal(got, pids) {
				t.Errorf("worker processes %v after the reload, were %v: they were restarted", got, pids)
			}
			if r := sumOver(h, t, "llmprobe_worker_restarts_total"); r != 0 {
				t.Errorf("%v worker restarts", r)
			}
			if v := h.value(t, "llmprobe_configured_rate_requests_per_second", map[string]string{"scenario": "s2"}); v != 30 {
				t.Errorf("s2's configured rate %v, want the reloaded 30", v)
			}
			eventually(t, 10*time.Second, "s2 measuring again after its warm-up", func() bool { return ttft("s2") > before2+5 })

			// s2 removed: its series go, s1 runs on.
			if err := h.pool.Apply(cfgFor("30", false)); err != nil {
				t.Fatal(err)
			}
			before1 = ttft("s1")
			time.Sleep(500 * time.Millisecond)
			balanced("after removing s2")
			if got := ttft("s1"); got < before1+8 {
				t.Errorf("s1 measured %v in 0.5s after s2 was removed: it was restarted", got-before1)
			}
			if v := h.value(t, "llmprobe_requests_scheduled_total", map[string]string{"scenario": "s2"}); v == v { // not NaN
				t.Errorf("s2's series are still exported after it was removed (scheduled %v)", v)
			}
			if got := childPIDs(t); !slices.Equal(got, pids) {
				t.Errorf("worker processes %v after removing a probe, were %v", got, pids)
			}
			h.pool.Shutdown()
			balanced("after shutdown")
			if in := sumOver(h, t, "llmprobe_requests_in_flight"); in != 0 {
				t.Errorf("%v in flight after shutdown", in)
			}
		})
	}
}
