package load

import (
	"sync/atomic"

	"github.com/llmprobe/llmprobe/record"
)

// Stats are one probe's schedule books, updated by the schedule loop and the
// request goroutines.
type Stats struct {
	Scheduled atomic.Uint64
	Sent      atomic.Uint64
	Dropped   atomic.Uint64
	Late      atomic.Uint64
	InFlight  atomic.Int64
}

// Snapshot reads the counters. Scheduled is read last, so a reader never
// sees more sent and dropped than scheduled.
func (s *Stats) Snapshot() record.ProbeCounts {
	inFlight := s.InFlight.Load()
	sent := s.Sent.Load()
	dropped := s.Dropped.Load()
	late := s.Late.Load()
	return record.ProbeCounts{Scheduled: s.Scheduled.Load(), Sent: sent, Dropped: dropped, Late: late, InFlight: inFlight}
}
