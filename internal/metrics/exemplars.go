package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/internal/record"
)

// exemplarWindow: a latency histogram of a probe takes as exemplars the
// first request of each window and any later one slower than all before it
// in the window. That is a handful per window whatever the rate (so the
// cost stays off the per-record path: one comparison, no allocation), and
// the slowest request of every window, the one worth looking up in the
// engine's traces, always has its trace id on a bucket.
const exemplarWindow = 5 * time.Second

// exemplarSampler chooses the exemplars of one histogram.
type exemplarSampler struct {
	obs   prometheus.ExemplarObserver
	start int64 // window start, Unix ns of a record's intended send
	max   float64
}

// exemplars are a probe's samplers, one per latency histogram. Records of
// one probe may come from several workers' readers at once.
type exemplars struct {
	mu                          sync.Mutex
	ttft, itl, tpot, ntpot, e2e exemplarSampler
}

func newExemplars(ttft, itl, tpot, ntpot, e2e prometheus.Observer) exemplars {
	s := func(o prometheus.Observer) exemplarSampler {
		eo, _ := o.(prometheus.ExemplarObserver)
		return exemplarSampler{obs: eo}
	}
	return exemplars{ttft: s(ttft), itl: s(itl), tpot: s(tpot), ntpot: s(ntpot), e2e: s(e2e)}
}

// observe records v in s's histogram through o, with r's trace id as the
// exemplar when s takes it.
func (e *exemplars) observe(o prometheus.Observer, s *exemplarSampler, v float64, r *record.Record) {
	if r.TraceID.IsZero() || s.obs == nil || !e.take(s, r.Intended, v) {
		o.Observe(v)
		return
	}
	s.obs.ObserveWithExemplar(v, prometheus.Labels{"trace_id": r.TraceID.String()})
}

func (e *exemplars) take(s *exemplarSampler, now int64, v float64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.start == 0 || now-s.start >= int64(exemplarWindow) || now < s.start {
		s.start, s.max = now, v
		return true
	}
	if v > s.max {
		s.max = v
		return true
	}
	return false
}
