package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmprobe/llmprobe/internal/record"
)

// Books turns one source's cumulative counters of what never becomes a
// request (a worker's, or an in-process runner's: arrivals dropped at the
// in-flight cap, sends that went out late) into increments of the probes'
// ledgers. A source that restarts starts again from zero; Books sees the drop
// and counts from the new zero, so the exported counters never go backwards.
// Sends and outcomes do not come this way: they are counted from the
// requests' own send events and records, exactly.
type Books struct {
	probe func(id uint32) *Probe
	last  map[uint32]record.ProbeCounts
}

// NewBooks tracks one source whose counts name their probes by ID; probe
// maps an ID to its series (nil: not ours, ignored).
func NewBooks(probe func(id uint32) *Probe) *Books {
	return &Books{probe: probe, last: map[uint32]record.ProbeCounts{}}
}

// Apply adds what changed since the last snapshot of this source.
func (b *Books) Apply(cur []record.ProbeCounts) {
	for i := range cur {
		c := &cur[i]
		p := b.probe(c.ID)
		if p == nil {
			continue
		}
		last := b.last[c.ID]
		scheduled, dropped, late := delta(c.Scheduled, last.Scheduled), delta(c.Dropped, last.Dropped), delta(c.Late, last.Late)
		backedOff := delta(c.BackedOff, last.BackedOff)
		backing := boolDelta(c.BackingOff, last.BackingOff)
		p.books.update(p.ledger, func(l *ledger) {
			l.dropped += dropped
			l.late += late
			l.backedOff += backedOff
			l.backingOff += backing
		})
		p.shed.add(time.Now(), scheduled, dropped)
		b.last[c.ID] = *c
	}
}

// Close withdraws what the source said holds now (its back-off): the source
// is gone, and its state with it.
func (b *Books) Close() {
	for id, c := range b.last {
		if p := b.probe(id); p != nil && c.BackingOff {
			p.books.update(p.ledger, func(l *ledger) { l.backingOff-- })
			c.BackingOff = false
			b.last[id] = c
		}
	}
}

func boolDelta(cur, last bool) int64 {
	switch {
	case cur && !last:
		return 1
	case last && !cur:
		return -1
	}
	return 0
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
