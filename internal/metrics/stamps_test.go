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

// TestTimestampSource: the probe's latest request with a response says
// which clock timed it; a request that got none (refused, reset before the
// headers) leaves the gauge as it was.
func TestTimestampSource(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	p := m.ForProbe("vllm", scenario())
	source := func() (kernel, user float64) {
		return testutil.ToFloat64(m.timestampSource.WithLabelValues("vllm", "chat", "kernel")),
			testutil.ToFloat64(m.timestampSource.WithLabelValues("vllm", "chat", "user"))
	}
	r := streamed()
	r.KernelStamps = true
	p.Observe(r)
	if k, u := source(); k != 1 || u != 0 {
		t.Fatalf("after a kernel-stamped request: kernel %v, user %v; want 1, 0", k, u)
	}
	none := streamed()
	none.Outcome, none.Status, none.TTFB = prober.OutcomeConnectError, 0, -1
	p.Observe(none)
	if k, u := source(); k != 1 || u != 0 {
		t.Fatalf("after a request without a response: kernel %v, user %v; want 1, 0 still", k, u)
	}
	user := streamed() // KernelStamps false: HTTP/2, or the option refused
	p.Observe(user)
	if k, u := source(); k != 0 || u != 1 {
		t.Fatalf("after a user-stamped request: kernel %v, user %v; want 0, 1", k, u)
	}
	m.ForProbe("vllm", scenario()) // a reload keeps what the last request said
	if k, u := source(); k != 0 || u != 1 {
		t.Fatalf("after a reload: kernel %v, user %v; want 0, 1", k, u)
	}
	m.Forget("vllm", "chat")
	if n := testutil.CollectAndCount(m.timestampSource); n != 0 {
		t.Errorf("%d timestamp source series after the probe was removed, want 0", n)
	}
}

// TestWorkerReadLag: the per-worker read-lag histogram takes every read
// lag of the worker's records, warm-up included (it is the worker's own
// health, not the endpoint's figures).
func TestWorkerReadLag(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	w := NewSaturation(reg).Worker("0", 0)
	r := streamed()
	r.ReadLags = []time.Duration{100 * time.Microsecond, 300 * time.Microsecond}
	w.Observe(r)
	warm := streamed()
	warm.Warmup, warm.ReadLags = true, []time.Duration{time.Millisecond}
	w.Observe(warm)
	lag := histogramOf(t, reg, "llmprobe_worker_client_read_lag_seconds")
	if lag.GetSampleCount() != 3 || !near(lag.GetSampleSum(), 0.0014) {
		t.Errorf("worker read lag count=%d sum=%v, want 3 and 0.0014", lag.GetSampleCount(), lag.GetSampleSum())
	}
}
