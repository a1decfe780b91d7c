package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

func scenario() *config.Scenario {
	return &config.Scenario{
		Name: "chat",
		Load: config.Load{Mode: config.LoadOpen, Rate: 4, MaxInFlight: 10},
		SLOs: []config.SLO{
			{Name: "fast", TTFT: model.Duration(100 * time.Millisecond), TPOT: model.Duration(20 * time.Millisecond)},
			{Name: "e2e", E2E: model.Duration(time.Second)},
		},
	}
}

// A streamed success of 5 tokens: TTFT 50ms, then four gaps of 10ms except
// one chunk carrying 2 tokens after 20ms, e2e 90ms.
func streamed() *record.Record {
	r := &record.Record{Probe: 0, ScheduleDelay: 200 * time.Microsecond}
	r.Result = prober.Result{
		Outcome: prober.OutcomeSuccess, Status: 200, Stream: true,
		TTFB: 5 * time.Millisecond, TTFT: 50 * time.Millisecond, E2E: 90 * time.Millisecond,
		Gaps:        []prober.Gap{{Gap: 10 * time.Millisecond, Tokens: 1}, {Gap: 20 * time.Millisecond, Tokens: 2}, {Gap: 10 * time.Millisecond, Tokens: 1}},
		InputTokens: 12, OutputTokens: 5, CountedTokens: 5, UsageReported: true,
		ServerTTFT: -1, ServerQueue: -1,
	}
	return r
}

func TestObserveCountsAndSLOs(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	p := m.ForProbe("vllm", scenario())

	p.Observe(streamed())
	slow := streamed()
	slow.TTFT = 150 * time.Millisecond // misses "fast", meets "e2e"
	p.Observe(slow)
	failed := streamed()
	failed.Outcome, failed.Status = prober.OutcomeHTTP5xx, 503
	failed.InputTokens, failed.OutputTokens = 0, 0
	p.Observe(failed)
	warm := streamed()
	warm.Warmup = true
	p.Observe(warm)
	canceled := streamed() // by a rollout's drain: not the endpoint's doing
	canceled.Outcome, canceled.InputTokens, canceled.OutputTokens = prober.OutcomeCanceled, 0, 0
	p.Observe(canceled)

	want := `
# HELP llmprobe_slo_good_requests_total Requests that succeeded and met every threshold of the SLO objective.
# TYPE llmprobe_slo_good_requests_total counter
llmprobe_slo_good_requests_total{objective="e2e",scenario="chat",target="vllm"} 2
llmprobe_slo_good_requests_total{objective="fast",scenario="chat",target="vllm"} 1
# HELP llmprobe_slo_requests_total Requests judged against an SLO objective (after warm-up; requests llmprobe itself canceled at a shutdown or reload are not judged).
# TYPE llmprobe_slo_requests_total counter
llmprobe_slo_requests_total{objective="e2e",scenario="chat",target="vllm"} 3
llmprobe_slo_requests_total{objective="fast",scenario="chat",target="vllm"} 3
# HELP llmprobe_output_tokens_total Output tokens received, from the server's usage or counted when it sends none.
# TYPE llmprobe_output_tokens_total counter
llmprobe_output_tokens_total{scenario="chat",target="vllm"} 15
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"llmprobe_slo_good_requests_total", "llmprobe_slo_requests_total", "llmprobe_output_tokens_total"); err != nil {
		t.Fatal(err)
	}
	for outcome, n := range map[string]float64{"success": 3, "http_5xx": 1, "timeout": 0} {
		if got := seriesValue(t, reg, "llmprobe_requests_total", map[string]string{"outcome": outcome}); got != n {
			t.Errorf("requests_total{outcome=%q} = %v, want %v", outcome, got, n)
		}
	}
	// Warm-up and failed requests stay out of latency histograms.
	if got := testutil.CollectAndCount(m.ttft); got != 1 {
		t.Fatalf("ttft series = %d", got)
	}
	h := histogramOf(t, reg, "llmprobe_time_to_first_token_seconds")
	if h.GetSampleCount() != 2 || !near(h.GetSampleSum(), 0.2) {
		t.Errorf("ttft count=%d sum=%v, want 2 and 0.2", h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestITLSpreadsMultiTokenChunks(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := New(reg).ForProbe("vllm", scenario())
	p.Observe(streamed())
	itl := histogramOf(t, reg, "llmprobe_inter_token_latency_seconds")
	// Gaps 10ms×1, 20ms over 2 tokens → 10ms×2, 10ms×1: four observations of 10ms.
	if itl.GetSampleCount() != 4 || !near(itl.GetSampleSum(), 0.04) {
		t.Errorf("itl count=%d sum=%v, want 4 and 0.04", itl.GetSampleCount(), itl.GetSampleSum())
	}
	tpot := histogramOf(t, reg, "llmprobe_time_per_output_token_seconds")
	if !near(tpot.GetSampleSum(), 0.010) { // (90-50)/(5-1) ms
		t.Errorf("tpot = %v, want 0.010", tpot.GetSampleSum())
	}
	ntpot := histogramOf(t, reg, "llmprobe_normalized_time_per_output_token_seconds")
	if !near(ntpot.GetSampleSum(), 0.018) { // 90/5 ms
		t.Errorf("ntpot = %v, want 0.018", ntpot.GetSampleSum())
	}
	intended := histogramOf(t, reg, "llmprobe_intended_time_to_first_token_seconds")
	if !near(intended.GetSampleSum(), 0.0502) {
		t.Errorf("intended ttft = %v, want 0.0502", intended.GetSampleSum())
	}
	// Native buckets are exposed beside the classic ones.
	if itl.GetSchema() == 0 && len(itl.GetPositiveSpan()) == 0 {
		t.Errorf("no native buckets on the ITL histogram")
	}
	if len(itl.GetBucket()) == 0 {
		t.Errorf("no classic buckets on the ITL histogram")
	}
}

func TestBooksNeverGoBackwards(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	p := m.ForProbe("vllm", scenario())
	b := NewBooks(func(uint32) *Probe { return p })
	b.Apply([]record.ProbeCounts{{Scheduled: 10, Sent: 8, Dropped: 2, Late: 1}})
	b.Apply([]record.ProbeCounts{{Scheduled: 15, Sent: 12, Dropped: 3, Late: 1}})
	// The source restarts: its counters start again from zero.
	b2 := NewBooks(func(uint32) *Probe { return p })
	b2.Apply([]record.ProbeCounts{{Scheduled: 4, Sent: 3, Dropped: 1, Late: 2}})
	for name, want := range map[string]float64{"llmprobe_requests_dropped_total": 4, "llmprobe_late_dispatches_total": 3} {
		if got := seriesValue(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// The books balance at every moment, whatever order sends, records, samples
// and losses arrive in: scheduled = Σ outcomes + in flight + dropped + lost.
func TestBooksBalanceAtEveryStep(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	p := m.ForProbe("vllm", scenario())
	b := NewBooks(func(uint32) *Probe { return p })
	check := func(step string, inFlight float64) {
		t.Helper()
		v := func(name string) float64 { return seriesValue(t, reg, name, nil) }
		scheduled, dropped, lost := v("llmprobe_requests_scheduled_total"), v("llmprobe_requests_dropped_total"), v("llmprobe_requests_lost_total")
		lost += v("llmprobe_requests_backed_off_total") // never sent either
		outcomes := sumSeries(t, reg, "llmprobe_requests_total")
		if got := v("llmprobe_requests_in_flight"); got != inFlight {
			t.Errorf("%s: in flight %v, want %v", step, got, inFlight)
		}
		if scheduled != outcomes+inFlight+dropped+lost {
			t.Errorf("%s: scheduled %v ≠ outcomes %v + in flight %v + dropped %v + lost %v", step, scheduled, outcomes, inFlight, dropped, lost)
		}
	}
	check("empty", 0)
	p.ObserveSend(record.Send{})
	p.ObserveSend(record.Send{Warmup: true})
	check("two sent", 2)
	p.Observe(streamed())
	check("one ended", 1)
	b.Apply([]record.ProbeCounts{{Scheduled: 7, Sent: 2, Dropped: 5}})
	check("five dropped", 1)
	b.Apply([]record.ProbeCounts{{Scheduled: 10, Sent: 2, Dropped: 5, BackedOff: 3, BackingOff: true}})
	check("three backed off", 1)
	if got := seriesValue(t, reg, "llmprobe_retry_after_backoff_workers", nil); got != 1 {
		t.Errorf("back-off workers %v while the source backs off, want 1", got)
	}
	b.Close()
	if got := seriesValue(t, reg, "llmprobe_retry_after_backoff_workers", nil); got != 0 {
		t.Errorf("back-off workers %v after the source closed, want 0", got)
	}
	p.Lose(1)
	check("one lost with its worker", 0)
}

// seriesValue is the value (or sum) of the series of name whose labels
// include labels.
func seriesValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, mm := range mf.Metric {
			for _, l := range mm.Label {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			switch {
			case mm.Counter != nil:
				sum += mm.Counter.GetValue()
			case mm.Gauge != nil:
				sum += mm.Gauge.GetValue()
			}
		}
	}
	return sum
}

func sumSeries(t *testing.T, g prometheus.Gatherer, name string) float64 {
	return seriesValue(t, g, name, nil)
}

func near(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }
