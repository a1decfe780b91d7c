package collector

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/record"
)

// Books turns one source's cumulative schedule counters (a worker's, or an
// in-process runner's) into increments of the daemon-wide counters. A source
// that restarts starts again from zero; Books sees the drop and counts from
// the new zero, so the exported counters never go backwards.
type Books struct {
	probes []*Probe
	last   []record.ProbeCounts
}

// NewBooks tracks one source whose probes are, in plan order, probes.
func NewBooks(probes []*Probe) *Books {
	return &Books{probes: probes, last: make([]record.ProbeCounts, len(probes))}
}

// Apply adds what changed since the last snapshot of this source.
func (b *Books) Apply(cur []record.ProbeCounts) {
	for i := range cur {
		if i >= len(b.probes) {
			break
		}
		p, last := b.probes[i], &b.last[i]
		scheduled, dropped := delta(cur[i].Scheduled, last.Scheduled), delta(cur[i].Dropped, last.Dropped)
		p.Scheduled.Add(float64(scheduled))
		p.Dropped.Add(float64(dropped))
		p.shed.add(time.Now(), scheduled, dropped)
		p.LateDispatches.Add(float64(delta(cur[i].Late, last.Late)))
		p.InFlight.Add(float64(cur[i].InFlight - last.InFlight))
		*last = cur[i]
	}
}

// Close withdraws the source's in-flight requests from the gauge: the source
// is gone and its requests with it.
func (b *Books) Close() {
	for i, p := range b.probes {
		p.InFlight.Sub(float64(b.last[i].InFlight))
		b.last[i].InFlight = 0
	}
}

func delta(cur, last uint64) uint64 {
	if cur < last { // the source restarted from zero
		return cur
	}
	return cur - last
}

// shedSlots × 1s is the window of llmprobe_load_shed_ratio.
const shedSlots = 10

// shedWindow keeps a probe's arrivals and drops per second over the last
// shedSlots seconds, summed over every source that feeds the probe, and
// keeps the probe's shed-ratio gauge at drops / arrivals over that window.
type shedWindow struct {
	gauge prometheus.Gauge
	mu    sync.Mutex
	slots [shedSlots]struct {
		sec                int64
		scheduled, dropped uint64
	}
}

func (w *shedWindow) add(now time.Time, scheduled, dropped uint64) {
	sec := now.Unix()
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &w.slots[sec%shedSlots]
	if s.sec != sec {
		s.sec, s.scheduled, s.dropped = sec, 0, 0
	}
	s.scheduled += scheduled
	s.dropped += dropped
	var sch, drop uint64
	for i := range w.slots {
		if s := &w.slots[i]; s.sec > sec-shedSlots {
			sch += s.scheduled
			drop += s.dropped
		}
	}
	ratio := 0.0
	if sch > 0 {
		ratio = float64(drop) / float64(sch)
	}
	w.gauge.Set(ratio)
}
