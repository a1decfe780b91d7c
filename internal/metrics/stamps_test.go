package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// TestReadLagAndCoalesced: a record's read lags fill the client read-lag
// histogram (past warm-up, whatever the outcome); coalesced events and
// clock-step fallbacks are counted.
func TestReadLagAndCoalesced(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := New(reg).ForProbe("vllm", scenario())
	r := streamed()
	r.KernelStamps, r.ReadLags, r.Coalesced, r.ClockSteps = true, []time.Duration{100 * time.Microsecond, 300 * time.Microsecond}, 2, 1
	p.Observe(r)
	failed := streamed()
	failed.Outcome, failed.ReadLags = prober.OutcomeTruncated, []time.Duration{time.Millisecond}
	p.Observe(failed)
	warm := streamed()
	warm.Warmup, warm.ReadLags = true, []time.Duration{time.Second}
	p.Observe(warm)

	lag := histogramOf(t, reg, "llmprobe_client_read_lag_seconds")
	if lag.GetSampleCount() != 3 || !near(lag.GetSampleSum(), 0.0014) {
		t.Errorf("read lag count=%d sum=%v, want 3 and 0.0014 (warm-up left out)", lag.GetSampleCount(), lag.GetSampleSum())
	}
	for name, want := range map[string]float64{"llmprobe_coalesced_events_total": 2, "llmprobe_timestamp_clock_steps_total": 1} {
		if got := testutil.ToFloat64(mustCounter(t, reg, name)); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// mustCounter finds the single series of a counter family.
func mustCounter(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return mf.Metric[0].GetCounter().GetValue() })
		}
	}
	t.Fatalf("%s: not one series", name)
	return nil
}
