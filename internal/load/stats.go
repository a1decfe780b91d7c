package load

import (
	"sync/atomic"

	"github.com/llmprobe/llmprobe/internal/record"
)

// Stats are one probe's schedule books, updated by the schedule loop and the
// request goroutines. Every arrival is sent, dropped or backed off, so the
// scheduled count is their sum rather than a counter of its own.
type Stats struct {
	Sent      atomic.Uint64
	Dropped   atomic.Uint64
	BackedOff atomic.Uint64 // held back by the target's Retry-After
	Late      atomic.Uint64
	InFlight  atomic.Int64
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() record.ProbeCounts {
	sent, dropped, backedOff := s.Sent.Load(), s.Dropped.Load(), s.BackedOff.Load()
	return record.ProbeCounts{Scheduled: sent + dropped + backedOff, Sent: sent, Dropped: dropped, BackedOff: backedOff,
		Late: s.Late.Load(), InFlight: s.InFlight.Load()}
}
