package record

// ProbeCounts are one probe's schedule books in one worker, cumulative since
// the worker started. They balance: Scheduled = Sent + Dropped + BackedOff,
// and Sent = the records emitted + InFlight.
type ProbeCounts struct {
	// ID is the probe's, as its records carry it (load.Options.IDs).
	ID                             uint32
	Scheduled, Sent, Dropped, Late uint64
	InFlight                       int64
	// BackedOff counts arrivals not sent because the target asked to be
	// left alone (429/503 with Retry-After, honor_retry_after on);
	// BackingOff is whether such a back-off holds now.
	BackedOff  uint64
	BackingOff bool
}
