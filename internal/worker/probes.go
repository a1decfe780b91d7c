package worker

import (
	"sync"

	"github.com/llmprobe/llmprobe/internal/metrics"
)

// probeTable maps the IDs that records and counts carry to the probes'
// series. A reload that keeps a probe running keeps its ID; a probe that
// restarts gets a new one, so that the counts of its old and new runs (each
// from zero) are never confused. IDs of removed probes stay mapped while
// their last requests drain.
type probeTable struct {
	mu sync.RWMutex
	m  map[uint32]*metrics.Probe
}

func newProbeTable() *probeTable { return &probeTable{m: map[uint32]*metrics.Probe{}} }

func (t *probeTable) get(id uint32) *metrics.Probe {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[id]
}

// set maps ids[i] to probes[i].
func (t *probeTable) set(ids []uint32, probes []*metrics.Probe) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, id := range ids {
		t.m[id] = probes[i]
	}
}
