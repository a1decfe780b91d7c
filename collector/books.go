package collector

import "github.com/llmprobe/llmprobe/record"

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
		p.Scheduled.Add(float64(delta(cur[i].Scheduled, last.Scheduled)))
		p.Dropped.Add(float64(delta(cur[i].Dropped, last.Dropped)))
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
