package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/internal/prober"
	"github.com/llmprobe/llmprobe/internal/record"
)

// typicalRecord is what the reference endpoint's default stream yields: a
// 64-token success, one token per chunk, TTFT ~50ms and 64 gaps of ~10ms,
// with ground-truth stamps (64 emit lags) and two SLOs to judge.
func typicalRecord() *record.Record {
	r := &record.Record{ScheduleDelay: 150 * time.Microsecond}
	r.Result = prober.Result{
		Outcome: prober.OutcomeSuccess, Status: 200, Stream: true,
		TTFB: 2 * time.Millisecond, TTFT: 50*time.Millisecond + 300*time.Microsecond, E2E: 691 * time.Millisecond,
		InputTokens: 16, OutputTokens: 64, CountedTokens: 64, UsageReported: true,
		GroundTruth: true, ServerTTFT: 50 * time.Millisecond, ServerQueue: 0,
	}
	for i := 0; i < 64; i++ {
		// Vary the values so observations land in different native buckets,
		// as real ones do, rather than hitting one cached bucket.
		r.Gaps = append(r.Gaps, prober.Gap{Gap: 10*time.Millisecond + time.Duration(i)*7*time.Microsecond, Tokens: 1})
		r.EmitLags = append(r.EmitLags, 80*time.Microsecond+time.Duration(i)*3*time.Microsecond)
	}
	return r
}

// BenchmarkObserve is the supervisor's cost per record: every counter and
// histogram of one streamed request (64 ITL and 64 emit-lag observations).
// It must not allocate: it runs once per request at the full probe rate.
func BenchmarkObserve(b *testing.B) {
	m := New(prometheus.NewRegistry())
	p := m.ForProbe("sim", scenario())
	r := typicalRecord()
	b.ReportAllocs()
	for b.Loop() {
		p.Observe(r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.Gaps)+len(r.EmitLags)), "ns/observation")
}

// TestObserveTypicalRecordAllocs pins the zero-allocation claim the
// benchmark reports, so a regression fails a plain go test.
func TestObserveTypicalRecordAllocs(t *testing.T) {
	p := New(prometheus.NewRegistry()).ForProbe("sim", scenario())
	r := typicalRecord()
	p.Observe(r) // first observations create native buckets: allowed to allocate
	if a := testing.AllocsPerRun(100, func() { p.Observe(r) }); a != 0 {
		t.Fatalf("Observe allocates %v times per record, want 0", a)
	}
}

// BenchmarkObserveTraced is BenchmarkObserve with a trace id on every record
// (traceparent on), one window of requests: what the exemplar sampling adds.
func BenchmarkObserveTraced(b *testing.B) {
	m := New(prometheus.NewRegistry())
	p := m.ForProbe("sim", scenario())
	r := typicalRecord()
	r.TraceID = prober.TraceID{1}
	r.Intended = time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		p.Observe(r)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.Gaps)+len(r.EmitLags)), "ns/observation")
}
