package worker

import (
	"github.com/llmprobe/llmprobe/internal/config"
	"github.com/llmprobe/llmprobe/internal/record"
)

// Tap sees, in the supervisor, what the metrics see, in both modes (the
// load in this process, or in worker processes): every record as it is
// observed and every worker's saturation sample. It is how `llmprobe bench`
// keeps every record for exact quantiles and how the status page keeps its
// last minute, without a second path for measurement. It is called on the
// aggregation goroutines (one per worker process), never on a timing path,
// and must not block.
type Tap interface {
	// Probes says which probe each ID that records will carry stands for:
	// ids[i] is probes[i]. It is called for every configuration applied,
	// before any of its records, also for one that is then rejected.
	Probes(ids []uint32, probes []config.Probe)
	// Send is one request going out (its schedule delay is the one the
	// llmprobe_schedule_delay_seconds histogram takes).
	Send(s record.Send)
	// Record is one request ended; r is valid only during the call.
	Record(r *record.Record)
	// Sample is worker's sample for the window that just ended; s is valid
	// only during the call. why is the reason the window was bad by the
	// saturation thresholds, empty when it was not (the verdict, s.Saturated,
	// changes only after several bad windows in a row).
	Sample(worker int, s *record.Sample, why string)
}
