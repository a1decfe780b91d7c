package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/llmprobe/llmprobe/internal/prober"
)

// exemplarIDs lists the trace ids on a histogram's exemplars, classic
// buckets and native ones together.
func exemplarIDs(h *dto.Histogram) map[string]bool {
	ids := map[string]bool{}
	add := func(e *dto.Exemplar) {
		for _, l := range e.GetLabel() {
			if l.GetName() == "trace_id" {
				ids[l.GetValue()] = true
			}
		}
	}
	for _, b := range h.GetBucket() {
		if e := b.GetExemplar(); e != nil {
			add(e)
		}
	}
	for _, e := range h.GetExemplars() {
		add(e)
	}
	return ids
}

func TestLatencyHistogramsCarryTraceIDs(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := New(reg).ForProbe("sim", scenario())
	start := time.Now().UnixNano()
	var slow prober.TraceID
	for i := range 200 {
		r := typicalRecord()
		r.Intended = start + int64(i)*int64(time.Millisecond) // all in one window
		r.TraceID = prober.TraceID{byte(i), 1}
		if i == 150 {
			r.TTFT, slow = 900*time.Millisecond, r.TraceID
		}
		p.Observe(r)
	}
	h := histogramOf(t, reg, "llmprobe_time_to_first_token_seconds")
	ids := exemplarIDs(h)
	first := prober.TraceID{0, 1}
	if !ids[first.String()] || !ids[slow.String()] {
		t.Errorf("TTFT exemplars %v: want the window's first request %s and its slowest %s", ids, first, slow)
	}
	// The other 198 were neither first nor a new maximum (the record's TTFT
	// is the same each time): sampled out.
	if len(ids) != 2 {
		t.Errorf("%d TTFT exemplars from one window of equal requests and one outlier, want 2", len(ids))
	}
	for _, name := range []string{"llmprobe_request_duration_seconds", "llmprobe_inter_token_latency_seconds",
		"llmprobe_time_per_output_token_seconds", "llmprobe_normalized_time_per_output_token_seconds"} {
		if len(exemplarIDs(histogramOf(t, reg, name))) == 0 {
			t.Errorf("%s has no exemplar", name)
		}
	}

	// A new window takes a new exemplar.
	r := typicalRecord()
	r.Intended = start + int64(exemplarWindow) + int64(time.Second)
	r.TraceID = prober.TraceID{0xAB, 0xCD}
	p.Observe(r)
	if ids := exemplarIDs(histogramOf(t, reg, "llmprobe_time_to_first_token_seconds")); !ids[r.TraceID.String()] {
		t.Errorf("no exemplar from the next window: %v", ids)
	}
}

// Records without a trace id (targets with traceparent: off) never make
// exemplars.
func TestNoTraceIDNoExemplar(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := New(reg).ForProbe("sim", scenario())
	r := typicalRecord()
	r.Intended = time.Now().UnixNano()
	p.Observe(r)
	if ids := exemplarIDs(histogramOf(t, reg, "llmprobe_time_to_first_token_seconds")); len(ids) != 0 {
		t.Errorf("exemplars %v from a record without a trace id", ids)
	}
}

// In steady state (requests inside a window, none slower than the first)
// the exemplar path costs no allocation.
func TestObserveWithTraceIDsAllocs(t *testing.T) {
	p := New(prometheus.NewRegistry()).ForProbe("sim", scenario())
	r := typicalRecord()
	r.TraceID = prober.TraceID{1}
	r.Intended = time.Now().UnixNano()
	p.Observe(r)
	if a := testing.AllocsPerRun(100, func() { p.Observe(r) }); a != 0 {
		t.Fatalf("Observe with a trace id allocates %v times per record between exemplars, want 0", a)
	}
}
