package load

import (
	"sync/atomic"

	"github.com/llmprobe/llmprobe/record"
)

// Stats are one probe's schedule books, updated by the schedule loop and the
// request goroutines. Every arrival is either sent or dropped, so the
// scheduled count is their sum rather than a counter of its own.
type Stats struct {
	Sent     atomic.Uint64
	Dropped  atomic.Uint64
	Late     atomic.Uint64
	InFlight atomic.Int64
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() record.ProbeCounts {
	sent, dropped := s.Sent.Load(), s.Dropped.Load()
	return record.ProbeCounts{Scheduled: sent + dropped, Sent: sent, Dropped: dropped, Late: s.Late.Load(), InFlight: s.InFlight.Load()}
}
